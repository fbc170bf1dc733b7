"""Each stream worker's Prometheus ``/metrics`` and ``/healthz`` on a loopback port.

:class:`WorkerMetrics` holds one worker's counters in a registry of its own (so that several
workers may run in one process, as the tests do); :func:`serve_metrics` serves it from a
small HTTP server thread on ``127.0.0.1``. Consumer lag comes from librdkafka's statistics
(``statistics.interval.ms`` and ``stats_cb``): per assigned partition, the partition's end
(``ls_offset`` under ``read_committed``, the last stable offset) minus the group's committed
offset. librdkafka sees only the commits its consumer makes, not those the enricher makes
through its transactional producer, so each worker also reports what it committed
(:meth:`WorkerMetrics.committed`). ``/healthz`` answers 200 while the worker's loop runs
and has polled Kafka within ``stale_after_s``, 503 otherwise.

:func:`parse_metrics` reads an exposition back (the Dagster observations use it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

METRICS_HOST = "127.0.0.1"
BREAKER_STATES = ("closed", "open", "half-open")


class WorkerMetrics:
    """The metrics of one stream worker (``worker``: its process name)."""

    def __init__(self, worker: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.worker = worker
        self.clock = clock
        self.registry = CollectorRegistry()
        self.records_in = Counter(
            "tributary_worker_records_in",
            "Records consumed, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.records_out = Counter(
            "tributary_worker_records_out",
            "Records written, by destination (a topic, the search engine or `s3`).",
            ["destination"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "tributary_worker_dead_letters",
            "Records written to a dead-letter topic, by failure type.",
            ["reason"],
            registry=self.registry,
        )
        self.retries = Counter(
            "tributary_worker_retries",
            "Failed attempts that will be retried, by dependency.",
            ["dependency"],
            registry=self.registry,
        )
        self.paused_partitions = Gauge(
            "tributary_worker_paused_partitions",
            "Assigned partitions whose consumption is paused (back-pressure).",
            registry=self.registry,
        )
        self.buffered_bytes = Gauge(
            "tributary_worker_buffered_bytes",
            "Record bytes consumed and not yet written (buffers, the batch in hand).",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._ends: dict[tuple[str, int], int] = {}
        self._stats_committed: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._breaker: Callable[[], str] | None = None
        self._instance = ""
        self.running = False
        self.last_poll: float | None = None
        self.registry.register(_Snapshot(self))

    # -- what the worker reports ----------------------------------------------------------

    def started(self, instance_id: str = "") -> None:
        self._instance = instance_id
        self.running = True
        self.beat()

    def stopped(self) -> None:
        self.running = False

    def beat(self) -> None:
        """The loop polled Kafka just now."""
        self.last_poll = self.clock()

    def watch_breaker(self, state: Callable[[], str]) -> None:
        """Report a circuit breaker's state (one of ``BREAKER_STATES``) at every scrape."""
        self._breaker = state

    def committed(self, offsets: Iterable[tuple[str, int, int]]) -> None:
        """Record committed offsets ``(topic, partition, offset)``."""
        with self._lock:
            for topic, partition, offset in offsets:
                self._committed[(topic, partition)] = offset

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """The partitions were revoked: their lag is another member's now."""
        with self._lock:
            for tp in partitions:
                self._ends.pop(tp, None)
                self._stats_committed.pop(tp, None)
                self._committed.pop(tp, None)

    def on_stats(self, stats_json: str) -> None:
        """The consumer's ``stats_cb``: each assigned partition's end and committed offset."""
        stats = orjson.loads(stats_json)
        ends: dict[tuple[str, int], int] = {}
        committed: dict[tuple[str, int], int] = {}
        for topic, t in (stats.get("topics") or {}).items():
            for pid, p in (t.get("partitions") or {}).items():
                partition = int(pid)
                if partition < 0 or not p.get("desired", True):
                    continue  # -1 is librdkafka's internal "unassigned" partition
                end = p.get("ls_offset", -1)
                end = end if isinstance(end, int) and end >= 0 else p.get("hi_offset", -1)
                if isinstance(end, int) and end >= 0:
                    ends[(topic, partition)] = end
                done = p.get("committed_offset", -1)
                if isinstance(done, int) and done >= 0:
                    committed[(topic, partition)] = done
        with self._lock:
            self._ends = ends
            self._stats_committed = committed

    # -- what a scrape reads --------------------------------------------------------------

    def lag(self) -> dict[tuple[str, int], int]:
        """Records of each assigned partition past the group's committed offset."""
        with self._lock:
            out = {}
            for tp, end in self._ends.items():
                done = max(self._committed.get(tp, -1), self._stats_committed.get(tp, -1))
                out[tp] = max(0, end - max(done, 0))
            return out

    def poll_age(self) -> float | None:
        return None if self.last_poll is None else self.clock() - self.last_poll

    def healthy(self, stale_after_s: float) -> bool:
        age = self.poll_age()
        return self.running and age is not None and age <= stale_after_s

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot(Collector):
    """What is read at scrape time: lag, breaker state, loop liveness."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        info = InfoMetricFamily("tributary_worker", "The worker behind this endpoint.")
        info.add_metric([], {"worker": m.worker, "instance_id": m._instance})
        yield info
        lag = GaugeMetricFamily(
            "tributary_worker_consumer_lag",
            "Records of an assigned partition past the group's committed offset.",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in sorted(m.lag().items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
        yield GaugeMetricFamily(
            "tributary_worker_up", "1 while the worker's loop runs.", value=int(m.running)
        )
        age = m.poll_age()
        if age is not None:
            yield GaugeMetricFamily(
                "tributary_worker_last_poll_age_seconds",
                "Seconds since the loop last polled Kafka.",
                value=age,
            )
        if m._breaker is not None:
            current = m._breaker()
            breaker = StateSetMetricFamily(
                "tributary_worker_breaker_state", "The circuit breaker's state."
            )
            breaker.add_metric([], {state: state == current for state in BREAKER_STATES})
            yield breaker


class _Handler(BaseHTTPRequestHandler):
    metrics: WorkerMetrics
    stale_after_s: float

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, self.metrics.render(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            healthy = self.metrics.healthy(self.stale_after_s)
            age = self.metrics.poll_age()
            body = {
                "status": "ok" if healthy else "unavailable",
                "worker": self.metrics.worker,
                "running": self.metrics.running,
                "last_poll_age_s": None if age is None else round(age, 3),
            }
            self._answer(200 if healthy else 503, orjson.dumps(body), "application/json")
        else:
            self._answer(404, b"not found\n", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass  # one line per scrape otherwise


class MetricsPortUnavailable(RuntimeError):
    """The worker's metrics port is taken (another instance on this host?)."""


