"""Erasing one user from the raw zone, against the scan that only finds their rows.

Starts a private SeaweedFS (free ports, a temporary folder), uploads one simulated day of
``--events`` enriched events (``simulator.raw_zone.write_raw_zone``, cached in ``--data-dir``)
as raw-zone objects named as the batch loader names them, then, ``--rounds`` times, for a
different user each round (the users with the most events):

- **find** (the baseline): a polars scan of the ``context`` column of every object over S3,
  filtered on the user: the least any erasure must read;
- **erase**: ``privacy.forget.erase_raw_zone``, which does that scan, then reads each object
  holding the user whole, rewrites it without their rows and writes its manifest.

Printed: the objects and rows of the zone, per round the user's rows and objects, both
times, and erase over find. Two shared cores: the figures are noisy, hence the medians.

Run: ``uv run python benchmarks/bench_forget.py --events 1000000``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from pathlib import Path

import polars as pl
from bench_enricher import private_stack, say

from contract.raw_zone import object_name
from privacy.forget import Subject, erase_raw_zone
from resources.s3 import ensure_buckets, make_s3_client, polars_storage_options
from resources.settings import PlatformSettings, local_folder
from simulator.raw_zone import SyntheticConfig, write_raw_zone

DAY = date(2026, 11, 28)


def data(events: int, root: Path) -> Path:
    folder = root / f"forget-{events}"
    if not (folder / "done").exists():
        say(f"generating {events:,} events in {folder}")
        write_raw_zone(SyntheticConfig(day=DAY, events=events, users=events // 50), folder)
        (folder / "done").touch()
    return folder


def upload(folder: Path, settings: PlatformSettings) -> list[str]:
    """The files as objects named like the batch loader's: ``<topic>+<partition>+<a>-<b>``."""
    client = make_s3_client(settings.s3)
    keys = []
    offset = 0
    for k, path in enumerate(sorted(folder.rglob("*.parquet"))):
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        name = object_name("bench", k % 6, offset, offset + rows - 1)
        key = f"{settings.s3.raw_prefix}{path.parent.relative_to(folder).as_posix()}/{name}"
        client.upload_file(str(path), settings.s3.raw_bucket, key)
        offset += rows
        keys.append(key)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=local_folder("bench"))
    args = parser.parse_args()
    folder = data(args.events, args.data_dir)
    with private_stack(["seaweedfs"], "tributary-bench-forget-") as (stack_settings, _):
        settings = PlatformSettings(s3=stack_settings.s3)
        ensure_buckets(settings.s3)
        started = time.perf_counter()
        keys = upload(folder, settings)
        say(f"uploaded {len(keys)} objects in {time.perf_counter() - started:.1f} s")
        uris = [f"s3://{settings.s3.raw_bucket}/{k}" for k in keys]
        options = polars_storage_options(settings.s3)
        contexts = pl.scan_parquet(uris, storage_options=options).select("context")
        users = (
            contexts.select(user=pl.col("context").str.json_path_match("$.user_id"))
            .drop_nulls()
            .group_by("user")
            .len()
            .sort("len", descending=True)
            .head(args.rounds)
            .collect()
        )
        total = contexts.select(pl.len()).collect().item()
        say(f"raw zone: {len(keys)} objects, {total:,} rows")
        finds, erases = [], []
        for user, rows in users.iter_rows():
            started = time.perf_counter()
            found = (
                contexts.filter(pl.col("context").str.json_path_match("$.user_id") == user)
                .select(pl.len())
                .collect()
                .item()
            )
            finds.append(time.perf_counter() - started)
            started = time.perf_counter()
            removals, _ = erase_raw_zone(
                make_s3_client(settings.s3), settings, Subject("user_id", user)
            )
            erases.append(time.perf_counter() - started)
            removed = sum(r.removed for r in removals)
            assert found == rows == removed, (found, rows, removed)
            say(
                f"user with {rows} rows in {len(removals)} objects: find {finds[-1]:.2f} s, "
                f"erase {erases[-1]:.2f} s ({erases[-1] / finds[-1]:.2f}x find)"
            )
        find, erase = statistics.median(finds), statistics.median(erases)
        say(
            f"median over {len(finds)} users: find {find:.2f} s, erase {erase:.2f} s, "
            f"erase/find {erase / find:.2f}x; {total / erase:,.0f} raw rows checked per s"
        )


if __name__ == "__main__":
    main()
