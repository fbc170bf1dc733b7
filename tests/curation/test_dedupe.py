from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from platform_assets.curation.checks import check_dedup_removed_only_duplicates
from platform_assets.curation.dedupe import deduplicate
from tests.curation.rows import T0, frame, row

pytestmark = pytest.mark.unit

A = "11111111-1111-4111-8111-111111111111"
B = "22222222-2222-4222-8222-222222222222"
C = "33333333-3333-4333-8333-333333333333"


def _coords(result_events: pl.DataFrame) -> set[tuple[str, int, int]]:
    return set(result_events.select("event_id", "kafka_partition", "kafka_offset").iter_rows())


def test_the_first_received_copy_wins_and_ties_go_to_kafka_order() -> None:
    rows = frame(
        [
            row(event_id=A, received_after=timedelta(seconds=5), partition=1, offset=10),
            row(event_id=A, received_after=timedelta(seconds=1), partition=2, offset=99),
            row(event_id=A, received_after=timedelta(seconds=9), partition=0, offset=1),
            # B: two copies received at the very same instant
            row(event_id=B, partition=3, offset=7),
            row(event_id=B, partition=1, offset=8),
            row(event_id=C, partition=0, offset=2),
        ]
    )
    result = deduplicate(rows)
    assert _coords(result.events) == {(A, 2, 99), (B, 1, 8), (C, 0, 2)}
    assert result.stats.removed_duplicates == 3
    assert result.stats.max_copies == 3
    # The winner does not depend on the order the rows were read in.
    for seed in range(5):
        shuffled = rows.sample(fraction=1.0, shuffle=True, seed=seed)
        assert _coords(deduplicate(shuffled).events) == _coords(result.events)
    removed = result.removed.filter(pl.col("event_id") == A)
    assert set(removed.get_column("winner_kafka_offset")) == {99}
    assert check_dedup_removed_only_duplicates(rows, result).passed


def test_an_event_already_in_an_earlier_partition_is_not_emitted_again() -> None:
    yesterday = T0 - timedelta(days=1)
    lookback = frame(
        [row(event_id=A, at=yesterday, partition=0, offset=1), row(at=yesterday, offset=2)]
    )
    # A replay re-stamped into today, received later; and an event also seen tomorrow.
    today = frame(
        [
            row(event_id=A, received_after=timedelta(hours=20), partition=0, offset=50),
            row(event_id=B, partition=0, offset=51),
        ]
    )
    tomorrow = frame([row(event_id=B, at=T0 + timedelta(days=1), offset=60)])
    result = deduplicate(today, pl.concat([lookback, tomorrow]))
    assert result.events.get_column("event_id").to_list() == [B]
    assert result.removed.get_column("reason").to_list() == ["seen_in_lookback"]
    assert result.stats.removed_seen_in_lookback == 1
    assert check_dedup_removed_only_duplicates(today, result, lookback).passed
    # Seen from tomorrow, today's copy of B is the earlier one: tomorrow drops it.
    assert deduplicate(tomorrow, today).events.height == 0


def test_the_invariant_check_catches_a_lost_event_and_a_kept_duplicate() -> None:
    rows = frame([row(event_id=A), row(event_id=A, offset=500), row(event_id=B)])
    result = deduplicate(rows)
    assert check_dedup_removed_only_duplicates(rows, result).passed
    lost = deduplicate(rows)
    lost.events = lost.events.filter(pl.col("event_id") != B)
    outcome = check_dedup_removed_only_duplicates(rows, lost)
    assert not outcome.passed
    assert outcome.metadata["event_ids_lost"] == 1
    twice = deduplicate(rows)
    twice.events = pl.concat([twice.events, rows.head(1)])
    assert not check_dedup_removed_only_duplicates(rows, twice).passed
    unfounded = deduplicate(rows, frame([row(event_id=C, at=T0 - timedelta(days=1))]))
    assert check_dedup_removed_only_duplicates(rows, unfounded).passed


def test_hourly_granularity_prefers_the_earlier_hour() -> None:
    early = row(event_id=A, at=T0, received_after=timedelta(hours=2), offset=1)
    late = row(event_id=A, at=T0 + timedelta(hours=1), offset=2)
    result = deduplicate(frame([late, early]), granularity="1h")
    assert result.events.get_column("kafka_offset").to_list() == [1]
    # Daily buckets tie, so the first received copy wins instead.
    assert deduplicate(frame([late, early])).events.get_column("kafka_offset").to_list() == [2]