@contextmanager
def serve_metrics(
    metrics: WorkerMetrics, port: int, stale_after_s: float = 30.0
) -> Iterator[ThreadingHTTPServer]:
    """Serve ``/metrics`` and ``/healthz`` on ``127.0.0.1:port`` (0: any free port) meanwhile."""
    handler = type("Handler", (_Handler,), {"metrics": metrics, "stale_after_s": stale_after_s})
    try:
        server = ThreadingHTTPServer((METRICS_HOST, port), handler)
    except OSError as exc:
        raise MetricsPortUnavailable(
            f"{metrics.worker}: cannot serve /metrics on {METRICS_HOST}:{port} ({exc}); "
            "set another metrics_port (0: any free port)"
        ) from exc
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, name=f"{metrics.worker}-metrics", daemon=True
    )
    thread.start()
    log.info("metrics on http://%s:%d/metrics", METRICS_HOST, server.server_address[1])
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Scrape:
    """A parsed exposition: every sample, looked up by name."""

    samples: list[Sample] = field(default_factory=list)

    def values(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def total(self, name: str) -> float:
        return sum(s.value for s in self.values(name))

    def by(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.values(name):
            key = s.labels.get(label, "")
            out[key] = out.get(key, 0.0) + s.value
        return out


def parse_metrics(text: str) -> Scrape:
    """Parse a Prometheus text exposition."""
    return Scrape(
        [
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    )
