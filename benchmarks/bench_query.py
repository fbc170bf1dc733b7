"""Reporting queries on Trino and on DuckDB over the same Iceberg tables, in one run.

One run:

1. starts SeaweedFS, OpenSearch and Trino of its own on free ports (``private_stack``) and
   records Trino's start (process start to ``/v1/info`` not starting) and resident memory;
2. makes one day of ``--events`` synthetic raw-zone rows (``synthetic.write_raw_zone``,
   cached in ``--data-dir``), uploads them to the private S3 and materialises the curated
   chain for that day and the day before with the ``stack`` profile's Dagster resources, into
   SeaweedFS's Iceberg REST catalog; then runs ``reporting_views_job`` (the views in Trino);
3. runs the fixed set of reporting queries (``QUERIES``) on both engines, ``--repeats``
   times each, and prints the first (cold) and the median of the others per engine, and the
   ratio DuckDB / Trino of the medians.

DuckDB reads the marts through pyiceberg into Arrow (``platform_assets.reporting.engines``):
that load is timed on its own (``duckdb load``) and once per query in ``duckdb cold``
(``run_query``, what ``tributary query --engine duckdb`` does); the medians run on a
connection that has the marts loaded. Trino's memory is the RSS of its process after the
queries. No target: the figures compare within one run only.

Run: ``uv run python benchmarks/bench_query.py`` (10,000,000 events: about 20 minutes and
12 GB of memory at the peak, in the curation step) or ``--events 1000000`` for a quick run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
import psutil
from bench_enricher import private_stack, say, stoppable

from platform_assets.assets.lake.curated import CURATED_ASSETS
from platform_assets.curation.synthetic import SyntheticConfig, upload_raw_zone, write_raw_zone
from platform_assets.definitions import build_definitions
from platform_assets.reporting.engines import Engine, duckdb_lake, run_query
from platform_assets.reporting.views import LAKE_VIEWS, referenced_marts
from platform_assets.resources import resources_for
from resources.s3 import ensure_buckets
from resources.settings import PlatformSettings, Profile
from stack.manager import Stack
from stack.process import ManagedProcess

DAY = date(2026, 11, 28)

QUERIES = {
    "daily KPIs (view)": "select * from reporting.daily_kpis order by date",
    "top 10 products (view)": (
        "select * from reporting.top_products where revenue_rank <= 10 order by date, revenue_rank"
    ),
    "new vs returning (view)": "select * from reporting.user_mix order by date",
    "events by hour and name": (
        "select event_date, event_hour, event_name, count(*) as events, "
        "sum(amount_eur) as amount_eur from marts.fct_events "
        "group by event_date, event_hour, event_name order by 1, 2, 3"
    ),
    "users per day": (
        "select event_date, count(distinct user_key) as users from marts.fct_events "
        "group by event_date order by 1"
    ),
    "sessions by device and country": (
        "select device_class, country_code, count(*) as sessions, avg(duration_s) as duration_s, "
        "sum(revenue_eur) as revenue_eur from marts.fct_sessions "
        "group by device_class, country_code order by sessions desc, 1, 2 limit 20"
    ),
    "revenue by category": (
        "select p.category, count(distinct l.order_id) as orders, "
        "round(sum(l.line_amount_eur), 2) as revenue_eur from marts.fct_order_lines l "
        "join marts.dim_products p on p.product_id = l.product_id "
        "group by p.category order by 3 desc"
    ),
}


def _wait_started(url: str, began: float, timeout: float = 300) -> float:
    while time.monotonic() - began < timeout:
        try:
            if httpx.get(f"{url}/v1/info", timeout=2).json().get("starting") is False:
                return time.monotonic() - began
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError("Trino did not start")


def _rss_mb(pid: int) -> float:
    rss = 0
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        rss += proc.memory_info().rss
    return rss / 2**20


def _timed(fn: object) -> float:
    began = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the day")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each query per engine")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "tributary-bench-query",
        help="cache of the generated raw zone",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' folder")
    args = parser.parse_args()

    raw = args.data_dir / f"raw-{args.events}"
    if not (raw / ".complete").exists():
        say(f"generating {args.events:,} events for {DAY} in {raw}")
        write_raw_zone(SyntheticConfig(day=DAY, events=args.events), raw)
        (raw / ".complete").touch()

    with (
        stoppable(),
        private_stack(["seaweedfs", "opensearch"], "bench-query-", args.keep) as (
            stack_settings,
            work,
        ),
    ):
        # Trino last, timed on its own: from the process start to /v1/info not starting.
        stack = Stack(stack_settings)
        trino = stack.services["trino"]
        trino.install()
        command, env = trino.launch()
        process = ManagedProcess("trino", stack.state_dir)
        began = time.monotonic()
        record = process.start(command, env, cwd=trino.home)
        try:
            start_s = _wait_started(trino.url, began)
            rss_started = _rss_mb(record.pid)
            say(f"trino started in {start_s:.1f}s, RSS {rss_started:.0f} MB")
            # model_copy skips validation: the private servers run with the local secrets.
            settings: PlatformSettings = stack_settings.model_copy(
                update={"profile": Profile.STACK}
            )
            ensure_buckets(settings.s3)
            began = time.monotonic()
            objects = upload_raw_zone(raw, settings.s3)
            say(f"uploaded {len(objects)} objects in {time.monotonic() - began:.1f}s")
            for day in (DAY - timedelta(days=1), DAY):
                began = time.monotonic()
                result = dg.materialize(
                    CURATED_ASSETS,
                    partition_key=day.isoformat(),
                    resources=resources_for(settings),
                    instance=dg.DagsterInstance.ephemeral(),
                )
                assert result.success, day
                say(f"curated {day} in {time.monotonic() - began:.1f}s")
            views = build_definitions(settings).get_job_def("reporting_views_job")
            assert views.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
            rows = run_query(settings, "select count(*) from marts.fct_events", Engine.TRINO)
            say(f"fct_events: {rows.rows[0][0]:,} rows")

            all_marts = set().union(*(referenced_marts(sql) for sql in QUERIES.values()))
            all_marts |= {m for v in LAKE_VIEWS for m in v.marts}
            began = time.perf_counter()
            con = duckdb_lake(settings, all_marts)
            load_s = time.perf_counter() - began
            figures = []
            for name, sql in QUERIES.items():
                trino_cold = _timed(lambda sql=sql: run_query(settings, sql, Engine.TRINO))
                trino_warm = statistics.median(
                    _timed(lambda sql=sql: run_query(settings, sql, Engine.TRINO))
                    for _ in range(args.repeats)
                )
                duck_cold = _timed(lambda sql=sql: run_query(settings, sql, Engine.DUCKDB))
                duck_warm = statistics.median(
                    _timed(lambda sql=sql: con.execute(sql).fetchall()) for _ in range(args.repeats)
                )
                figures.append((name, trino_cold, trino_warm, duck_cold, duck_warm))
            rss_after = _rss_mb(record.pid)
            con.close()
        finally:
            process.stop(timeout=60)

    say()
    say(f"{args.events:,} events on {DAY}; medians of {args.repeats} runs after a cold one")
    head = ("trino cold", "trino", "duckdb cold", "duckdb", "duckdb/trino")
    say(f"{'query':32} {head[0]:>10} {head[1]:>8} {head[2]:>11} {head[3]:>8} {head[4]:>12}")
    for name, tc, tw, dc, dw in figures:
        say(f"{name:32} {tc:10.2f} {tw:8.3f} {dc:11.2f} {dw:8.3f} {dw / tw:12.2f}")
    say()
    say(f"duckdb load (pyiceberg -> Arrow, every mart above): {load_s:.1f}s")
    say(
        f"trino start: {start_s:.1f}s; RSS after start {rss_started:.0f} MB, "
        f"after the queries {rss_after:.0f} MB"
    )
    say(f"(work folder {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
