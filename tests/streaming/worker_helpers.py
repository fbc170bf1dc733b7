"""Helpers of the stream worker tests: waiting, scrapes of a worker's endpoints, a TCP proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import httpx

from runtime.metrics import Scrape, parse_metrics
from stack.private import free_port


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def scrape(port: int) -> Scrape:
    """The worker's metrics on ``127.0.0.1:port``."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return parse_metrics(response.text)


def healthz(port: int) -> int:
    """The status code of the worker's ``/healthz``."""
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code


def lag(metrics: Scrape, topic: str) -> int:
    return int(
        sum(
            s.value
            for s in metrics.values("tributary_worker_consumer_lag")
            if s.labels["topic"] == topic
        )
    )


def breaker_state(metrics: Scrape) -> str | None:
    name = "tributary_worker_breaker_state"
    return next((s.labels[name] for s in metrics.values(name) if s.value == 1), None)


class TcpProxy:
    """Forwards a local port to ``target`` while up; while down, the port refuses connections.

    ``down`` also cuts the connections in flight, as a server that went away would.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
