"""The bridge's GraphQL requests and its reading of the answers, over a fake transport.

The real webserver is exercised by ``test_dagster_bridge.py``; here the fake answers follow
what Dagster 1.13's webserver returns (recorded from one), so every branch can be reached.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_bridge.dagster_client import (
    ASSET_JOB,
    DagsterClient,
    DagsterError,
    DagsterRequestError,
    DagsterRunFailed,
    DagsterRunTimeout,
    launch_variables,
    split_keys,
    webserver_url,
)

pytestmark = pytest.mark.unit

URL = "http://dagster.test:3000"
KEYS = ["iceberg/staging/validated_events", "iceberg/marts/agg_daily_kpis"]


class FakeWebserver:
    """Answers GraphQL operations by name from scripted replies; records what was asked."""

    def __init__(self, replies: dict[str, list[Any]]) -> None:
        self.replies = replies
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        operation = body["query"].split("(")[0].split()[-1]  # "mutation Launch(" -> "Launch"
        self.requests.append((operation, body["variables"]))
        reply = self.replies[operation].pop(0)
        if isinstance(reply, httpx.Response):
            return reply
        return httpx.Response(200, json={"data": reply})

    def client(self) -> DagsterClient:
        return DagsterClient(URL + "/", transport=httpx.MockTransport(self))

    def asked(self, operation: str) -> list[dict[str, Any]]:
        return [v for op, v in self.requests if op == operation]


def node(key: str, partitions: list[str] | None, location: str = "tributary") -> dict[str, Any]:
    return {
        "assetKey": {"path": key.split("/")},
        "isMaterializable": True,
        "isPartitioned": partitions is not None,
        "partitionKeys": partitions or [],
        "repository": {"name": "__repository__", "location": {"name": location}},
    }


def status(value: str) -> dict[str, Any]:
    return {"runOrError": {"__typename": "Run", "runId": "r1", "status": value}}


def test_launch_selects_the_assets_on_the_implicit_asset_job_with_the_partition_tag() -> None:
    variables = launch_variables(
        "tributary", "__repository__", KEYS, "2026-11-27", {"airflow/dag_id": "d"}
    )
    params = variables["executionParams"]
    assert params["selector"] == {
        "repositoryLocationName": "tributary",
        "repositoryName": "__repository__",
        "jobName": ASSET_JOB,
        "assetSelection": [
            {"path": ["iceberg", "staging", "validated_events"]},
            {"path": ["iceberg", "marts", "agg_daily_kpis"]},
        ],
    }
    tags = {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
    assert tags == {"airflow/dag_id": "d", "dagster/partition": "2026-11-27"}


def test_unpartitioned_launch_has_no_partition_tag() -> None:
    params = launch_variables("loc", "repo", ["a/b"], None)["executionParams"]
    assert params["executionMetadata"]["tags"] == []


def test_a_launched_run_is_followed_to_success_and_each_status_reported_once() -> None:
    fake = FakeWebserver(
        {
            "Launch": [{"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "r1"}}}],
            "Status": [status(s) for s in ("QUEUED", "QUEUED", "STARTED", "SUCCESS")],
        }
    )
    client = fake.client()
    run_id = client.launch("tributary", KEYS, "2026-11-27")
    seen: list[str] = []
    assert client.wait(run_id, poll_interval=0, on_status=seen.append, sleep=lambda _: None) == (
        "SUCCESS"
    )
    assert seen == ["QUEUED", "STARTED", "SUCCESS"]
    assert fake.asked("Status") == [{"runId": "r1"}] * 4
    assert client.run_url("r1") == f"{URL}/runs/r1"


def test_a_failed_run_raises_with_every_failed_step_across_log_pages() -> None:
    step = "ExecutionStepFailureEvent"
    fake = FakeWebserver(
        {
            "Status": [status("STARTED"), status("FAILURE")],
            "Failures": [
                {
                    "logsForRun": {
                        "__typename": "EventConnection",
                        "cursor": "c1",
                        "hasMore": True,
                        "events": [
                            {"__typename": "MaterializationEvent"},
                            {
                                "__typename": step,
                                "stepKey": "a",
                                "error": {
                                    "message": 'Error occurred while executing op "a"::\n',
                                    "cause": {
                                        "message": "ConnectionError:\n  refused\n",
                                        "cause": None,
                                    },
                                },
                            },
                        ],
                    }
                },
                {
                    "logsForRun": {
                        "__typename": "EventConnection",
                        "cursor": "c2",
                        "hasMore": False,
                        "events": [
                            {"__typename": "RunFailureEvent", "message": "Execution failed."}
                        ],
                    }
                },
            ],
        }
    )
    with pytest.raises(DagsterRunFailed) as caught:
        fake.client().wait("r1", poll_interval=0, sleep=lambda _: None)
    assert caught.value.status == "FAILURE"
    assert caught.value.failures == [
        'step a failed: Error occurred while executing op "a"'
        " <- caused by: ConnectionError: refused",
        "Execution failed.",
    ]
    assert "ConnectionError: refused" in str(caught.value) and f"{URL}/runs/r1" in str(caught.value)
    assert [v["after"] for v in fake.asked("Failures")] == [None, "c1"]


@pytest.mark.parametrize("end", ["CANCELED", "SUSPENDED"])
def test_a_run_that_ends_otherwise_than_success_raises(end: str) -> None:
    fake = FakeWebserver({"Status": [status("CANCELING"), status(end)]})
    with pytest.raises(DagsterRunFailed, match=end):
        fake.client().wait("r1", poll_interval=0, sleep=lambda _: None)


def test_waiting_gives_up_after_the_timeout() -> None:
    fake = FakeWebserver({"Status": [status("STARTED")] * 3})
    with pytest.raises(DagsterRunTimeout, match="still STARTED"):
        fake.client().wait("r1", poll_interval=0, timeout=-1, sleep=lambda _: None)


def launch_refused(kind: str, message: str) -> Callable[[], DagsterClient]:
    return FakeWebserver(
        {"Launch": [{"launchRun": {"__typename": kind, "message": message}}]}
    ).client


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("InvalidSubsetError", DagsterRequestError),
        ("PipelineNotFoundError", DagsterRequestError),
        ("PythonError", DagsterError),
    ],
)
def test_a_refused_launch_says_why(kind: str, error: type[DagsterError]) -> None:
    client = launch_refused(kind, "AssetKey(s) ['x'] were selected, but no AssetsDefinition")()
    with pytest.raises(error, match=rf"{kind}.*no AssetsDefinition") as caught:
        client.launch("tributary", ["x"], None)
    assert (type(caught.value) is DagsterRequestError) == (error is DagsterRequestError)


def test_unknown_assets_are_named_before_anything_is_launched() -> None:
    fake = FakeWebserver(
        {"Preflight": [{"assetNodes": [node(KEYS[0], ["2026-11-27"]), node(KEYS[1], [], "other")]}]}
    )
    with pytest.raises(DagsterRequestError, match=r"unknown asset.*iceberg/marts/agg_daily_kpis"):
        fake.client().check_selection("tributary", KEYS, "2026-11-27")
    assert fake.asked("Preflight") == [{"assetKeys": [{"path": k.split("/")} for k in KEYS]}]


def test_a_partition_the_assets_do_not_have_is_refused_with_their_range() -> None:
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    nodes = [node(KEYS[0], days), node(KEYS[1], days)]
    fake = FakeWebserver({"Preflight": [{"assetNodes": nodes}] * 3})
    client = fake.client()
    with pytest.raises(
        DagsterRequestError, match=r"no partition '2025-12-31'.*2026-01-01\.\.2026-01-03"
    ):
        client.check_selection("tributary", KEYS, "2025-12-31")
    with pytest.raises(DagsterRequestError, match="need a partition key"):
        client.check_selection("tributary", KEYS, None)
    client.check_selection("tributary", KEYS, "2026-01-02")


def test_external_assets_cannot_be_materialised() -> None:
    external = {**node("s3/raw_events", ["2026-01-01"]), "isMaterializable": False}
    fake = FakeWebserver({"Preflight": [{"assetNodes": [external]}]})
    with pytest.raises(DagsterRequestError, match=r"external.*s3/raw_events"):
        fake.client().check_selection("tributary", ["s3/raw_events"], "2026-01-01")


def test_graphql_errors_and_non_json_answers_become_errors_that_say_what_came_back() -> None:
    fake = FakeWebserver(
        {
            "Status": [
                httpx.Response(400, json={"errors": [{"message": "Variable '$runId' not set"}]}),
                httpx.Response(502, text="<html>Bad gateway</html>"),
            ]
        }
    )
    client = fake.client()
    with pytest.raises(DagsterError, match=r"runId' not set"):
        client.status("r1")
    with pytest.raises(DagsterError, match=r"HTTP 502.*Bad gateway"):
        client.status("r1")


def test_terminate_reports_why_it_could_not() -> None:
    fake = FakeWebserver(
        {
            "Terminate": [
                {"terminateRun": {"__typename": "TerminateRunSuccess"}},
                {"terminateRun": {"__typename": "TerminateRunFailure", "message": "not running"}},
            ]
        }
    )
    client = fake.client()
    assert client.terminate("r1") is None
    assert client.terminate("r1") == "not running"


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        (("http", "127.0.0.1", 3000, None), "http://127.0.0.1:3000"),
        (
            ("https", "dagster.example.com", None, "/dagster/"),
            "https://dagster.example.com/dagster",
        ),
        ((None, "https://dagster.example.com/", None, ""), "https://dagster.example.com"),
        (("generic", "dagster", 80, None), "http://dagster:80"),
    ],
)
def test_webserver_url_from_connection_fields(
    fields: tuple[str | None, str, int | None, str | None], url: str
) -> None:
    assert webserver_url(*fields) == url


def test_asset_keys_from_a_templated_string_or_a_list() -> None:
    assert split_keys("a/b, c/d\n e/f,") == ["a/b", "c/d", "e/f"]
    assert split_keys([" a/b ", ""]) == ["a/b"]


def test_the_bridge_imports_only_the_standard_library_httpx_and_airflow() -> None:
    # It runs in Airflow's environment, which has none of the platform's packages.
    allowed = set(sys.stdlib_module_names) | {"httpx", "airflow", "airflow_bridge", "__future__"}
    package = Path(__file__).resolve().parents[2] / "airflow_bridge"
    files = sorted(package.rglob("*.py"))
    assert len(files) >= 4
    imported: set[str] = set()
    for path in files:
        for stmt in ast.walk(ast.parse(path.read_text())):
            if isinstance(stmt, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in stmt.names}
            elif isinstance(stmt, ast.ImportFrom) and stmt.module:
                imported.add(stmt.module.split(".")[0])
    assert "airflow" in imported and "httpx" in imported
    assert imported <= allowed, imported - allowed
