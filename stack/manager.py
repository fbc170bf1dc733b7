"""Bring the local servers up, report on them, and stop exactly the ones we started."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from stack.config import StackSettings
from stack.errors import StackError
from stack.process import ManagedProcess, port_in_use
from stack.services.base import Service
from stack.services.elasticsearch import ElasticsearchServer
from stack.services.kafka import Kafka
from stack.services.kafka_connect import KafkaConnect
from stack.services.opensearch import OpenSearchServer
from stack.services.postgres import Postgres
from stack.services.seaweedfs import SeaweedFS
from stack.services.superset import Superset
from stack.services.trino import TrinoServer

SERVICES: dict[str, type[Service]] = {
    cls.name: cls
    for cls in (
        Kafka,
        SeaweedFS,
        OpenSearchServer,
        ElasticsearchServer,
        TrinoServer,
        Superset,
        Postgres,
        KafkaConnect,
    )
}


class State(enum.StrEnum):
    HEALTHY = "healthy"
    """Started by us and answering."""
    EXTERNAL = "external"
    """Answering at its configured address, but not started by this stack: reused as is."""
    STARTING = "unhealthy"
    """Our process runs but does not answer (yet)."""
    DEAD = "dead"
    """We started it and it has exited since."""
    STOPPED = "stopped"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: State
    pid: int | None
    url: str
    log: str

    @property
    def ok(self) -> bool:
        return self.state in (State.HEALTHY, State.EXTERNAL)


Reporter = Callable[[str], None]


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.state_dir = settings.stack.state_dir.resolve()
        self.services = {name: cls(settings) for name, cls in SERVICES.items()}
        self._pool = ThreadPoolExecutor(len(SERVICES), thread_name_prefix="fetch")
        self._installs: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def folders(self) -> str:
        """One line: where the servers keep their state and where the downloads are cached."""
        cache = self.settings.stack.cache_dir.expanduser().resolve()
        return (
            f"state folder: {self.state_dir} (TRIBUTARY_STACK__STATE_DIR); download cache: "
            f"{cache} (servers, Superset's virtualenv; TRIBUTARY_STACK__CACHE_DIR)"
        )

    def select(self, names: Iterable[str] | None) -> list[Service]:
        """The named services, every one for ``None``, none for an empty list."""
        if names is None:
            return list(self.services.values())
        chosen = list(names)
        unknown = [n for n in chosen if n not in self.services]
        if unknown:
            raise StackError(
                f"unknown service(s) {', '.join(unknown)}; known: {', '.join(self.services)}"
            )
        return [self.services[n] for n in chosen]

    def in_use(self) -> list[Service]:
        """The services the platform's settings use: every one but the idle search engine."""
        return [s for s in self.services.values() if s.in_use()]

    def _process(self, service: Service) -> ManagedProcess:
        return ManagedProcess(service.name, self.state_dir)

    def status(self, names: Iterable[str] | None = None) -> list[ServiceStatus]:
        out = []
        for service in self.select(names):
            proc = self._process(service)
            rec = proc.record()
            if rec is not None and rec.alive():
                state = State.HEALTHY if service.healthy() else State.STARTING
                pid: int | None = rec.pid
            elif rec is not None:
                state, pid = State.DEAD, rec.pid
            else:
                state = State.EXTERNAL if service.healthy() else State.STOPPED
                pid = None
            out.append(ServiceStatus(service.name, state, pid, service.url, str(proc.log_file)))
        return out

    def prefetch(self, names: Iterable[str] | None = None) -> None:
        """Start fetching what the services need, in the background; ``up`` waits for it."""
        for service in self.select(names):
            self._install(service)

    def _install(self, service: Service) -> Future[None]:
        """The one fetch of ``service`` (downloads run side by side, each only once)."""
        with self._lock:
            if service.name not in self._installs:
                self._installs[service.name] = self._pool.submit(service.install)
            return self._installs[service.name]

    def up(
        self, names: Iterable[str] | None = None, report: Reporter = lambda _: None
    ) -> list[str]:
        """Start what is not running; return the names of the services this call started.

        The servers to start are fetched side by side, then launched, each once the services
        it ``needs`` (among those started here) answer, and waited for together; each is
        provisioned, in the stack's order, once all are healthy. Without ``names``: the
        services the platform's settings use (:meth:`Service.in_use`).
        """
        chosen = self.select(names) if names is not None else self.in_use()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        to_start = []
        for service in chosen:
            proc = self._process(service)
            rec = proc.record()
            if rec is not None and rec.alive():
                self._wait_healthy(service, proc)
                report(f"{service.name}: already running (pid {rec.pid}) at {service.url}")
            elif rec is None and service.healthy():
                report(f"{service.name}: reusing the server already answering at {service.url}")
            else:
                if rec is not None:
                    report(f"{service.name}: previous process {rec.pid} had died; restarting")
                    proc.stop(timeout=1)
                self._check_ports(service)
                to_start.append(service)
        if to_start:
            report(f"fetching {', '.join(s.name for s in to_start)} (cached after the first run)")
        fetches = [self._install(service) for service in to_start]
        for fetch in fetches:
            fetch.result()
        launched: list[tuple[Service, ManagedProcess, float]] = []
        starting = {s.name for s in to_start}
        # Those that wait for no other first (Superset's first start initialises its database
        # while the JVMs boot).
        to_start.sort(key=lambda s: bool(starting & set(s.needs)))
        try:
            for service in to_start:
                for other, proc, _ in launched:
                    if other.name in service.needs:
                        self._wait_healthy(other, proc)
                proc = self._process(service)
                command, env = service.launch()
                began = time.monotonic()
                proc.start(command, env, cwd=service.home)
                launched.append((service, proc, began))
            for service, proc, began in launched:
                self._wait_healthy(service, proc)
                pid = rec.pid if (rec := proc.record()) else "?"
                report(
                    f"{service.name}: started (pid {pid}) at {service.url} "
                    f"in {time.monotonic() - began:.1f}s"
                )
        except BaseException:
            for other, proc, _ in reversed(launched):
                proc.stop(self.settings.stack.stop_timeout_s, other.stop_signal)
            raise
        for service in chosen:
            for line in service.provision():
                report(f"{service.name}: {line}")
        return [s.name for s in chosen if s.name in starting]

    def _check_ports(self, service: Service) -> None:
        taken = {role: p for role, p in service.ports().items() if port_in_use(p)}
        if taken:
            ports = ", ".join(f"{p} ({role})" for role, p in taken.items())
            raise StackError(
                f"{service.name}: port {ports} on 127.0.0.1 is already in use by another "
                "process. Stop that process, or move this service to a free port "
                "(see 'Ports' in the README for the TRIBUTARY_* setting of each port)."
            )

    def _wait_healthy(self, service: Service, proc: ManagedProcess) -> None:
        deadline = time.monotonic() + self.settings.stack.start_timeout_s
        while time.monotonic() < deadline:
            rec = proc.record()
            if rec is None or not rec.alive():
                raise StackError(
                    f"{service.name} exited during start-up; last lines of {proc.log_file}:\n"
                    f"{proc.log_tail()}"
                )
            if service.healthy():
                return
            time.sleep(0.5)
        raise StackError(
            f"{service.name} did not become healthy within "
            f"{self.settings.stack.start_timeout_s:.0f}s (TRIBUTARY_STACK__START_TIMEOUT_S); "
            f"last lines of {proc.log_file}:\n{proc.log_tail()}"
        )

    def down(
        self, names: Iterable[str] | None = None, report: Reporter = lambda _: None
    ) -> list[str]:
        """Stop the services this stack started (never a server it merely reused)."""
        stopped = []
        # Reverse order: clients of a service go down before it.
        for service in reversed(self.select(names)):
            proc = self._process(service)
            if proc.stop(self.settings.stack.stop_timeout_s, service.stop_signal):
                stopped.append(service.name)
                report(f"{service.name}: stopped")
            else:
                report(f"{service.name}: not running (nothing of ours to stop)")
        return stopped
