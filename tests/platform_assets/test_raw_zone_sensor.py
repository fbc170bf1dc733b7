"""The raw-zone sensor over what the real batch loader wrote to a real SeaweedFS."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from resources.settings import PlatformSettings
from tests.platform_assets.sensor_helpers import evaluate_raw_zone_sensor
from tests.streaming.batch_helpers import (
    LoaderThread,
    enriched_event,
    hours_apart,
    loader_settings,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Five hours from 22:00 UTC: the events fall on two event dates.
BASE = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)


def test_new_objects_launch_their_dates_once_with_counts(
    kafka: PlatformSettings, s3: PlatformSettings
) -> None:
    settings = loader_settings(kafka, s3.s3, flush_max_events=40)
    topic = settings.batch_loader.topic
    assert topic is not None
    stamps = hours_apart(BASE, 300, hours=5)
    produce(kafka.kafka, topic, [enriched_event(t, i) for i, t in enumerate(stamps)])
    loader = LoaderThread(settings).start()
    try:
        loader.wait_caught_up()
    finally:
        loader.close()
    days = sorted({t.astimezone(UTC).date().isoformat() for t in stamps})
    assert days == ["2026-11-26", "2026-11-27"]

    first = evaluate_raw_zone_sensor(settings.s3, None)
    assert isinstance(first, dg.SensorResult)
    assert [r.partition_key for r in first.run_requests or []] == days
    run_keys = [r.run_key for r in first.run_requests or []]
    assert len(set(run_keys)) == 2
    materialized = {e.partition: e for e in first.asset_events}
    assert set(materialized) == set(days)
    assert all(e.asset_key == RAW_EVENTS for e in first.asset_events)
    per_day = {d: sum(1 for t in stamps if t.astimezone(UTC).date().isoformat() == d) for d in days}
    for day in days:
        metadata = materialized[day].metadata
        assert metadata["new_rows"].value == per_day[day]
        assert int(str(metadata["new_objects"].value)) >= 1
    assert first.cursor and json.loads(first.cursor)["after"].startswith(
        f"{settings.s3.raw_prefix}_manifests/"
    )

    # Nothing new: no run, and the cursor stays.
    again = evaluate_raw_zone_sensor(settings.s3, first.cursor)
    assert isinstance(again, dg.SensorResult)
    assert not again.run_requests and not again.asset_events
    assert again.cursor == first.cursor

    # A late event for the first day only: one run for that day, with a new run key.
    late = [datetime(2026, 11, 26, 23, 59, tzinfo=UTC)]
    produce(kafka.kafka, topic, [enriched_event(t, 1000 + i) for i, t in enumerate(late)])
    loader = LoaderThread(settings).start()
    try:
        loader.wait_caught_up()
    finally:
        loader.close()
    third = evaluate_raw_zone_sensor(settings.s3, first.cursor)
    assert isinstance(third, dg.SensorResult)
    assert [r.partition_key for r in third.run_requests or []] == ["2026-11-26"]
    assert third.run_requests[0].run_key not in run_keys  # type: ignore[index]
    assert third.asset_events[0].metadata["new_rows"].value == 1
