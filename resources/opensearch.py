"""OpenSearch client factory, free of Dagster: the workers import it."""

from __future__ import annotations

from opensearchpy import OpenSearch

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
