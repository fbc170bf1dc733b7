"""Kafka client factories, free of Dagster: the collector and workers import them."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from resources.settings import KafkaSettings

# Idempotent, acks=all: a retried send never duplicates and an acknowledged record is on
# every in-sync replica. Callers may override the batching knobs, not these guarantees.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "zstd",
    "linger.ms": 5,
}

# Offsets are stored by the application only after its write succeeded (at-least-once, or
# exactly-once together with transactions); the consumer never reads aborted records.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
}


def make_kafka_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """Return an idempotent ``acks=all`` producer; ``overrides`` use librdkafka names."""
    return Producer({**settings.client_config(), **PRODUCER_DEFAULTS, **overrides})


def make_kafka_consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    """Return a ``read_committed`` consumer that leaves offset storing to the caller."""
    return Consumer(
        {**settings.client_config(), **CONSUMER_DEFAULTS, "group.id": group_id, **overrides}
    )


def make_kafka_admin(settings: KafkaSettings, **overrides: Any) -> AdminClient:
    """Return an admin client for topic management."""
    return AdminClient({**settings.client_config(), **overrides})
