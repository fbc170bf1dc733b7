"""Run reporting SQL on either engine over the same Iceberg tables.

- **trino**: the server of the ``stack`` profile; the session's default catalog is the
  lake's (``iceberg``), so ``marts.<table>`` and ``reporting.<view>`` resolve as they do in
  DuckDB, and the live views over the search store are there too.
- **duckdb**: embedded, no server. DuckDB cannot load its ``iceberg`` extension on machines
  without access to its extension server, and the extension wheels on PyPI pin one DuckDB
  release; so the marts a query names are read through the profile's Iceberg catalog with
  pyiceberg (``scan().to_arrow()``, any DuckDB version) and registered as ``marts.<table>``,
  and the lake views are created over them from the same SQL as Trino's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import duckdb
from pyiceberg.exceptions import NoSuchNamespaceError

from platform_assets.reporting.views import LAKE_VIEWS, MARTS, SCHEMA, duckdb_sql, referenced_marts
from resources.lake import make_catalog
from resources.settings import LakeCatalog, PlatformSettings
from resources.trino import SESSION_TIME_ZONE, QueryResult, run_trino


class Engine(enum.StrEnum):
    TRINO = "trino"
    DUCKDB = "duckdb"

    @classmethod
    def default(cls, settings: PlatformSettings) -> Engine:
        """Trino when the lake is in the REST catalog (Trino reads it), else embedded DuckDB."""
        return cls.TRINO if settings.lake_catalog is LakeCatalog.REST else cls.DUCKDB


def duckdb_lake(settings: PlatformSettings, marts: Iterable[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with ``marts`` registered from the lake and the lake views on them.

    Only the named marts are read (a query's own); a lake view is created when every mart it
    reads is there.
    """
    con = duckdb.connect()
    con.execute(f"set TimeZone = '{SESSION_TIME_ZONE}'")
    con.execute(f"create schema {MARTS}")
    con.execute(f"create schema {SCHEMA}")
    catalog = make_catalog(settings)
    try:
        existing = {name for _, name in catalog.list_tables(MARTS)}
    except NoSuchNamespaceError:
        existing = set()
    loaded = set()
    for name in sorted(set(marts) & existing):
        arrow = catalog.load_table((MARTS, name)).scan().to_arrow()
        con.register(f"_lake_{MARTS}_{name}", arrow)
        con.execute(f"create view {MARTS}.{name} as select * from _lake_{MARTS}_{name}")
        loaded.add(name)
    for view in LAKE_VIEWS:
        if set(view.marts) <= loaded:
            con.execute(duckdb_sql(view))
    return con


def run_duckdb(settings: PlatformSettings, sql: str) -> QueryResult:
    with duckdb_lake(settings, referenced_marts(sql)) as con:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return QueryResult(columns, [tuple(row) for row in cursor.fetchall()])


def run_query(settings: PlatformSettings, sql: str, engine: Engine) -> QueryResult:
    """Run ``sql`` on ``engine``; ``marts.<table>`` and ``reporting.<view>`` name the same data."""
    if engine is Engine.TRINO:
        return run_trino(settings.trino, sql, catalog=settings.trino.iceberg_catalog)
    return run_duckdb(settings, sql)
