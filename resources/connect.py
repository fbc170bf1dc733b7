"""Kafka Connect's REST API: the change-capture connector, applied idempotently, and its state.

The connector's fixed configuration is versioned in ``stack/connectors/<name>.json``; what
depends on the environment (the database's address and role, the slot, the publication, the
topic prefix, the change topics' replication and retention) comes from the settings
(:func:`shop_connector_config`). :func:`apply_connector` ``PUT``s it only when it differs from
what Connect holds (a ``PUT`` restarts the connector), then waits until the connector and
its tasks run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from resources.settings import PlatformSettings
from resources.topics import DAY_MS

CONNECTORS = Path(__file__).resolve().parent.parent / "stack" / "connectors"
SHOP_CONNECTOR_FILE = CONNECTORS / "shop-postgres.json"
SOURCE_IDENTITY = "tributary.source.identity"
"""A key of the connector's configuration (ignored by Debezium): which database cluster its
offsets belong to (PostgreSQL's ``system_identifier``). Another value means another cluster
(a new ``initdb``, a restored backup elsewhere), whose WAL the stored LSN does not name."""


class ConnectError(RuntimeError):
    """Kafka Connect refused a request, or the connector did not come to run."""


def shop_connector_config(
    settings: PlatformSettings, source_identity: str | None = None
) -> dict[str, str]:
    """The shop database's Debezium connector: the versioned file plus the settings' part.

    ``source_identity``: the cluster's ``system_identifier`` (:data:`SOURCE_IDENTITY`).
    """
    pg, kafka = settings.postgres, settings.kafka
    config: dict[str, str] = json.loads(SHOP_CONNECTOR_FILE.read_text())
    config.update(
        {
            "database.hostname": pg.host,
            "database.port": str(pg.port),
            "database.user": pg.replication_user,
            "database.password": pg.secret("replication_password"),
            "database.dbname": pg.database,
            "slot.name": pg.slot,
            "publication.name": pg.publication,
            "topic.prefix": settings.topics.cdc_topic_prefix(pg.database),
            "topic.creation.default.replication.factor": str(kafka.replication_factor),
            "topic.creation.default.retention.ms": str(round(kafka.events_retention_days * DAY_MS)),
        }
    )
    if pg.tables:
        # Schema-qualified: they replace the file's schema filter (Debezium applies both).
        config.pop("schema.include.list", None)
        config["table.include.list"] = ",".join(pg.tables)
    if source_identity is not None:
        config[SOURCE_IDENTITY] = source_identity
    return config


@dataclass(frozen=True)
class ConnectorState:
    connector: str
    tasks: list[str]
    trace: str = ""

    @property
    def running(self) -> bool:
        return self.connector == "RUNNING" and bool(self.tasks) and set(self.tasks) == {"RUNNING"}


class ConnectClient:
    def __init__(self, url: str, timeout_s: float = 30) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            url = self.http.base_url
            raise ConnectError(f"Kafka Connect at {url} is unreachable: {exc}") from exc
        if resp.status_code >= 400 and resp.status_code != 404:
            raise ConnectError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp

    def version(self) -> str:
        return str(self._call("GET", "/").json()["version"])

    def plugins(self) -> list[dict[str, str]]:
        return list(self._call("GET", "/connector-plugins").json())

    def connectors(self) -> list[str]:
        return list(self._call("GET", "/connectors").json())

    def config(self, name: str) -> dict[str, str] | None:
        resp = self._call("GET", f"/connectors/{name}/config")
        if resp.status_code == 404:
            return None
        config = dict(resp.json())
        config.pop("name", None)
        return config

    def put_config(self, name: str, config: dict[str, str]) -> None:
        resp = self._call("PUT", f"/connectors/{name}/config", json=config)
        if resp.status_code == 404:
            raise ConnectError(f"PUT /connectors/{name}/config: 404 {resp.text}")

    def state(self, name: str) -> ConnectorState | None:
        resp = self._call("GET", f"/connectors/{name}/status")
        if resp.status_code == 404:
            return None
        body = resp.json()
        tasks = body.get("tasks", [])
        trace = "\n".join(t["trace"] for t in [body["connector"], *tasks] if t.get("trace"))
        return ConnectorState(body["connector"]["state"], [t["state"] for t in tasks], trace)

    def reset_offsets(self, name: str, timeout_s: float = 60) -> None:
        """Stop the connector and forget its source offsets (it snapshots again on resume)."""
        self._call("PUT", f"/connectors/{name}/stop")
        deadline = time.monotonic() + timeout_s
        while (state := self.state(name)) is not None and state.connector != "STOPPED":
            if time.monotonic() > deadline:
                raise ConnectError(f"connector {name} not STOPPED after {timeout_s:.0f}s")
            time.sleep(0.3)
        self._call("DELETE", f"/connectors/{name}/offsets")

    def resume(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/resume")

    def delete(self, name: str) -> bool:
        return self._call("DELETE", f"/connectors/{name}").status_code != 404


def apply_connector(
    url: str, name: str, config: dict[str, str], timeout_s: float = 90
) -> tuple[str, ConnectorState]:
    """Make connector ``name`` have ``config`` and wait until it and its tasks are RUNNING.

    Return whether it was ``created``, ``updated`` or left ``unchanged``, and its state. When
    the source's identity (:data:`SOURCE_IDENTITY`) differs from the one the connector was
    given, its offsets name a position in another cluster's WAL: they are reset first
    (outcome ``reset``), and the connector snapshots the database anew.
    """
    with ConnectClient(url) as connect:
        current = connect.config(name)
        if current == config:
            outcome = "unchanged"
        else:
            outcome = "created" if current is None else "updated"
            if current is not None and current.get(SOURCE_IDENTITY) != config.get(SOURCE_IDENTITY):
                connect.reset_offsets(name)
                outcome = "reset"
            connect.put_config(name, config)
            if outcome == "reset":
                connect.resume(name)
        deadline = time.monotonic() + timeout_s
        while True:
            state = connect.state(name)
            if state is not None and state.running:
                return outcome, state
            if state is not None and "FAILED" in (state.connector, *state.tasks):
                raise ConnectError(f"connector {name} failed:\n{state.trace}")
            if time.monotonic() > deadline:
                raise ConnectError(f"connector {name} not RUNNING after {timeout_s:.0f}s: {state}")
            time.sleep(0.5)
