"""Prometheus metrics of the collector (multi-process aware)."""

from __future__ import annotations

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
