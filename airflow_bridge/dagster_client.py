"""Launch a Dagster asset materialisation over the webserver's GraphQL API and follow it.

Runs inside Airflow's environment: only the standard library and ``httpx`` (which Airflow
itself depends on). Nothing here knows Airflow, so it is tested with a fake transport.

The run is launched with ``launchRun`` on the code location's implicit asset job
(``__ASSET_JOB``), the asset keys as ``assetSelection`` and the partition as the
``dagster/partition`` tag: what the Dagster UI's "Materialize" does for one partition. It
yields exactly one run to follow and link to. (``launchPartitionBackfill`` would add a
backfill, fanned out into runs by the daemon, to poll on top of the run.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

ASSET_JOB = "__ASSET_JOB"
PARTITION_TAG = "dagster/partition"
DEFAULT_REPOSITORY = "__repository__"
"""The repository name Dagster gives a code location's ``Definitions``."""

ACTIVE = frozenset({"QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "CANCELING"})
"""Run statuses that will still change (SUSPENDED is treated as an end: it waits for a human)."""

PREFLIGHT = """
query Preflight($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    isMaterializable
    isPartitioned
    partitionKeys
    repository { name location { name } }
  }
}
"""

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status }
    ... on Error { message }
  }
}
"""

FAILURES = """
query Failures($runId: ID!, $after: String) {
  logsForRun(runId: $runId, afterCursor: $after) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on ExecutionStepFailureEvent {
          stepKey
          error { message cause { message cause { message } } }
        }
        ... on RunFailureEvent { message }
      }
    }
    ... on Error { message }
  }
}
"""

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on Error { message }
  }
}
"""


class DagsterError(RuntimeError):
    """The webserver refused or could not answer a request."""


class DagsterRequestError(DagsterError):
    """The request itself is wrong (unknown asset, invalid partition, bad selection)."""


class DagsterRunTimeout(DagsterError):
    """The run did not end within the time given."""


class DagsterRunFailed(DagsterError):
    """The run ended in a status other than SUCCESS."""

    def __init__(self, run_id: str, status: str, url: str, failures: Sequence[str]) -> None:
        self.run_id = run_id
        self.status = status
        self.url = url
        self.failures = list(failures)
        details = "; ".join(self.failures) or "no step failure reported"
        super().__init__(f"Dagster run {run_id} ended {status}: {details} ({url})")


def asset_key_input(key: str) -> dict[str, list[str]]:
    """``iceberg/marts/agg_daily_kpis`` as GraphQL's ``AssetKeyInput``."""
    path = [part for part in key.strip().split("/") if part]
    if not path:
        raise DagsterRequestError(f"empty asset key {key!r}")
    return {"path": path}


