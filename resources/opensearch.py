"""OpenSearch client factory (Dagster-free) and the Dagster resource built on it."""

from __future__ import annotations

import dagster as dg
from opensearchpy import OpenSearch
from pydantic import Field, SecretStr

from resources.settings import OpenSearchSettings


def make_opensearch_client(settings: OpenSearchSettings) -> OpenSearch:
    """Return a client for the configured OpenSearch endpoint."""
    auth = None
    if settings.username and settings.password:
        auth = (settings.username, settings.password.get_secret_value())
    return OpenSearch(
        hosts=[settings.url],
        http_auth=auth,
        verify_certs=settings.verify_certs,
        timeout=30,
        retry_on_timeout=True,
        max_retries=3,
    )


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
                password=SecretStr(self.password) if self.password else None,
                index_prefix=self.index_prefix,
            )
        )
