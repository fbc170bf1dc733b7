"""Trino client factory (Dagster-free): the query CLI, the Dagster resource and the tests use it.

Every session runs in UTC, so timestamps without a zone (the OpenSearch catalog's) and
``current_timestamp`` mean the same instant whoever asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trino
from trino.auth import BasicAuthentication

from resources.settings import TrinoSettings

SESSION_TIME_ZONE = "UTC"


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of one query, whichever engine answered it."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def make_trino_connection(
    settings: TrinoSettings, catalog: str | None = None, schema: str | None = None
) -> trino.dbapi.Connection:
    """Return a DB-API connection to the configured Trino, as ``settings.user``."""
    parts = urlsplit(settings.url)
    if parts.hostname is None:
        raise ValueError(f"TRIBUTARY_TRINO__URL '{settings.url}' has no host")
    auth = None
    if settings.password is not None:
        auth = BasicAuthentication(settings.user, settings.password.get_secret_value())
    connection: trino.dbapi.Connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=parts.hostname,
        port=parts.port or (443 if parts.scheme == "https" else 8080),
        http_scheme=parts.scheme or "http",
        user=settings.user,
        auth=auth,
        catalog=catalog,
        schema=schema,
        timezone=SESSION_TIME_ZONE,
    )
    return connection


def run_trino(
    settings: TrinoSettings, sql: str, catalog: str | None = None, schema: str | None = None
) -> QueryResult:
    """Run one statement and fetch every row."""
    with make_trino_connection(settings, catalog, schema) as conn:
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            rows = [tuple(row) for row in cursor.fetchall()]
            columns = [d[0] for d in cursor.description or []]
        finally:
            cursor.close()
    return QueryResult(columns, rows)