def launch_variables(
    location: str,
    repository: str,
    asset_keys: Sequence[str],
    partition_key: str | None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``launchRun`` variables for ``asset_keys`` (and ``partition_key``, when given)."""
    run_tags = dict(tags or {})
    if partition_key is not None:
        run_tags[PARTITION_TAG] = partition_key
    return {
        "executionParams": {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": ASSET_JOB,
                "assetSelection": [asset_key_input(k) for k in asset_keys],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in run_tags.items()]},
        }
    }


@dataclass
class DagsterClient:
    """A Dagster webserver's GraphQL API at ``url`` (``http://host:port[/path-prefix]``)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    transport: httpx.BaseTransport | None = None

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers=dict(self.headers),
            timeout=self.timeout,
            transport=self.transport,
        )

    def close(self) -> None:
        self._http.close()

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"

    def query(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """POST a GraphQL document; return ``data`` or raise with the server's messages."""
        resp = self._http.post("/graphql", json={"query": query, "variables": dict(variables)})
        try:
            answer = resp.json()
        except ValueError:
            raise DagsterError(
                f"{self.url}/graphql answered HTTP {resp.status_code}: {resp.text[:500]}"
            ) from None
        if answer.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in answer["errors"])
            raise DagsterError(f"GraphQL errors from {self.url}: {messages}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise DagsterError(f"{self.url}/graphql answered HTTP {resp.status_code} without data")
        return data

    def check_selection(
        self, location: str, asset_keys: Sequence[str], partition_key: str | None
    ) -> None:
        """Refuse unknown or unmaterialisable assets and a partition the assets do not have.

        ``launchRun`` accepts a partition key outside the partitions' range and fails only
        later, in the run; checked here, the error names the key and the valid range.
        """
        keys = [asset_key_input(k) for k in asset_keys]
        nodes = self.query(PREFLIGHT, {"assetKeys": keys})["assetNodes"]
        found = {
            "/".join(n["assetKey"]["path"]): n
            for n in nodes
            if n["repository"]["location"]["name"] == location
        }
        wanted = ["/".join(k["path"]) for k in keys]
        unknown = [k for k in wanted if k not in found]
        if unknown:
            raise DagsterRequestError(
                f"unknown asset key(s) in code location {location!r}: {', '.join(unknown)}"
            )
        external = [k for k in wanted if not found[k]["isMaterializable"]]
        if external:
            raise DagsterRequestError(f"not materialisable (external): {', '.join(external)}")
        partitioned = [k for k in wanted if found[k]["isPartitioned"]]
        if partitioned and partition_key is None:
            raise DagsterRequestError(f"partitioned assets need a partition key: {partitioned}")
        for k in partitioned:
            partition_keys: list[str] = found[k]["partitionKeys"] or []
            if partition_key not in partition_keys:
                span = f"{partition_keys[0]}..{partition_keys[-1]}" if partition_keys else "none"
                raise DagsterRequestError(
                    f"{k} has no partition {partition_key!r} (partitions: {span})"
                )

    def launch(
        self,
        location: str,
        asset_keys: Sequence[str],
        partition_key: str | None,
        repository: str = DEFAULT_REPOSITORY,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Launch a run materialising ``asset_keys`` for ``partition_key``; return its id."""
        variables = launch_variables(location, repository, asset_keys, partition_key, tags)
        result = self.query(LAUNCH, variables)["launchRun"]
        kind = result["__typename"]
        if kind == "LaunchRunSuccess":
            run_id: str = result["run"]["runId"]
            return run_id
        if kind == "RunConfigValidationInvalid":
            message = "; ".join(e["message"] for e in result["errors"])
        else:
            message = result.get("message", "").strip()
        error = (
            DagsterError if kind in ("PythonError", "UnauthorizedError") else DagsterRequestError
        )
        raise error(f"launchRun refused ({kind}): {message}")

    def status(self, run_id: str) -> str:
        result = self.query(STATUS, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise DagsterError(f"run {run_id}: {result.get('message', result['__typename'])}")
        status: str = result["status"]
        return status

    def failures(self, run_id: str, max_pages: int = 20) -> list[str]:
        """The failed steps' (and the run's) error messages, in the order they happened."""
        messages: list[str] = []
        after: str | None = None
        for _ in range(max_pages):
            logs = self.query(FAILURES, {"runId": run_id, "after": after})["logsForRun"]
            if logs["__typename"] != "EventConnection":
                break
            for event in logs["events"]:
                if event["__typename"] == "ExecutionStepFailureEvent":
                    error = error_chain(event.get("error"))
                    messages.append(f"step {event['stepKey']} failed: {error}")
                elif event["__typename"] == "RunFailureEvent":
                    messages.append(one_line(event["message"]))
            if not logs["hasMore"]:
                break
            after = logs["cursor"]
        return messages

    def terminate(self, run_id: str) -> str | None:
        """Ask Dagster to terminate the run; return why it could not, or None."""
        result = self.query(TERMINATE, {"runId": run_id})["terminateRun"]
        if result["__typename"] == "TerminateRunSuccess":
            return None
        return str(result.get("message", result["__typename"]))

    def wait(
        self,
        run_id: str,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        on_status: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Poll until the run ends; raise :class:`DagsterRunFailed` unless it succeeded."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            status = self.status(run_id)
            if status != last and on_status is not None:
                on_status(status)
            last = status
            if status not in ACTIVE:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise DagsterRunTimeout(
                    f"run {run_id} still {status} after {timeout}s ({self.run_url(run_id)})"
                )
            sleep(poll_interval)
        return ensure_succeeded(self, run_id, status)


def one_line(text: str) -> str:
    return " ".join(text.split())


def error_chain(error: Mapping[str, Any] | None) -> str:
    """A Python error and its causes in one line: the wrapper says where, the cause what."""
    parts: list[str] = []
    while error:
        parts.append(one_line(str(error.get("message", ""))).rstrip(":"))
        error = error.get("cause")
    return " <- caused by: ".join(p for p in parts if p)


def ensure_succeeded(client: DagsterClient, run_id: str, status: str) -> str:
    """Return ``status`` if it is SUCCESS; otherwise raise with the failures Dagster logged."""
    if status == "SUCCESS":
        return status
    failures = client.failures(run_id) if status == "FAILURE" else []
    raise DagsterRunFailed(run_id, status, client.run_url(run_id), failures)


def webserver_url(conn_type: str | None, host: str, port: int | None, schema: str | None) -> str:
    """The webserver's base URL from a connection's fields (Airflow's ``Connection``).

    ``http://h:3000`` as a URI gives type ``http``, host ``h``, port 3000; a path prefix
    (``dagster-webserver --path-prefix``) goes in the schema; a host may also be a full URL.
    """
    if "://" in host:
        base = host.rstrip("/")
    else:
        scheme = conn_type if conn_type in ("http", "https") else "http"
        base = f"{scheme}://{host}" + (f":{port}" if port else "")
    return base + (f"/{schema.strip('/')}" if schema and schema.strip("/") else "")


def split_keys(selection: str | Iterable[str]) -> list[str]:
    """Asset keys from a list, or from one comma- or newline-separated string (templated)."""
    items = selection.replace("\n", ",").split(",") if isinstance(selection, str) else selection
    return [k.strip() for k in items if k.strip()]
