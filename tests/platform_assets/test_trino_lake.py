"""Trino over the lake that the Dagster assets wrote: same answers, views, and the query CLI.

A curated lake of the test's own (``lake_on_stack``) on the real SeaweedFS, OpenSearch and
Trino: Trino's answers must equal what pyiceberg reads of the same tables, partition by
partition; the reporting views are created by their Dagster assets and must agree with the
marts computed independently here; ``tributary query`` must answer alike on both engines.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl
import pytest
from typer.testing import CliRunner

import cli.query
from cli.main import app
from platform_assets.definitions import build_definitions
from platform_assets.reporting.engines import Engine, run_query
from platform_assets.reporting.views import LAKE_VIEWS, LIVE_VIEWS
from resources.settings import PlatformSettings
from resources.trino import run_trino
from tests.platform_assets.lake_on_stack import CuratedLake, curated_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 30_000
MARTS = (
    "fct_events",
    "fct_sessions",
    "fct_order_lines",
    "dim_users",
    "dim_products",
    "dim_date",
    "agg_daily_kpis",
)
PARTITIONED = {"fct_events", "fct_sessions", "fct_order_lines", "agg_daily_kpis"}
NUMERIC = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Float32, pl.Float64)


def _sum(frame: pl.DataFrame, column: str) -> object:
    # Polars sums an Int32 column as Int32 (and wraps); Trino sums integers as bigint.
    series = frame.get_column(column)
    return (series.cast(pl.Int64) if series.dtype.is_integer() else series).sum()


@pytest.fixture(scope="module")
def lake(trino: PlatformSettings) -> Iterator[CuratedLake]:
    with curated_lake(trino, EVENTS) as made:
        yield made


def _close(a: object, b: object, abs_tol: float = 1e-6) -> bool:
    if isinstance(a, float) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=abs_tol)
    return a == b


def _trino(lake: CuratedLake, sql: str) -> list[tuple[object, ...]]:
    return run_trino(lake.settings.trino, sql, catalog=lake.settings.trino.iceberg_catalog).rows


def test_trino_reads_every_mart_as_dagster_wrote_it(lake: CuratedLake) -> None:
    for name in MARTS:
        frame = lake.mart(name)
        assert frame.height > 0, name
        numeric = [c for c, t in frame.schema.items() if isinstance(t, NUMERIC)]
        sums = "".join(f", sum({c})" for c in numeric)
        if name in PARTITIONED:
            for day in lake.days:
                part = frame.filter(pl.col("event_date") == day)
                assert part.height > 0, (name, day)
                rows = _trino(
                    lake,
                    f"select count(*){sums} from marts.{name} "
                    f"where event_date = date '{day.isoformat()}'",
                )
                expected = (part.height, *(_sum(part, c) for c in numeric))
                assert all(_close(a, b) for a, b in zip(rows[0], expected, strict=True)), name
        else:
            rows = _trino(lake, f"select count(*){sums} from marts.{name}")
            expected = (frame.height, *(_sum(frame, c) for c in numeric))
            assert all(_close(a, b) for a, b in zip(rows[0], expected, strict=True)), (
                name,
                rows[0],
                expected,
            )


def test_the_kpi_rows_are_identical_column_by_column(lake: CuratedLake) -> None:
    frame = lake.mart("agg_daily_kpis").sort("date")
    result = run_trino(
        lake.settings.trino,
        "select * from marts.agg_daily_kpis order by date",
        catalog=lake.settings.trino.iceberg_catalog,
    )
    assert result.columns == frame.columns
    assert len(result.rows) == frame.height == len(lake.days)
    for got, want in zip(result.rows, frame.iter_rows(), strict=True):
        mismatched = [
            c for c, a, b in zip(frame.columns, got, want, strict=True) if not _close(a, b)
        ]
        assert not mismatched, mismatched


@pytest.fixture(scope="module")
def views(lake: CuratedLake) -> CuratedLake:
    defs = build_definitions(lake.settings)
    result = defs.get_job_def("reporting_views_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    created = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}  # type: ignore[union-attr]
    assert created == {v.name for v in (*LAKE_VIEWS, *LIVE_VIEWS)}
    return lake


def _top_products(lake: CuratedLake) -> pl.DataFrame:
    """top_products computed here with polars, independently of the view's SQL."""
    lines = lake.mart("fct_order_lines")
    products = lake.mart("dim_products").select("product_id", "product_name", "category")
    sold = (
        lines.group_by("event_date", "product_id")
        .agg(
            units=pl.col("quantity").sum(),
            orders=pl.col("order_id").n_unique(),
            revenue_eur=pl.col("line_amount_eur").sum().round(2),
        )
        .join(products, on="product_id", how="left")
        .sort("event_date", pl.col("revenue_eur"), "product_id", descending=[False, True, False])
    )
    return sold.with_columns(revenue_rank=pl.int_range(1, pl.len() + 1).over("event_date")).rename(
        {"event_date": "date"}
    )


