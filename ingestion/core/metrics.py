"""Prometheus metrics of the collector (multi-process aware)."""

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

REQUESTS = Counter(
    "tributary_collector_requests_total", "Requests by path and status.", ["path", "status"]
)
ACCEPTED = Counter(
    "tributary_collector_events_accepted_total", "Events written to the raw topic.", ["path"]
)
REJECTED = Counter(
    "tributary_collector_events_rejected_total",
    "Events written to the dead-letter topic, by reason.",
    ["path", "reason"],
)
DELIVERY = Histogram(
    "tributary_collector_kafka_delivery_seconds",
    "From the first produce of a request to Kafka's last delivery report.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def render() -> tuple[bytes, str]:
    """Return the exposition text; merges all worker processes when several serve."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
