from __future__ import annotations

from datetime import date, timedelta

import orjson
import polars as pl
import pytest

from contract.registry import SchemaRegistry
from platform_assets.curation.raw import RAW_SCHEMA
from simulator.raw_zone import SyntheticConfig, synthetic_partition

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 28)


def test_rows_match_the_raw_zone_schema_and_the_event_contract() -> None:
    part = synthetic_partition(SyntheticConfig(day=DAY, events=5_000, seed=5))
    assert part.current.schema == RAW_SCHEMA
    assert part.current.get_column("event_timestamp").dt.date().unique().to_list() == [DAY]
    assert (part.lookback.get_column("event_timestamp").dt.date() < DAY).all()
    registry = SchemaRegistry.from_directory()
    sample = part.current.sample(500, seed=1).select("event_type", "payload").rows()
    for event_type, payload in sample:
        validator = registry.lookup(event_type)
        assert validator is not None and validator.is_valid(orjson.loads(payload)), payload
    names = set(part.current.get_column("event_name"))
    assert names == {"page_view", "product_view", "add_to_cart", "checkout_started", "purchase"}


def test_duplicates_late_events_and_cross_partition_replays_are_there() -> None:
    part = synthetic_partition(SyntheticConfig(day=DAY, events=20_000, seed=6))
    current = part.current
    copies = current.height - current.get_column("event_id").n_unique()
    assert 0.035 < copies / current.height < 0.065
    assert copies <= part.truth.duplicates["current"]
    late = current.filter(
        pl.col("collector_received_at") - pl.col("event_timestamp") > timedelta(hours=1)
    )
    assert late.height >= part.truth.late["current"] * 0.9 > 0
    replays = current.join(part.lookback.select("event_id"), on="event_id", how="semi")
    assert replays.height == part.truth.cross_partition > 0
    # Kafka coordinates are unique per row.
    assert current.select("kafka_partition", "kafka_offset").is_unique().all()


def test_the_same_seed_gives_the_same_rows() -> None:
    cfg = SyntheticConfig(day=DAY, events=2_000, seed=9)
    assert synthetic_partition(cfg).current.equals(synthetic_partition(cfg).current)
