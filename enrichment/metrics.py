"""Prometheus metrics of the enrichment API (multi-process aware)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("tributary_enrichment_requests_total", "Requests by status.", ["status"])
EVENTS = Counter("tributary_enrichment_events_total", "Events enriched.")
BATCH_LATENCY = Histogram(
    "tributary_enrichment_batch_seconds",
    "Time to enrich one batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def render() -> tuple[bytes, str]:
    """Return the exposition text; merges all worker processes when several serve."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
