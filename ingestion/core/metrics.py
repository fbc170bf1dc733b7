"""Prometheus metrics of the collector (multi-process aware)."""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import (
    Counter,
    Histogram,
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


# A labelled child is looked up once per process and label values, not once per request.
@functools.cache
def requests(path: str, status: int) -> Any:
    """``REQUESTS`` for one path and status."""
    return REQUESTS.labels(path, status)


@functools.cache
def accepted(path: str) -> Any:
    """``ACCEPTED`` for one path."""
    return ACCEPTED.labels(path)


@functools.cache
def rejected(path: str, reason: str) -> Any:
    """``REJECTED`` for one path and failure type."""
    return REJECTED.labels(path, reason)
