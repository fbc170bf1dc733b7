"""The reporting views' SQL, rendered for each engine, and DuckDB's engine on the embedded lake."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from platform_assets.reporting.engines import Engine, run_query
from platform_assets.reporting.views import (
    LIVE_INGEST_LATENCY,
    TOP_PRODUCTS,
    VIEWS,
    duckdb_sql,
    referenced_marts,
    trino_sql,
)
from resources.lake import make_catalog
from resources.settings import PlatformSettings, Profile

pytestmark = pytest.mark.unit


def test_a_query_reads_the_marts_it_names_and_those_of_its_views() -> None:
    assert referenced_marts("select * from marts.fct_events") == {"fct_events"}
    assert referenced_marts("SELECT * FROM Reporting.Top_Products t JOIN marts.dim_date d") == {
        "fct_order_lines",
        "dim_products",
        "dim_date",
    }
    assert referenced_marts("select * from reporting.live_ingest_latency") == set()


def test_views_are_rendered_with_the_settings_names() -> None:
    settings = PlatformSettings.model_validate(
        {"search": {"index_prefix": "shop"}, "trino": {"iceberg_catalog": "lake"}}
    )
    top = trino_sql(TOP_PRODUCTS, settings)
    assert top.startswith("create or replace view lake.reporting.top_products as")
    assert "lake.marts.fct_order_lines" in top and "lake.marts.dim_products" in top
    live = trino_sql(LIVE_INGEST_LATENCY, settings)
    assert 'opensearch.default."shop-events"' in live
    with pytest.raises(ValueError, match="only Trino"):
        duckdb_sql(LIVE_INGEST_LATENCY)
    assert all(v.live == (v.name.startswith("live_")) for v in VIEWS.values())


def test_duckdb_answers_the_views_from_the_embedded_lake(tmp_path: Path) -> None:
    settings = PlatformSettings.model_validate(
        {"profile": Profile.LOCAL, "lake": {"local_root": tmp_path / "lake"}}
    )
    catalog = make_catalog(settings)
    catalog.create_namespace("marts")
    day = date(2026, 11, 28)
    lines = pa.table(
        {
            "event_date": [day] * 5,
            "order_id": ["o1", "o1", "o2", "o3", "o3"],
            "product_id": ["p1", "p2", "p1", "p3", "p2"],
            "quantity": [1, 2, 1, 4, 1],
            "line_amount_eur": [10.004, 5.0, 10.004, 2.5, 5.0],  # quantity x unit price
        }
    )
    products = pa.table(
        {"product_id": ["p1", "p2"], "product_name": ["Parka", "Vest"], "category": ["a", "b"]}
    )
    for name, rows in (("fct_order_lines", lines), ("dim_products", products)):
        catalog.create_table(f"marts.{name}", schema=rows.schema).append(rows)

    result = run_query(
        settings,
        "select revenue_rank, product_id, product_name, units, orders, revenue_eur "
        "from reporting.top_products order by revenue_rank",
        Engine.DUCKDB,
    )
    # Revenue rounded to the cent (p1: 20.008), orders counted once per order, and a product
    # missing from the dimension kept, without a name.
    assert result.rows == [
        (1, "p1", "Parka", 2, 2, 20.01),
        (2, "p2", "Vest", 3, 2, 10.0),
        (3, "p3", None, 4, 1, 2.5),
    ]
    # A view whose marts are not in the lake is not made: the query says what is missing.
    with pytest.raises(duckdb.CatalogException, match="daily_kpis"):
        run_query(settings, "select * from reporting.daily_kpis", Engine.DUCKDB)
