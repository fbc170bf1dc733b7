"""The curation chain on one day of enriched events, against DuckDB as the baseline.

One run measures, each in its own child process (so that peak RSS is the engine's own):

- ``polars chain``: read the day's raw-zone Parquet, then validate, deduplicate (with the
  previous day's tail as lookback), sessionise and build every mart
  (``platform_assets.curation.pipeline.curate_partition``);
- ``polars dedup+agg``: read, deduplicate and aggregate the day (events by type, users,
  revenue in EUR) - the same work as the baseline;
- ``duckdb dedup+agg``: the same deduplication with ``QUALIFY row_number() OVER (PARTITION BY
  event_id ORDER BY ...) = 1`` and the same aggregation, in SQL over the same files.

The data is made once by ``simulator.raw_zone.write_raw_zone`` (about 5%
duplicates, 1% late events, cross-partition replays, 0.2% defects) and cached in
``--data-dir``. Peak memory is ``ru_maxrss`` of the child (it includes the interpreter and
the imported libraries, printed as ``baseline``); the partition's in-memory size is the
polars ``estimated_size`` of the day's rows with every column.

Run: ``uv run python benchmarks/bench_curation.py --events 10000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DAY = date(2026, 11, 28)
ORDER = "date_trunc('day', event_timestamp), collector_received_at, kafka_topic, kafka_partition, kafka_offset"  # noqa: E501


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _files(root: Path, day: date) -> list[str]:
    return sorted(str(p) for p in (root / f"event_date={day}").rglob("*.parquet"))


# -- children ------------------------------------------------------------------------------


def child_size(root: Path) -> dict[str, Any]:
    from platform_assets.curation.raw import scan_raw_zone

    frame = scan_raw_zone(_files(root, DAY)).collect()
    return {"rows": frame.height, "bytes": frame.estimated_size()}


def child_chain(root: Path) -> dict[str, Any]:
    import polars as pl

    from platform_assets.curation.pipeline import curate_partition
    from platform_assets.curation.raw import scan_raw_zone

    baseline = _rss_now_mb()
    dead_letters = pl.DataFrame({"reason": ["schema_violation", "malformed"], "count": [900, 100]})
    began = time.perf_counter()
    # The previous day's raw tail stands for its validated and deduplicated rows (it holds
    # no defects, and the sessions read only its keys).
    lookback = scan_raw_zone(_files(root, DAY - timedelta(days=1))).collect()
    # The raw rows are read inside (from the lazy scan) and released after validation.
    raw = scan_raw_zone(_files(root, DAY))
    result = curate_partition(
        raw,
        DAY,
        validated_before=lookback,
        deduplicated_before=lookback,
        dead_letters=dead_letters,
        keep_frames=False,
    )
    total = time.perf_counter() - began
    kpis = result.agg_daily_kpis.row(0, named=True)
    return {
        "rows": result.validation.raw_rows,
        "total_s": total,
        "stages": result.seconds,
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
        "metadata": result.metadata(),
        "kpis": {k: str(v) for k, v in kpis.items()},
    }


_AGG_COLUMNS = [
    "event_id",
    "event_timestamp",
    "collector_received_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "event_name",
    "context",
    "money",
]


def child_polars_agg(root: Path) -> dict[str, Any]:
    import polars as pl

    from platform_assets.curation.dedupe import deduplicate

    baseline = _rss_now_mb()
    began = time.perf_counter()
    entry = pl.element().struct
    # Like DuckDB's scan, derive the per-row values while reading (streaming engine, both
    # cores), so the large context and money columns are never held.
    day = (
        pl.scan_parquet(_files(root, DAY))
        .select(
            *_AGG_COLUMNS[:7],
            user_id=pl.col("context")
            .str.json_decode(pl.Struct({"user_id": pl.String}))
            .struct.field("user_id"),
            total_eur=pl.col("money")
            .list.eval(entry.field("amount_eur").filter(entry.field("field") == "/total"))
            .list.sum(),
        )
        .collect(engine="streaming")
    )
    lookback = pl.scan_parquet(_files(root, DAY - timedelta(days=1))).select(_AGG_COLUMNS[:6])
    deduped = deduplicate(day, lookback, consume=True).events
    name = pl.col("event_name")
    agg = deduped.select(
        events=pl.len(),
        page_views=(name == "page_view").sum(),
        product_views=(name == "product_view").sum(),
        add_to_carts=(name == "add_to_cart").sum(),
        checkouts_started=(name == "checkout_started").sum(),
        purchases=(name == "purchase").sum(),
        users=pl.col("user_id").drop_nulls().n_unique(),
        revenue_eur=pl.col("total_eur").sum().round(2),
    )
    elapsed = time.perf_counter() - began
    return {
        "rows": deduped.height,
        "total_s": elapsed,
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
        "result": agg.row(0, named=True),
    }


def child_duckdb(root: Path) -> dict[str, Any]:
    import duckdb

    baseline = _rss_now_mb()
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    files = _files(root, DAY) + _files(root, DAY - timedelta(days=1))
    began = time.perf_counter()
    row = con.execute(
        f"""
        WITH d AS (
            SELECT event_timestamp, event_name, context, money
            FROM read_parquet($files)
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {ORDER}) = 1
        )
        SELECT
            count(*) AS events,
            count(*) FILTER (WHERE event_name = 'page_view') AS page_views,
            count(*) FILTER (WHERE event_name = 'product_view') AS product_views,
            count(*) FILTER (WHERE event_name = 'add_to_cart') AS add_to_carts,
            count(*) FILTER (WHERE event_name = 'checkout_started') AS checkouts_started,
            count(*) FILTER (WHERE event_name = 'purchase') AS purchases,
            count(DISTINCT json_extract_string(context, '$.user_id')) AS users,
            round(sum(list_sum(list_transform(
                list_filter(money, lambda m: m.field = '/total'), lambda m: m.amount_eur))), 2)
                AS revenue_eur
        FROM d
        WHERE CAST(event_timestamp AS DATE) = $day
        """,
        {"files": files, "day": DAY},
    ).fetchone()
    elapsed = time.perf_counter() - began
    names = [d[0] for d in con.description or []]
    return {
        "rows": None,
        "total_s": elapsed,
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
        "result": dict(zip(names, row or (), strict=True)),
    }


CHILDREN = {
    "size": child_size,
    "chain": child_chain,
    "polars_agg": child_polars_agg,
    "duckdb": child_duckdb,
}


def run_child(name: str, root: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, "--data-dir", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child {name} failed:\n{done.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


# -- parent --------------------------------------------------------------------------------


def ensure_data(events: int, seed: int, root: Path) -> None:
    from simulator.raw_zone import SyntheticConfig, write_raw_zone

    marker = root / "truth.json"
    if marker.exists():
        print(f"data: {root} (cached)")
        return
    root.mkdir(parents=True, exist_ok=True)
    cfg = SyntheticConfig(day=DAY, events=events, seed=seed, invalid_share=0.002)
    began = time.perf_counter()
    truth = write_raw_zone(cfg, root)
    seconds = time.perf_counter() - began
    summary = {
        "rows": dict(truth.rows),
        "duplicates": dict(truth.duplicates),
        "late": dict(truth.late),
        "cross_partition": truth.cross_partition,
        "defects": dict(truth.defects),
        "seconds": round(seconds, 1),
    }
    marker.write_text(json.dumps(summary, indent=2))
    print(f"data: generated in {seconds:.1f}s into {root}: {json.dumps(summary)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--child", choices=sorted(CHILDREN), default=None)
    args = parser.parse_args()
    root = args.data_dir or (
        Path.home() / ".cache" / "tributary" / "bench-curation" / f"{args.events}-{args.seed}"
    )
    if args.child:
        began = _cpu_s()
        out = CHILDREN[args.child](root)
        out["cpu_s"] = _cpu_s() - began
        print(json.dumps(out, default=str))
        return

    ensure_data(args.events, args.seed, root)
    size = run_child("size", root)
    size_mb = size["bytes"] / 2**20
    rows = size["rows"]
    print(f"partition {DAY}: {rows:,} rows, {size_mb:,.0f} MiB in memory (all columns)")
    chain = run_child("chain", root)
    lfl = run_child("polars_agg", root)
    duck = run_child("duckdb", root)

    print("\nchain stages (s, validate includes reading):", json.dumps(chain["stages"]))
    print("chain figures:", json.dumps(chain["metadata"]["dedup"]))
    header = (
        f"{'run':<34}{'seconds':>9}{'events/s':>13}{'CPU s':>8}{'peak RSS MiB':>14}{'baseline':>10}"
    )
    print("\n" + header)
    print("-" * len(header))
    for label, res in (
        ("polars chain (read+validate+dedup", chain),
        ("  +sessions+marts)", None),
        ("polars dedup+agg", lfl),
        ("duckdb dedup+agg (QUALIFY)", duck),
    ):
        if res is None:
            print(label)
            continue
        eps = rows / res["total_s"]
        print(
            f"{label:<34}{res['total_s']:>9.2f}{eps:>13,.0f}{res['cpu_s']:>8.1f}"
            f"{res['peak_mb']:>14,.0f}"
            f"{res['baseline_mb']:>10,.0f}"
        )
    print(f"(machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    ratio_lfl = duck["total_s"] / lfl["total_s"]
    ratio_chain = duck["total_s"] / chain["total_s"]
    print(f"\nratio polars dedup+agg vs duckdb (events/s): {ratio_lfl:.2f}x (target >= 1.0)")
    print(f"ratio polars full chain vs duckdb dedup+agg:  {ratio_chain:.2f}x")
    cpu = duck["cpu_s"] / lfl["cpu_s"]
    print(f"CPU-time ratio polars dedup+agg vs duckdb:    {cpu:.2f}x (less sensitive to load)")
    print(
        f"peak RSS of the chain / partition size: {chain['peak_mb'] / size_mb:.2f} "
        f"(target < 2.0; {chain['peak_mb']:,.0f} MiB / {size_mb:,.0f} MiB)"
    )
    same = {k: lfl["result"][k] for k in duck["result"]} == duck["result"]
    print(f"polars and duckdb aggregates agree: {same}")
    if not same:
        print("  polars:", lfl["result"])
        print("  duckdb:", duck["result"])
    print("chain KPIs:", json.dumps(chain["kpis"]))


if __name__ == "__main__":
    main()
