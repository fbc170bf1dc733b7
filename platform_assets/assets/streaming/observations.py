"""What the stream workers report about the topics, observed from their ``/metrics``.

Each stream worker serves Prometheus metrics on a loopback port (``runtime.metrics``). An
observation of the topics scrapes the three workers and records, per topic, the consumer lag
of the group that reads it and the dead letters written to it (and their share of what the
worker read). A worker that is down is an observation too (``<worker>_status: down``), never a
failure of the run or of the code location.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from runtime.metrics import Scrape, parse_metrics
from runtime.worker import WorkerEndpoints

# (process name, settings section) of the stream workers.
WORKERS = (
    ("enricher", "enricher"),
    ("realtime-loader", "realtime_loader"),
    ("batch-loader", "batch_loader"),
)


@dataclass
class WorkerScrape:
    """One worker's scrape, or why there is none."""

    worker: str
    url: str
    scrape: Scrape | None = None
    error: str | None = None


def scrape_workers(endpoints: WorkerEndpoints, timeout_s: float = 2.0) -> dict[str, WorkerScrape]:
    """Scrape every stream worker; a worker that does not answer gets its error instead."""
    out: dict[str, WorkerScrape] = {}
    for worker, section in WORKERS:
        url = endpoints.metrics_url(section)
        result = WorkerScrape(worker, url)
        try:
            response = httpx.get(url, timeout=timeout_s)
            response.raise_for_status()
            result.scrape = parse_metrics(response.text)
        except httpx.HTTPError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        out[worker] = result
    return out


def lag_metadata(worker: WorkerScrape, topic: str) -> dict[str, Any]:
    """The lag of ``worker``'s group on ``topic``: total and per partition."""
    prefix = worker.worker.replace("-", "_")
    if worker.scrape is None:
        return {f"{prefix}_status": f"down ({worker.error}) at {worker.url}"}
    partitions = {
        s.labels["partition"]: int(s.value)
        for s in worker.scrape.values("tributary_worker_consumer_lag")
        if s.labels.get("topic") == topic
    }
    return {
        f"{prefix}_status": "up",
        f"{prefix}_lag": sum(partitions.values()),
        f"{prefix}_lag_by_partition": {p: partitions[p] for p in sorted(partitions, key=int)},
    }


def dead_letter_metadata(worker: WorkerScrape) -> dict[str, Any]:
    """The dead letters ``worker`` wrote, by reason, and their share of the records it read."""
    prefix = worker.worker.replace("-", "_")
    if worker.scrape is None:
        return {f"{prefix}_status": f"down ({worker.error}) at {worker.url}"}
    by_reason = {
        reason: int(n)
        for reason, n in worker.scrape.by("tributary_worker_dead_letters_total", "reason").items()
    }
    records_in = worker.scrape.total("tributary_worker_records_in_total")
    dead = sum(by_reason.values())
    return {
        f"{prefix}_status": "up",
        f"{prefix}_dead_letters": dead,
        f"{prefix}_dead_letters_by_reason": by_reason,
        f"{prefix}_dead_letter_rate": round(dead / records_in, 6) if records_in else 0.0,
    }
