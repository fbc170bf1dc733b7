"""Data checks as plain functions: each returns ``CheckOutcome(passed, metadata, description)``.

An asset check calls one on the partition it just materialised and turns the outcome into
``AssetCheckResult(passed=..., metadata=...)``. Metadata values are plain ints, floats,
strings, lists and dicts (samples are capped at ``SAMPLE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from platform_assets.curation.dedupe import DedupResult
from platform_assets.curation.raw import as_lazy, collect
from platform_assets.curation.validate import ValidationResult

SAMPLE = 5


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str = ""


Frame = pl.DataFrame | pl.LazyFrame


def _sample(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: str(v) for k, v in row.items()} for row in frame.head(SAMPLE).to_dicts()]


def check_unique(frame: Frame, keys: Sequence[str]) -> CheckOutcome:
    """No two rows share the same ``keys``."""
    dupes = collect(
        as_lazy(frame).group_by(list(keys)).len().filter(pl.col("len") > 1).sort(list(keys))
    )
    return CheckOutcome(
        passed=dupes.height == 0,
        metadata={"keys": list(keys), "duplicated_keys": dupes.height, "sample": _sample(dupes)},
        description=f"{', '.join(keys)} unique",
    )


def check_not_null(frame: Frame, columns: Sequence[str]) -> CheckOutcome:
    """None of ``columns`` holds a null."""
    nulls = collect(as_lazy(frame).select(pl.col(list(columns)).null_count())).row(0, named=True)
    bad = {c: int(n) for c, n in nulls.items() if n}
    return CheckOutcome(
        passed=not bad,
        metadata={"columns": list(columns), "null_counts": bad},
        description=f"{', '.join(columns)} not null",
    )


def check_accepted_values(
    frame: Frame, column: str, accepted: Sequence[Any], *, allow_null: bool = True
) -> CheckOutcome:
    """Every value of ``column`` is one of ``accepted`` (nulls pass when ``allow_null``)."""
    col = pl.col(column)
    outside = ~col.is_in(list(accepted))
    bad = (outside & col.is_not_null()) if allow_null else (outside | col.is_null())
    unexpected = collect(as_lazy(frame).filter(bad).group_by(column).len().sort(column))
    return CheckOutcome(
        passed=unexpected.height == 0,
        metadata={
            "column": column,
            "unexpected_values": {str(v): int(n) for v, n in unexpected.iter_rows()},
        },
        description=f"{column} in {list(accepted)}",
    )


def check_referential_integrity(
    fact: Frame, dim: Frame, fact_key: str, dim_key: str | None = None
) -> CheckOutcome:
    """Every non-null ``fact_key`` of the fact has a row in the dimension."""
    dim_key = dim_key or fact_key
    keys = as_lazy(dim).select(pl.col(dim_key).alias(fact_key))
    orphans = collect(
        as_lazy(fact)
        .filter(pl.col(fact_key).is_not_null())
        .join(keys, on=fact_key, how="anti")
        .group_by(fact_key)
        .len()
        .sort(fact_key)
    )
    return CheckOutcome(
        passed=orphans.height == 0,
        metadata={
            "fact_key": fact_key,
            "dim_key": dim_key,
            "orphan_keys": orphans.height,
            "orphan_rows": int(orphans.get_column("len").sum()) if orphans.height else 0,
            "sample": orphans.get_column(fact_key).head(SAMPLE).cast(pl.String).to_list(),
        },
        description=f"{fact_key} -> dimension {dim_key}",
    )


def check_validation_reconciles(raw_rows: int, result: ValidationResult) -> CheckOutcome:
    """Raw rows = valid + quarantined, and every quarantined row says why."""
    valid, quarantined = result.valid.height, result.quarantine.height
    without_reason = (
        result.quarantine.filter(
            pl.col("quarantine_reasons").is_null() | (pl.col("quarantine_reasons").list.len() == 0)
        ).height
        if quarantined
        else 0
    )
    return CheckOutcome(
        passed=raw_rows == valid + quarantined and without_reason == 0,
        metadata={
            "raw_rows": raw_rows,
            "valid_rows": valid,
            "quarantined_rows": quarantined,
            "difference": raw_rows - valid - quarantined,
            "quarantined_without_reason": without_reason,
        },
        description="raw = valid + quarantined",
    )


def check_dedup_removed_only_duplicates(
    input_events: Frame, result: DedupResult, lookback: Frame | None = None
) -> CheckOutcome:
    """Deduplication removed only true duplicates, and removed every one of them.

    Passes when: output ``event_id`` values are unique; input rows = output + removed rows;
    and the input's distinct ids equal the output's ids plus the ids removed because the
    lookback holds them (so no event was lost and none kept twice).
    """
    ids_in = as_lazy(input_events).select("event_id").unique()
    ids_out = result.events.lazy().select("event_id")
    n_in = collect(as_lazy(input_events).select(pl.len())).item()
    out_unique = result.events.get_column("event_id").n_unique() == result.events.height
    lost = ids_in.join(ids_out, on="event_id", how="anti")
    seen = result.removed.lazy().filter(pl.col("reason") == "seen_in_lookback").select("event_id")
    lost = lost.join(seen, on="event_id", how="anti")
    if lookback is not None:
        # A removal for the lookback's sake must name an id the lookback really holds.
        unfounded = seen.unique().join(
            as_lazy(lookback).select("event_id"), on="event_id", how="anti"
        )
        n_unfounded = collect(unfounded.select(pl.len())).item()
    else:
        n_unfounded = int((result.removed.get_column("reason") == "seen_in_lookback").sum())
    lost_ids = collect(lost.sort("event_id")).get_column("event_id")
    kept_out = result.events.height + result.removed.height
    passed = out_unique and n_in == kept_out and lost_ids.len() == 0 and n_unfounded == 0
    return CheckOutcome(
        passed=passed,
        metadata={
            "input_rows": n_in,
            "output_rows": result.events.height,
            "removed_rows": result.removed.height,
            "output_ids_unique": out_unique,
            "rows_unaccounted": n_in - kept_out,
            "event_ids_lost": lost_ids.len(),
            "lost_sample": lost_ids.head(SAMPLE).to_list(),
            "removed_for_lookback_without_lookback_row": n_unfounded,
        },
        description="dedup removed only duplicates (same event_id)",
    )


def check_volume_anomaly(
    current: int,
    trailing: Sequence[int],
    *,
    tolerance: float = 0.5,
    min_history: int = 3,
) -> CheckOutcome:
    """``current`` lies within ``tolerance`` (a share) of the trailing average.

    With fewer than ``min_history`` trailing values the check passes (not enough history).
    """
    history = [int(v) for v in trailing]
    if len(history) < min_history:
        return CheckOutcome(
            passed=True,
            metadata={"current": current, "trailing": history, "reason": "not enough history"},
            description="volume vs trailing average",
        )
    average = sum(history) / len(history)
    deviation = (current - average) / average if average else float("inf")
    return CheckOutcome(
        passed=abs(deviation) <= tolerance,
        metadata={
            "current": current,
            "trailing_average": round(average, 2),
            "deviation": round(deviation, 4),
            "tolerance": tolerance,
            "trailing": history,
        },
        description=f"volume within {tolerance:.0%} of the trailing average",
    )


def check_freshness(latest: datetime | None, now: datetime, max_lag: timedelta) -> CheckOutcome:
    """The newest event arrived no longer than ``max_lag`` before ``now``."""
    lag = None if latest is None else now - latest
    return CheckOutcome(
        passed=lag is not None and lag <= max_lag,
        metadata={
            "latest": None if latest is None else latest.isoformat(),
            "lag_s": None if lag is None else round(lag.total_seconds(), 3),
            "max_lag_s": max_lag.total_seconds(),
        },
        description=f"newest event at most {max_lag} old",
    )
