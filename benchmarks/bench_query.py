"""Reporting queries on Trino and on DuckDB over the same Iceberg tables, in one run.

One run:

1. starts SeaweedFS, OpenSearch and Trino of its own on free ports (``private_stack``) and
   records Trino's start (process start to ``/v1/info`` not starting) and resident memory;
2. makes one day of ``--events`` synthetic raw-zone rows (``synthetic.write_raw_zone``,
   cached in ``--data-dir``) and curates the day before (the previous day's tail) and then
   the day with ``curation.pipeline.curate_partition``, the step functions the curated
   assets call, in this process (``curate_into_lake``). The day before's validated and
   deduplicated rows are the day's lookbacks, and the dimensions carry over as
   ``previous_users`` and ``previous_products``; between the days only those and the
   written marts' frames are kept. The marts are written with pyiceberg into SeaweedFS's
   Iceberg REST catalog as the lake IO manager writes them (``write_mart``):
   ``marts.<name>``, the daily marts through the assets' ``with_partition`` and partitioned
   by ``day(event_date)``, the dimensions whole, ``dim_date`` from the asset itself. Then
   ``reporting_views_job`` creates the views in Trino;
3. runs the fixed set of reporting queries (``QUERIES``) on both engines, ``--repeats``
   times each, and prints the first (cold) and the median of the others per engine, and the
   ratio DuckDB / Trino of the medians.

DuckDB reads the marts through pyiceberg into Arrow (``platform_assets.reporting.engines``):
that load is timed on its own (``duckdb load``) and once per query in ``duckdb cold``
(``run_query``, what ``tributary query --engine duckdb`` does); the medians run on a
connection that has the marts loaded. Trino's memory is the RSS of its process after the
queries. No target: the figures compare within one run only.

Run: ``uv run python benchmarks/bench_query.py`` (10,000,000 events, the curation benchmark's
reference day; about 6 minutes on two shared cores, the events generated once and cached);
``--events 100000`` for a quick check. Curating in this process with ``curate_partition``
peaks at about 13.3 GiB RSS (the second day's chain); the Dagster materialisation through the
IO manager that this replaced held more than 16.8 GB at 10,000,000 events and was stopped
on a 24 GiB machine. Figures of 10,000,000-event runs: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import psutil
from bench_enricher import private_stack, say, stoppable
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.transforms import DayTransform

from platform_assets.assets.lake.curated import (
    CURATED_ASSETS,
    dead_letters_by_reason,
    dim_date,
    with_partition,
)
from platform_assets.curation.pipeline import curate_partition
from platform_assets.curation.raw import scan_raw_zone
from platform_assets.definitions import build_definitions
from platform_assets.reporting.engines import Engine, duckdb_lake, run_query
from platform_assets.reporting.views import LAKE_VIEWS, MARTS, referenced_marts
from platform_assets.resources import resources_for
from resources.lake import PARTITION_COLUMN, ensure_namespaces, make_catalog
from resources.s3 import ensure_buckets
from resources.settings import PlatformSettings, Profile
from simulator.raw_zone import SyntheticConfig, write_raw_zone
from stack.manager import Stack
from stack.process import ManagedProcess

DAY = date(2026, 11, 28)
# The marts the Dagster assets partition by event_date (the others are rebuilt whole).
PARTITIONED_MARTS = {
    key.path[-1]
    for asset in CURATED_ASSETS
    if asset.partitions_def is not None
    for key in asset.keys
    if key.path[1] == MARTS
}
# The dimensions: the assets rebuild them from every partition; here each day's rows are
# merged into the state of the days before (``previous_users``/``previous_products``).
DIMENSIONS = {"dim_users": "user_key", "dim_products": "product_id"}

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


def _peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: object) -> float:
    began = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - began


def _raw_files(root: Path, day: date) -> list[str]:
    return sorted(str(p) for p in (root / f"event_date={day}").rglob("*.parquet"))


def write_mart(catalog: Catalog, name: str, frame: pl.DataFrame, day: date | None) -> None:
    """Write ``frame`` as ``marts.<name>`` the way the lake IO manager does.

    With ``day``: the frame goes through ``with_partition`` (as the assets' outputs do), the
    table is partitioned by ``day(event_date)`` and the day's rows are replaced; without, the
    whole table is replaced.
    """
    data = (with_partition(frame, day) if day is not None else frame).to_arrow()
    try:
        table = catalog.load_table((MARTS, name))
    except NoSuchTableError:
        table = catalog.create_table((MARTS, name), schema=data.schema)
        if day is not None:
            with table.update_spec() as spec:
                spec.add_field(PARTITION_COLUMN, DayTransform(), f"part_{PARTITION_COLUMN}")
    with warnings.catch_warnings():
        # The first write of a partition replaces nothing; pyiceberg warns about that.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        if day is None:
            table.overwrite(data)
        else:
            table.overwrite(data, overwrite_filter=f"{PARTITION_COLUMN} = '{day.isoformat()}'")


def curate_into_lake(settings: PlatformSettings, raw: Path, days: list[date]) -> None:
    """Curate ``days`` in order with ``curate_partition`` and write the marts into the lake.

    The steps are those the assets run; each day's validated rows are the next day's lookback
    (as ``deduplicated_events`` reads the day before), and only the marts, the dimensions'
    state and that lookback outlive a day.
    """
    catalog = make_catalog(settings)
    ensure_namespaces(catalog)
    search = resources_for(settings)["search"]
    validated: pl.DataFrame | None = None
    deduplicated: pl.DataFrame | None = None
    dims: dict[str, pl.DataFrame | None] = dict.fromkeys(DIMENSIONS)
    for day in days:
        began = time.monotonic()
        last = day == days[-1]
        result = curate_partition(
            scan_raw_zone(_raw_files(raw, day)),
            day,
            validated_before=validated,
            deduplicated_before=deduplicated,
            dead_letters=dead_letters_by_reason(search, day),
            previous_users=dims["dim_users"],
            previous_products=dims["dim_products"],
            # The staged rows are kept only when a later day needs them as its lookbacks.
            keep_frames=not last,
        )
        validated, deduplicated = result.validated_events, result.deduplicated_events
        result.stg_events = result.stg_events.clear()
        curated_s = time.monotonic() - began
        began = time.monotonic()
        for name, frame in result.marts().items():
            if name in PARTITIONED_MARTS:
                write_mart(catalog, name, frame, day)
            elif name in DIMENSIONS:
                dims[name] = frame  # the dimension after the day
        rows = result.validation.raw_rows
        del result, frame
        rss = psutil.Process().memory_info().rss / 2**20
        say(
            f"curated {day}: {rows:,} raw rows in {curated_s:.1f}s, marts written in "
            f"{time.monotonic() - began:.1f}s; RSS {rss:,.0f} MiB, peak {_peak_mb():,.0f} MiB"
        )
    for name, key in DIMENSIONS.items():
        state = dims.pop(name)
        assert state is not None
        write_mart(catalog, name, state.sort(key), None)
    # The asset itself (called directly): every day from the first partition to a year ahead.
    calendar = dim_date()
    assert isinstance(calendar, dg.Output)
    write_mart(catalog, "dim_date", calendar.value, None)


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
            curate_into_lake(settings, raw, [DAY - timedelta(days=1), DAY])
            curated_peak = _peak_mb()
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
    say(
        f"benchmark process peak RSS: {curated_peak:,.0f} MiB after the curation, "
        f"{_peak_mb():,.0f} MiB at the end"
    )
    say(f"(work folder {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
