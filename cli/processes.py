"""The platform's own processes (``tributary run <name>``) started as children, on running servers.

:class:`Pipeline` starts the stream end to end — enrichment API, enricher, real-time loader,
batch loader, collector — from one :class:`PipelineSettings`, passed to each child through its
environment. The demo, the reliability tests and the end-to-end benchmark use it, so each
child is the very process a user starts by hand. Every child gets its own process group and
log file; only the children started here are ever signalled.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
from pydantic import BaseModel, SecretStr
from pydantic_core import to_json

from enrichment.config import EnrichmentSettings
from ingestion.core.config import CollectorSettings
from stack.errors import StackError
from streaming.batch_loader import BatchLoaderSettings
from streaming.enricher import EnricherSettings
from streaming.realtime_loader import RealtimeLoaderSettings

TRIBUTARY = str(Path(sys.executable).parent / "tributary")


class PipelineSettings(
    CollectorSettings,
    EnrichmentSettings,
    EnricherSettings,
    RealtimeLoaderSettings,
    BatchLoaderSettings,
):
    """The settings of every stream process at once (each reads only its own sections)."""


def settings_env(settings: BaseModel, prefix: str = "TRIBUTARY_") -> dict[str, str]:
    """Return the environment that rebuilds the fields *set* on ``settings`` in a child.

    Only fields given explicitly (or read from the environment) are passed: defaults made per
    instance, such as the enricher's transactional id, stay the child's own.
    """
    env: dict[str, str] = {}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        key = f"{prefix}{name.upper()}"
        if isinstance(value, BaseModel):
            env.update(settings_env(value, f"{key}__"))
        elif value is None:
            continue
        elif isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, str | int | float | Path | enum.Enum):
            env[key] = str(value.value if isinstance(value, enum.Enum) else value)
        else:
            env[key] = to_json(_revealed(value)).decode()
    return env


def _revealed(value: object) -> object:
    """``value`` with the secrets in its lists and dicts as plain text (``to_json`` masks them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(v) for v in value]
    return value


def child_env(settings: BaseModel, inherit: bool = True) -> dict[str, str]:
    """This process's environment (without its ``TRIBUTARY_*`` unless ``inherit``) + settings."""
    base = {k: v for k, v in os.environ.items() if inherit or not k.startswith("TRIBUTARY_")}
    return {**base, **settings_env(settings)}


class PlatformProcess:
    """One child, started, watched and signalled by its own PID.

    The command is ``tributary run <name>`` unless another is given.
    """

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        log: Path,
        ready_url: str | None = None,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = command or [TRIBUTARY, "run", name]
        self.cwd = cwd
        self.env = dict(env)
        self.log = log
        self.ready_url = ready_url
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 90) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.ready_url:
            if self.proc.poll() is not None:
                raise StackError(f"{self.name} exited: {self.log_tail()}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise StackError(f"{self.name} did not become ready: {self.log_tail()}")
            time.sleep(0.2)

    def send(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's process group (its server workers included)."""
        if self.running():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int | None:
        """Stop the child (SIGTERM: let it finish its batch; SIGKILL: a crash)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if sig == signal.SIGKILL:
                    os.killpg(proc.pid, sig)
                else:
                    # As a supervisor does: the main process, which stops its own workers.
                    os.kill(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class Pipeline:
    """The five stream processes, in the order data flows backwards (consumers first)."""

    ORDER = ("enrichment-api", "enricher", "realtime-loader", "batch-loader", "collector")

    def __init__(self, settings: PipelineSettings, log_dir: Path, inherit_env: bool = True):
        self.settings = settings
        env = child_env(settings, inherit=inherit_env)
        env["TRIBUTARY_ENRICHER__ENRICHMENT_URL"] = self.enrichment_url
        log_dir.mkdir(parents=True, exist_ok=True)
        ready = {
            "enrichment-api": f"{self.enrichment_url}/healthz",
            "collector": f"{self.collector_url}/readyz",
        }
        self.processes = {
            name: PlatformProcess(name, env, log_dir / f"{name}.log", ready.get(name))
            for name in self.ORDER
        }

    @property
    def collector_url(self) -> str:
        options = self.settings.collector
        return f"http://{options.host}:{options.port}"

    @property
    def grpc_target(self) -> str:
        options = self.settings.collector
        return f"{options.host}:{options.grpc_port}"

    @property
    def enrichment_url(self) -> str:
        options = self.settings.enrichment
        return f"http://{options.host}:{options.port}"

    def __getitem__(self, name: str) -> PlatformProcess:
        return self.processes[name]

    def __iter__(self) -> Iterator[PlatformProcess]:
        return iter(self.processes.values())

    def exited(self) -> list[str]:
        """The processes that are no longer running."""
        return [p.name for p in self if not p.running()]

    def start(self) -> None:
        try:
            for process in self:
                process.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(list(self)):  # the collector first: nothing new comes in
            process.stop()

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
