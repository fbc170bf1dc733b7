"""Kafka client factories (Dagster-free) and the Dagster resource built on them."""

from __future__ import annotations

from typing import Any

import dagster as dg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pydantic import Field

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


class KafkaResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Kafka connection for Dagster assets and sensors."""

    bootstrap_servers: str = Field(description="Comma-separated host:port list of brokers.")
    security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_SSL, ...")
    sasl_mechanism: str | None = Field(None, description="SASL mechanism, if any.")
    sasl_username: str | None = Field(None, description="SASL user name, if any.")
    sasl_password: str | None = Field(None, description="SASL password (pass a dg.EnvVar).")

    def _settings(self) -> KafkaSettings:
        return KafkaSettings.model_validate(
            {
                "bootstrap_servers": self.bootstrap_servers,
                "security_protocol": self.security_protocol,
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_username": self.sasl_username,
                "sasl_password": self.sasl_password,
            }
        )

    def get_producer(self, **overrides: Any) -> Producer:
        return make_kafka_producer(self._settings(), **overrides)

    def get_consumer(self, group_id: str, **overrides: Any) -> Consumer:
        return make_kafka_consumer(self._settings(), group_id, **overrides)

    def get_admin(self, **overrides: Any) -> AdminClient:
        return make_kafka_admin(self._settings(), **overrides)
