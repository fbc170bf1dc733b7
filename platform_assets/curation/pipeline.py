"""The whole curation chain of one partition, step by step (what the assets do in order).

Dagster wraps each step as its own asset; ``curate_partition`` runs them in one process for
the benchmark and the tests, and shows how the outputs feed each other.
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
class CurationResult:
    validation: ValidationStats
    quarantine: pl.DataFrame
    dedup: DedupStats
    dedup_removed: pl.DataFrame
    sessions: SessionStats
    stg_events: pl.DataFrame
    fct_events: pl.DataFrame
    fct_sessions: pl.DataFrame
    fct_order_lines: pl.DataFrame
    dim_users: pl.DataFrame
    dim_products: pl.DataFrame
    dim_date: pl.DataFrame
    agg_daily_kpis: pl.DataFrame
    validated: pl.DataFrame | None = None
    """The validated rows (kept only with ``keep_frames``)."""
    deduplicated: pl.DataFrame | None = None
    sessionised: pl.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def marts(self) -> dict[str, pl.DataFrame]:
        return {
            "fct_events": self.fct_events,
            "fct_sessions": self.fct_sessions,
            "fct_order_lines": self.fct_order_lines,
            "dim_users": self.dim_users,
            "dim_products": self.dim_products,
            "dim_date": self.dim_date,
            "agg_daily_kpis": self.agg_daily_kpis,
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
    lookback: pl.DataFrame | pl.LazyFrame | None = None,
    dead_letters: pl.DataFrame | None = None,
    previous_users: pl.DataFrame | None = None,
    previous_products: pl.DataFrame | None = None,
    keep_frames: bool = True,
) -> CurationResult:
    """Validate, deduplicate, sessionise and model one day.

    Args:
        raw: the day's raw-zone rows; pass a ``LazyFrame`` (``scan_raw_zone``) and
            ``keep_frames=False`` to hold at most about one extra copy of the partition.
        day: the partition.
        lookback: *validated* rows of the previous partition(s), for dedup and sessions.
        dead_letters: the day's stream dead letters (``reason``, ``count``).
        previous_users: the current ``dim_users`` (for first seen / new users).
        previous_products: the current ``dim_products``.
        keep_frames: keep the validated, deduplicated and sessionised rows in the result;
            without, each is released as soon as the next step has what it needs.
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
    dedup = deduplicate(validation.valid, lookback, consume=not keep_frames)
    validated = validation.valid if keep_frames else None
    validation.valid = validation.valid.clear()
    lap("deduplicate")
    sessions = sessionise(dedup.events, lookback)
    deduplicated = dedup.events if keep_frames else None
    dedup.events = dedup.events.clear()
    lap("sessionise")
    sessionised = sessions.events if keep_frames else None
    stg = marts.stage_events(sessions.events, consume=not keep_frames)
    sessions.events = sessions.events.clear()
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
        users,
        raw_events=validation.stats.raw_rows,
        quarantined_events=validation.stats.quarantined_rows,
        duplicates_removed=dedup.stats.removed_rows,
        dead_letters=dead_letters,
    )
    lap("marts")
    return CurationResult(
        validation=validation.stats,
        quarantine=validation.quarantine,
        dedup=dedup.stats,
        dedup_removed=dedup.removed,
        sessions=sessions.stats,
        stg_events=stg,
        fct_events=fct_events,
        fct_sessions=fct_sessions,
        fct_order_lines=order_lines,
        dim_users=users,
        dim_products=products,
        dim_date=marts.dim_date(day),
        agg_daily_kpis=kpis,
        validated=validated,
        deduplicated=deduplicated,
        sessionised=sessionised,
        seconds=seconds,
    )
