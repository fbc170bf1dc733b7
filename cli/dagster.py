"""Dagster's webserver and daemon on one instance folder, started as children.

The same two processes ``dagster dev`` runs, started separately so that each is signalled by
its own PID, with the platform's settings passed through the environment (``child_env``).
Tests, the lineage screenshot and the Airflow bridge's test use it against a real webserver.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from cli.processes import PlatformProcess, child_env
from resources.settings import local_folder
from stack.errors import StackError
from stack.private import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The instance settings of the demo, `make dagster` and the tests: no usage statistics, and
# no newsletter dialog over the UI (it would cover the lineage screenshot).
INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
# The Dagster instance the demo's and `tributary forget`'s runs go to, and `make dagster` serves.
DAGSTER_HOME = local_folder("dagster")


def instance_home() -> Path:
    """``$DAGSTER_HOME`` (set to ``DAGSTER_HOME`` when unset), created with the instance file."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(DAGSTER_HOME.resolve())))
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists() or not instance_yaml.read_text().strip():
        instance_yaml.write_text(INSTANCE_YAML)
    return home


class DagsterServer:
    """``dagster-webserver`` (and ``dagster-daemon`` when asked) for ``workspace.yaml``."""

    def __init__(
        self,
        home: Path,
        settings: BaseModel | None = None,
        port: int | None = None,
        daemon: bool = False,
        instance_yaml: str = INSTANCE_YAML,
    ) -> None:
        self.home = home.resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        if not (self.home / "dagster.yaml").exists():
            (self.home / "dagster.yaml").write_text(instance_yaml)
        self.port = port or free_port()
        # With settings, only they configure the children; without, this environment does.
        env = child_env(settings, inherit=False) if settings is not None else dict(os.environ)
        env["DAGSTER_HOME"] = str(self.home)
        workspace = str(ROOT / "workspace.yaml")
        self.webserver = PlatformProcess(
            "dagster-webserver",
            env,
            self.home / "webserver.log",
            ready_url=f"{self.url}/server_info",
            command=[
                str(BIN / "dagster-webserver"),
                "-w",
                workspace,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=ROOT,
        )
        self.daemon = (
            PlatformProcess(
                "dagster-daemon",
                env,
                self.home / "daemon.log",
                command=[str(BIN / "dagster-daemon"), "run", "-w", workspace],
                cwd=ROOT,
            )
            if daemon
            else None
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> DagsterServer:
        try:
            self.webserver.start(timeout=timeout)
            if self.daemon is not None:
                self.daemon.start()
            self.wait_for_assets(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.webserver.stop()

    def __enter__(self) -> DagsterServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        if answer.get("errors"):
            raise StackError(f"GraphQL errors: {answer['errors']}")
        data: dict[str, Any] = answer["data"]
        return data

    def wait_for_assets(self, timeout: float = 180) -> None:
        """The code location loads in the background: wait until its assets are served."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.graphql("{ assetNodes { id } }").get("assetNodes") or []
            if nodes:
                return
            if time.monotonic() > deadline:
                raise StackError(f"no asset loaded: {self.webserver.log_tail()}")
            time.sleep(1)
