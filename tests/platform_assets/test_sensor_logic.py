"""The sensors' decisions, with ``dg.build_sensor_context`` and in-memory resources.

Cursor handling, the run requests and partition keys each tick emits for given manifests or
counts, and that a tick evaluated again from the cursor it left launches nothing twice.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from contract.raw_zone import (
    Manifest,
    ManifestError,
    manifest_key,
    manifests_prefix,
    object_key,
    partition_key,
)
from contract.search import DEADLETTERS, EVENTS, index_pattern
from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from platform_assets.sensors.alerts import Reading, alert_sensor, alerts_for, stream_alert
from platform_assets.sensors.raw_zone import raw_zone_sensor, scan
from resources.settings import AlertSettings, S3Settings
from tests.platform_assets.sensor_helpers import (
    FakeS3Client,
    FakeS3Resource,
    FakeSearchResource,
    FakeSearchStore,
    evaluate_raw_zone_sensor,
    target,
)

pytestmark = pytest.mark.unit

S3 = S3Settings()
TOPIC = "tributary.events.enriched"
WRITTEN = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


class RawZone:
    """Manifests as the batch loader writes them, one per data object, in an in-memory bucket."""

    def __init__(self, page_size: int = 1000) -> None:
        self.client = FakeS3Client(S3.raw_bucket, page_size)
        self.written = WRITTEN
        self.offset = 0

    def flush(self, event_time: datetime, rows: int, partition: int = 0) -> str:
        """Write the manifest of one object of ``rows`` events at ``event_time``; its key."""
        key = partition_key(TOPIC, partition, event_time)
        first, last = self.offset, self.offset + rows - 1
        self.offset += rows
        data_key = object_key(S3.raw_prefix, key, first, last)
        self.written += timedelta(seconds=1)
        manifest = Manifest.of(
            data_key,
            key,
            rows=rows,
            size=100 * rows,
            first_offset=first,
            last_offset=last,
            min_event_time=event_time,
            max_event_time=event_time + timedelta(minutes=rows),
            written_at=self.written,
        )
        name = manifest_key(S3.raw_prefix, data_key, self.written)
        self.client.put(name, manifest.to_json())
        return name

    def tick(self, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
        sensor = raw_zone_sensor(S3, dg.AssetSelection.assets(target))
        context = dg.build_sensor_context(
            cursor=cursor,
            resources={"s3": FakeS3Resource(self.client)},
            definitions=dg.Definitions(assets=[target], sensors=[sensor]),
        )
        result = sensor(context)
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        return result

    def result(self, cursor: str | None) -> dg.SensorResult:
        result = self.tick(cursor)
        assert isinstance(result, dg.SensorResult), result
        return result


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_new_manifests_launch_each_event_date_once_with_its_counts() -> None:
    zone = RawZone()
    zone.flush(at(26, 22), rows=10)
    last_26 = zone.flush(at(26, 23), rows=5)
    last_27 = zone.flush(at(27, 1), rows=7)

    first = zone.result(None)
    requests = first.run_requests or []
    assert [r.partition_key for r in requests] == ["2026-11-26", "2026-11-27"]
    assert [r.run_key for r in requests] == [f"2026-11-26:{last_26}", f"2026-11-27:{last_27}"]
    assert first.cursor is not None
    assert json.loads(first.cursor) == {"after": last_27}
    events = {e.partition: e for e in first.asset_events}
    assert set(events) == {"2026-11-26", "2026-11-27"}
    assert all(e.asset_key == RAW_EVENTS for e in first.asset_events)
    metadata = {day: {k: v.value for k, v in e.metadata.items()} for day, e in events.items()}
    assert metadata["2026-11-26"] == {
        "new_objects": 2,
        "new_rows": 15,
        "new_bytes": 1500,
        "min_event_time": at(26, 22).isoformat(),
        "max_event_time": (at(26, 23) + timedelta(minutes=5)).isoformat(),
        "last_manifest": last_26,
    }
    assert metadata["2026-11-27"]["new_rows"] == 7
    # The listing is of the manifests alone, from the start.
    assert zone.client.listings == [
        {"Bucket": S3.raw_bucket, "Prefix": manifests_prefix(S3.raw_prefix), "StartAfter": ""}
    ]


def test_a_tick_from_the_cursor_it_left_launches_nothing_and_keeps_the_cursor() -> None:
    zone = RawZone()
    zone.flush(at(26, 22), rows=10)
    first = zone.result(None)
    again = zone.result(first.cursor)
    assert not again.run_requests and not again.asset_events
    assert again.cursor == first.cursor
    assert zone.client.listings[-1]["StartAfter"] == json.loads(first.cursor or "")["after"]


def test_a_retried_tick_asks_for_the_same_runs() -> None:
    """A tick whose cursor was not saved is evaluated again: the same run keys, deduplicated."""
    zone = RawZone()
    zone.flush(at(26, 22), rows=10)
    zone.flush(at(27, 2), rows=3)
    keys = [[r.run_key for r in zone.result(None).run_requests or []] for _ in range(2)]
    assert keys[0] == keys[1] and len(set(keys[0])) == 2


def test_a_late_arrival_launches_its_date_again_under_a_new_run_key() -> None:
    zone = RawZone()
    zone.flush(at(26, 22), rows=10)
    zone.flush(at(27, 1), rows=4)
    first = zone.result(None)
    late = zone.flush(at(26, 23), rows=1)
    second = zone.result(first.cursor)
    [request] = second.run_requests or []
    assert request.partition_key == "2026-11-26"
    assert request.run_key == f"2026-11-26:{late}"
    assert request.run_key not in {r.run_key for r in first.run_requests or []}
    assert [e.metadata["new_rows"].value for e in second.asset_events] == [1]
    assert json.loads(second.cursor or "") == {"after": late}


def test_dates_outside_the_partitions_are_skipped_but_passed_by_the_cursor() -> None:
    zone = RawZone()
    zone.flush(datetime(2025, 12, 31, 12, tzinfo=UTC), rows=2)  # before the first partition
    last = zone.flush(at(26, 22), rows=3)
    result = zone.result(None)
    assert [r.partition_key for r in result.run_requests or []] == ["2026-11-26"]
    assert [e.partition for e in result.asset_events] == ["2026-11-26"]
    assert json.loads(result.cursor or "") == {"after": last}


def test_a_manifest_that_does_not_parse_fails_the_tick_naming_its_key() -> None:
    zone = RawZone()
    zone.flush(at(26, 22), rows=3)
    broken = manifest_key(S3.raw_prefix, "events/x+0+9-9.parquet", WRITTEN + timedelta(hours=1))
    zone.client.put(broken, b'{"key": "events/x+0+9-9.parquet"}')
    with pytest.raises(ManifestError, match=re.escape(broken)):
        zone.tick(None)


def test_an_object_store_that_refuses_skips_the_tick_and_keeps_the_cursor() -> None:
    zone = RawZone()
    zone.client.refuse = True
    result = zone.tick('{"after": "events/_manifests/x"}')
    assert isinstance(result, dg.SkipReason)
    assert "raw zone unreachable" in (result.skip_message or "")


def test_an_unreachable_raw_zone_skips_the_tick() -> None:
    """The real S3 client against a closed port: the errors botocore raises are caught."""
    closed = S3Settings(endpoint_url="http://127.0.0.1:9")  # nothing listens on the discard port
    result = evaluate_raw_zone_sensor(closed, '{"after": "events/_manifests/x"}')
    assert isinstance(result, dg.SkipReason)
    assert "raw zone unreachable" in (result.skip_message or "")


def test_scan_stops_at_its_limit_and_the_next_scan_goes_on_from_there() -> None:
    zone = RawZone(page_size=2)
    names = [zone.flush(at(26, h), rows=1) for h in range(5)]
    prefix = S3.raw_prefix
    arrivals, cursor = scan(zone.client, S3.raw_bucket, prefix, None, limit=3)
    assert cursor == names[2]
    assert arrivals["2026-11-26"].rows == 3
    rest, end = scan(zone.client, S3.raw_bucket, prefix, cursor, limit=3)
    assert end == names[4] and rest["2026-11-26"].rows == 2
    assert scan(zone.client, S3.raw_bucket, prefix, end) == ({}, end)


# -- the alert sensor ------------------------------------------------------------------------

PREFIX = "tributary"


def counts(events: int, dead_letters: int) -> FakeSearchStore:
    return FakeSearchStore(
        {index_pattern(PREFIX, EVENTS): events, index_pattern(PREFIX, DEADLETTERS): dead_letters}
    )


def alert_tick(
    store: FakeSearchStore, alerts: AlertSettings, cursor: str | None = None
) -> dg.SensorResult:
    sensor = alert_sensor(alerts)
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"search": FakeSearchResource(store, PREFIX)},
        definitions=dg.Definitions(jobs=[stream_alert], sensors=[sensor]),
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


@pytest.mark.parametrize(
    ("events", "dead_letters", "fired"),
    [
        (100, 0, []),
        (80, 20, []),  # exactly the threshold does not fire
        (79, 21, ["dead_letter_rate"]),
        (0, 0, ["silence"]),
        (0, 3, ["silence", "dead_letter_rate"]),
    ],
)
def test_which_alerts_a_reading_raises(events: int, dead_letters: int, fired: list[str]) -> None:
    assert list(alerts_for(Reading(events, dead_letters), AlertSettings())) == fired


def test_an_alert_fires_once_per_episode() -> None:
    alerts = AlertSettings(window_minutes=10, max_dead_letter_rate=0.2)
    high = counts(events=10, dead_letters=5)
    began = datetime.now(UTC)
    first = alert_tick(high, alerts)
    [request] = first.run_requests or []
    assert request.tags == {"tributary/alert": "dead_letter_rate"}
    assert request.run_key and request.run_key.startswith("dead_letter_rate:")
    config = request.run_config["ops"]["raise_alert"]["config"]
    assert config["kind"] == "dead_letter_rate"
    assert "33.3%" in config["text"] and "5 dead letters, 10 events" in config["text"]
    # The window asked of the search store: the last ten minutes, in both index families.
    assert abs(high.since() - (began - timedelta(minutes=10))) < timedelta(seconds=5)
    assert [r["index"] for r in high.requests] == [
        index_pattern(PREFIX, EVENTS),
        index_pattern(PREFIX, DEADLETTERS),
    ]
    started = json.loads(first.cursor or "")["dead_letter_rate"]

    again = alert_tick(high, alerts, first.cursor)
    assert not again.run_requests
    assert json.loads(again.cursor or "") == {"dead_letter_rate": started}, "the episode's start"

    calm = alert_tick(counts(events=100, dead_letters=1), alerts, again.cursor)
    assert not calm.run_requests and json.loads(calm.cursor or "") == {}

    back = alert_tick(high, alerts, calm.cursor)
    assert [r.tags["tributary/alert"] for r in back.run_requests or []] == ["dead_letter_rate"]


def test_silence_fires_alone_and_ends_when_events_arrive() -> None:
    alerts = AlertSettings(window_minutes=5)
    silent = alert_tick(counts(0, 0), alerts)
    assert [r.tags["tributary/alert"] for r in silent.run_requests or []] == ["silence"]
    assert set(json.loads(silent.cursor or "")) == {"silence"}
    # While silent, a second alert starts its own episode; the first one's is kept.
    both = alert_tick(counts(0, 2), alerts, silent.cursor)
    assert [r.tags["tributary/alert"] for r in both.run_requests or []] == ["dead_letter_rate"]
    assert json.loads(both.cursor or "")["silence"] == json.loads(silent.cursor or "")["silence"]
    assert json.loads(alert_tick(counts(50, 0), alerts, both.cursor).cursor or "") == {}


def test_a_failing_webhook_does_not_hold_back_the_alert_run() -> None:
    alerts = AlertSettings(webhook_url="http://127.0.0.1:9/alerts")  # the discard port: refused
    result = alert_tick(counts(0, 0), alerts)
    assert [r.tags["tributary/alert"] for r in result.run_requests or []] == ["silence"]


def test_the_alert_is_a_failed_run() -> None:
    result = stream_alert.execute_in_process(
        run_config={"ops": {"raise_alert": {"config": {"kind": "silence", "text": "no events"}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "no events" in str(failure.event_specific_data)
