"""Thin Dagster resources over the Dagster-free factories of this package."""

from __future__ import annotations

from typing import Any

import dagster as dg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from opensearchpy import OpenSearch
from pydantic import Field, SecretStr

from resources.kafka import make_kafka_admin, make_kafka_consumer, make_kafka_producer
from resources.opensearch import make_opensearch_client
from resources.settings import KafkaSettings, OpenSearchSettings, TrinoSettings
from resources.trino import QueryResult, run_trino


def resolved(value: str | None) -> str | None:
    """The value of a secret field, also for a resource used directly (outside a run).

    Dagster resolves a ``dg.EnvVar`` when it initialises the resource for a run; a resource
    called directly still holds the reference.
    """
    return value.get_value() if isinstance(value, dg.EnvVar) else value


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
                "sasl_password": resolved(self.sasl_password),
            }
        )

    def get_producer(self, **overrides: Any) -> Producer:
        return make_kafka_producer(self._settings(), **overrides)

    def get_consumer(self, group_id: str, **overrides: Any) -> Consumer:
        return make_kafka_consumer(self._settings(), group_id, **overrides)

    def get_admin(self, **overrides: Any) -> AdminClient:
        return make_kafka_admin(self._settings(), **overrides)


class OpenSearchResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """OpenSearch connection for Dagster assets and sensors."""

    url: str = Field(description="OpenSearch HTTP endpoint, e.g. http://127.0.0.1:9200.")
    username: str | None = Field(None, description="Basic-auth user, if security is on.")
    password: str | None = Field(None, description="Basic-auth password (pass a dg.EnvVar).")
    index_prefix: str = Field("tributary", description="Prefix of the platform's indices.")

    def get_client(self) -> OpenSearch:
        return make_opensearch_client(
            OpenSearchSettings(
                url=self.url,
                username=self.username,
                password=SecretStr(secret) if (secret := resolved(self.password)) else None,
                index_prefix=self.index_prefix,
            )
        )


class TrinoResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Trino connection for Dagster assets (the reporting views)."""

    url: str = Field(description="Trino coordinator, e.g. http://127.0.0.1:8080.")
    user: str = Field("tributary", description="User that queries run as.")
    password: str | None = Field(None, description="Password, if any (pass a dg.EnvVar).")

    def execute(self, sql: str) -> QueryResult:
        settings = TrinoSettings(
            url=self.url,
            user=self.user,
            password=SecretStr(secret) if (secret := resolved(self.password)) else None,
        )
        return run_trino(settings, sql)
