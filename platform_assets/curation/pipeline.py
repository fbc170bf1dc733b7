"""The curated chain of one partition: its steps, and the one order in which they run.

Each step is a function of its inputs only (frames in, frames and figures out):

| step | function | Dagster asset |
|---|---|---|
| validate | ``validate.validate_events(raw)`` | ``validated_events``, ``quarantined_events`` |
| dedupe | ``dedupe.deduplicate(validated, validated_before)`` | ``deduplicated_events`` |
| stage | ``stage(deduplicated, deduplicated_before)`` | ``stg_events`` |
| facts | ``marts.fct_events``, ``fct_sessions``, ``fct_order_lines`` | the three facts |
| dimensions | ``marts.dim_users``, ``marts.dim_products`` (``stg``, ``previous``) | the two |
| KPIs | ``marts.agg_daily_kpis(day, stg, sessions, users_before, ...)`` | ``agg_daily_kpis`` |
| IoT | ``marts.agg_daily_device_readings(deduplicated)`` | ``agg_daily_device_readings`` |

The assets (``platform_assets.assets.lake.curated``) call exactly these functions, each with
the partitions its IO manager reads; ``curate_partition`` calls them in the same order in one
process, for the tests and the benchmarks. ``tests/platform_assets/test_one_composition.py``
materialises the assets and compares every table with ``curate_partition``'s, row for row.
``marts.dim_date(first_day, today)`` is no partition's step: the calendar asset calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from platform_assets.curation import marts
from platform_assets.curation.dedupe import DedupStats, deduplicate
from platform_assets.curation.sessions import SessionStats, sessionise
from platform_assets.curation.validate import ValidationStats, validate_events


@dataclass
class Staged:
    events: pl.DataFrame
    """``stg_events`` of the partition."""
    stats: SessionStats


def stage(
    deduplicated: pl.DataFrame,
    lookback: pl.DataFrame | pl.LazyFrame | None,
    *,
    consume: bool = False,
) -> Staged:
    """``stg_events``: the partition's deduplicated rows sessionised, renamed and typed.

    Args:
        deduplicated: the partition's deduplicated rows.
        lookback: the deduplicated rows of the day before (sessions across midnight).
        consume: release the rows of ``deduplicated`` (left empty) and the sessionised
            rows while the staged ones are built.
    """
    sessions = sessionise(deduplicated, lookback)
    if consume:
        for name in list(deduplicated.columns):
            deduplicated.drop_in_place(name)
    stg = marts.stage_events(sessions.events, consume=consume)
    return Staged(events=stg, stats=sessions.stats)


@dataclass
class CurationResult:
    validation: ValidationStats
    quarantine: pl.DataFrame
    dedup: DedupStats
    dedup_removed: pl.DataFrame
    sessions: SessionStats
    validated_events: pl.DataFrame
    """The validated rows (empty without ``keep_frames``)."""
    deduplicated_events: pl.DataFrame
    """The deduplicated rows (empty without ``keep_frames``)."""
    stg_events: pl.DataFrame
    fct_events: pl.DataFrame
    fct_sessions: pl.DataFrame
    fct_order_lines: pl.DataFrame
    dim_users: pl.DataFrame
    dim_products: pl.DataFrame
    agg_daily_kpis: pl.DataFrame
    agg_daily_device_readings: pl.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)

    def marts(self) -> dict[str, pl.DataFrame]:
        return {
            "fct_events": self.fct_events,
            "fct_sessions": self.fct_sessions,
            "fct_order_lines": self.fct_order_lines,
            "dim_users": self.dim_users,
            "dim_products": self.dim_products,
            "agg_daily_kpis": self.agg_daily_kpis,
            "agg_daily_device_readings": self.agg_daily_device_readings,
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "validation": self.validation.as_metadata(),
            "dedup": self.dedup.as_metadata(),
            "sessions": self.sessions.as_metadata(),
            "rows": {name: frame.height for name, frame in self.marts().items()},
        }


def curate_partition(
    raw: pl.DataFrame | pl.LazyFrame,
    day: date,
    *,
    validated_before: pl.DataFrame | pl.LazyFrame | None = None,
    deduplicated_before: pl.DataFrame | pl.LazyFrame | None = None,
    dead_letters: pl.DataFrame | None = None,
    previous_users: pl.DataFrame | None = None,
    previous_products: pl.DataFrame | None = None,
    keep_frames: bool = True,
) -> CurationResult:
    """Validate, deduplicate, stage and model one day, as the assets do.

    Args:
        raw: the day's raw-zone rows; pass a ``LazyFrame`` (``scan_raw_zone``) and
            ``keep_frames=False`` to hold at most about one extra copy of the partition.
        day: the partition.
        validated_before: ``validated_events`` of the day before (the dedup's lookback).
        deduplicated_before: ``deduplicated_events`` of the day before (the sessions').
        dead_letters: the day's stream dead letters (``reason``, ``count``).
        previous_users: ``dim_users`` before the day (new users, and the dimension).
        previous_products: ``dim_products`` before the day.
        keep_frames: keep the validated and deduplicated rows in the result (the next day's
            lookback); without, each is released as soon as the next step has what it needs.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

    validation = validate_events(raw, consume=not keep_frames)
    del raw
    lap("validate")
    dedup = deduplicate(validation.valid, validated_before, consume=not keep_frames)
    validated = validation.valid if keep_frames else validation.valid.clear()
    validation.valid = validated
    lap("deduplicate")
    readings = marts.agg_daily_device_readings(dedup.events)
    staged = stage(dedup.events, deduplicated_before, consume=not keep_frames)
    deduplicated = dedup.events
    stg = staged.events
    lap("stage")
    fct_events = marts.fct_events(stg)
    fct_sessions = marts.fct_sessions(stg, day)
    order_lines = marts.fct_order_lines(stg)
    users = marts.dim_users(stg, previous_users)
    products = marts.dim_products(stg, order_lines, previous_products)
    kpis = marts.agg_daily_kpis(
        day,
        stg,
        fct_sessions,
        previous_users,
        validated_rows=validation.stats.valid_rows,
        quarantined_rows=validation.stats.quarantined_rows,
        deduplicated_rows=dedup.stats.output_rows,
        dead_letters=dead_letters,
    )
    lap("marts")
    return CurationResult(
        validation=validation.stats,
        quarantine=validation.quarantine,
        dedup=dedup.stats,
        dedup_removed=dedup.removed,
        sessions=staged.stats,
        validated_events=validated,
        deduplicated_events=deduplicated,
        stg_events=stg,
        fct_events=fct_events,
        fct_sessions=fct_sessions,
        fct_order_lines=order_lines,
        dim_users=users,
        dim_products=products,
        agg_daily_kpis=kpis,
        agg_daily_device_readings=readings,
        seconds=seconds,
    )
