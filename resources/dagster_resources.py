"""Thin Dagster resources over the Dagster-free factories of this package."""

from __future__ import annotations

from typing import Any

import dagster as dg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from pydantic import Field, SecretStr

from resources.kafka import make_kafka_admin, make_kafka_consumer, make_kafka_producer
from resources.search import SearchStore, make_search_store
from resources.settings import KafkaSettings, SearchEngine, SearchSettings, TrinoSettings
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


class SearchResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The search store (OpenSearch or Elasticsearch) for Dagster assets and sensors."""

    engine: str = Field("opensearch", description="opensearch | elasticsearch")
    url: str = Field(description="The engine's HTTP endpoint, e.g. http://127.0.0.1:9200.")
    username: str | None = Field(None, description="Basic-auth user, if security is on.")
    password: str | None = Field(None, description="Basic-auth password (pass a dg.EnvVar).")
    ca_certs: str | None = Field(None, description="CA bundle of the server's TLS certificate.")
    index_prefix: str = Field("tributary", description="Prefix of the platform's indices.")

    def search_settings(self) -> SearchSettings:
        engine = SearchEngine(self.engine)
        connection = {
            "url": self.url,
            "username": self.username,
            "password": SecretStr(secret) if (secret := resolved(self.password)) else None,
            "ca_certs": self.ca_certs,
        }
        return SearchSettings.model_validate(
            {"engine": engine, "index_prefix": self.index_prefix, engine.value: connection}
        )

    def get_store(self) -> SearchStore:
        return make_search_store(self.search_settings())


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