def test_dagster_creates_the_views_and_they_agree_with_the_marts(views: CuratedLake) -> None:
    listed = {r[0] for r in _trino(views, "select table_name from information_schema.views")}
    assert listed == {v.name for v in (*LAKE_VIEWS, *LIVE_VIEWS)}

    kpis = views.mart("agg_daily_kpis").sort("date")
    daily = _trino(
        views,
        "select date, sessions, conversion_overall, revenue_eur "
        "from reporting.daily_kpis order by date",
    )
    assert daily == list(
        kpis.select("date", "sessions", "conversion_overall", "revenue_eur").iter_rows()
    )

    mix = _trino(
        views,
        "select date, users, new_users, returning_users from reporting.user_mix order by date",
    )
    assert mix == list(kpis.select("date", "users", "new_users", "returning_users").iter_rows())
    assert all(row[1] == row[2] + row[3] for row in mix)  # type: ignore[operator]

    top = _trino(
        views,
        "select date, revenue_rank, product_id, product_name, units, orders, revenue_eur "
        "from reporting.top_products order by date, revenue_rank",
    )
    expected = _top_products(views).select(
        "date", "revenue_rank", "product_id", "product_name", "units", "orders", "revenue_eur"
    )
    assert len(top) == expected.height > len(views.days)
    for got, want in zip(top, expected.iter_rows(), strict=True):
        # Money rounded to the cent: sums in another order may round the last cent apart.
        assert all(_close(a, b, abs_tol=0.0101) for a, b in zip(got, want, strict=True)), got


REPORTING_QUERY = (
    "select k.date, k.sessions, k.revenue_eur, k.conversion_overall, m.new_user_share, "
    "t.product_id as top_product, t.revenue_eur as top_product_revenue_eur "
    "from reporting.daily_kpis k join reporting.user_mix m on m.date = k.date "
    "join reporting.top_products t on t.date = k.date and t.revenue_rank = 1 order by k.date"
)


def test_both_engines_give_the_same_answer(views: CuratedLake) -> None:
    trino = run_query(views.settings, REPORTING_QUERY, Engine.TRINO)
    duckdb = run_query(views.settings, REPORTING_QUERY, Engine.DUCKDB)
    assert trino.columns == duckdb.columns
    assert len(trino.rows) == len(views.days)
    for a, b in zip(trino.rows, duckdb.rows, strict=True):
        assert all(_close(x, y) for x, y in zip(a, b, strict=True)), (a, b)
    assert isinstance(trino.rows[0][0], date)


def test_the_query_command_prints_the_same_table_on_both_engines(
    views: CuratedLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command reads its settings from the environment; the lake here is the test's own.
    monkeypatch.setattr(cli.query, "PlatformSettings", lambda: views.settings)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    sql = "select date, sessions, revenue_eur from reporting.daily_kpis order by date"
    printed = {}
    for engine in ("trino", "duckdb"):
        result = runner.invoke(app, ["query", sql, "--engine", engine])
        assert result.exit_code == 0, result.output
        assert f"{len(views.days)} rows ({engine})" in result.output
        printed[engine] = [line for line in result.output.splitlines() if "│" in line]
    assert printed["trino"] == printed["duckdb"]
    kpis = views.mart("agg_daily_kpis").sort("date")
    for line, (day, sessions) in zip(
        printed["trino"], kpis.select("date", "sessions").iter_rows(), strict=True
    ):
        cells = [c.strip() for c in line.split("│")[1:-1]]
        assert cells[:2] == [day.isoformat(), str(sessions)]

    refused = runner.invoke(
        app, ["query", "select * from marts.no_such_table", "--engine", "trino"]
    )
    assert refused.exit_code == 1
    assert "refused the query" in refused.output
