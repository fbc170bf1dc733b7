"""``tributary query "<sql>" [--engine trino|duckdb]``: reporting SQL on the lake, as a table."""

from __future__ import annotations

from typing import Annotated

import duckdb
import typer
from rich.console import Console
from rich.table import Table
from trino.exceptions import TrinoQueryError

from platform_assets.reporting.engines import Engine, run_query
from resources.settings import PlatformSettings

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def query(
    sql: Annotated[str, typer.Argument(help="The SQL; marts.<table> and reporting.<view>.")],
    engine: Annotated[
        Engine | None,
        typer.Option(help="trino, or duckdb (embedded); default: the profile's engine."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many rows.")] = 100,
) -> None:
    """Run one query over the curated lake and print the answer as a table.

    Both engines read the same Iceberg tables: `marts.<table>` (fct_events, fct_sessions,
    fct_order_lines, dim_users, dim_products, dim_date, agg_daily_kpis) and the views
    `reporting.<view>`: daily_kpis, top_products, user_mix (both engines);
    live_events_per_minute, live_dead_letters_by_reason, live_ingest_latency (Trino, over
    the real-time store).
    """
    settings = PlatformSettings()
    chosen = engine or Engine.default(settings)
    try:
        result = run_query(settings, sql, chosen)
    except (TrinoQueryError, duckdb.Error) as exc:
        err.print(f"[red]{chosen} refused the query:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(*result.columns, title=f"{len(result.rows)} rows ({chosen})")
    for row in result.rows[:limit]:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    if len(result.rows) > limit:
        console.print(f"({len(result.rows) - limit} more rows not shown; --limit)")
