"""The raw zone's layout: object, manifest and marker names, and the manifest's wire format."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from contract.raw_zone import (
    RAW_SCHEMA_VERSION,
    Manifest,
    ManifestError,
    PartitionKey,
    manifest_key,
    manifests_prefix,
    manifests_since,
    object_key,
    parse_object_name,
    partition_key,
)

pytestmark = pytest.mark.unit

TOPIC = "tributary.events.enriched"
DATA_KEY = f"events/event_date=2026-11-28/event_hour=09/{TOPIC}+3+120-344.parquet"

# A manifest as the batch loader wrote them before the manifest had a type (``json.dumps``
# of a dict): objects like this one are in existing raw zones and must still read.
WRITTEN_BEFORE = (
    b'{"key": "' + DATA_KEY.encode() + b'", "rows": 225, "bytes": 48213, '
    b'"topic": "tributary.events.enriched", "partition": 3, "first_offset": 120, '
    b'"last_offset": 344, "event_date": "2026-11-28", "event_hour": 9, '
    b'"min_event_time": "2026-11-28T09:00:00.250000+00:00", '
    b'"max_event_time": "2026-11-28T09:59:59+00:00", '
    b'"written_at": "2026-11-28T10:00:02.123456+00:00", "schema": "raw_events/1"}'
)


def _document(**changes: Any) -> bytes:
    doc = json.loads(WRITTEN_BEFORE)
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def test_names_and_manifest_keys_sort_as_documented() -> None:
    ts = datetime.fromisoformat("2026-11-28T00:30:00-05:00")  # 05:30 UTC
    key = partition_key(TOPIC, 3, ts)
    assert key == PartitionKey(TOPIC, 3, ts.date(), 5)
    data = object_key("events/", key, 120, 344)
    assert data == f"events/event_date=2026-11-28/event_hour=05/{TOPIC}+3+120-344.parquet"
    assert parse_object_name(data) == (TOPIC, 3, 120, 344)
    with pytest.raises(ValueError, match="not a raw-zone object name"):
        parse_object_name("events/event_date=2026-11-28/notes.txt")
    early = manifest_key("events/", data, datetime(2026, 11, 28, 9, 59, 59, tzinfo=UTC))
    later = manifest_key("events/", data, datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC))
    assert early.startswith("events/_manifests/flushed_date=2026-11-28/") and early < later
    assert early.startswith(manifests_prefix("events/"))
    assert early.endswith(f"_{TOPIC}+3+120-344.json")


def test_a_listing_cursor_sorts_between_the_manifests_written_before_and_after() -> None:
    at = datetime(2026, 11, 28, 10, 0, 0, 500_000, tzinfo=UTC)
    cursor = manifests_since("events/", at)
    before = manifest_key("events/", DATA_KEY, at - timedelta(microseconds=1))
    same = manifest_key("events/", DATA_KEY, at)
    after = manifest_key("events/", DATA_KEY, at + timedelta(microseconds=1))
    assert before < cursor < same < after
    # Any offset is read as UTC: 11:00 in Paris is the same cursor as 10:00 UTC.
    paris = timezone(timedelta(hours=1))
    assert manifests_since("events/", at.astimezone(paris)) == cursor


def test_a_manifest_written_before_it_had_a_type_still_reads() -> None:
    m = Manifest.from_json(WRITTEN_BEFORE, "events/_manifests/x.json")
    assert (m.key, m.rows, m.size, m.topic, m.partition) == (DATA_KEY, 225, 48213, TOPIC, 3)
    assert (m.first_offset, m.last_offset, m.event_date, m.event_hour) == (
        120,
        344,
        date(2026, 11, 28),
        9,
    )
    assert m.min_event_time == datetime(2026, 11, 28, 9, 0, 0, 250_000, tzinfo=UTC)
    assert m.schema_version == "raw_events/1" == RAW_SCHEMA_VERSION
    # Written again, it is the same document: field names, values and time format.
    assert json.loads(m.to_json()) == json.loads(WRITTEN_BEFORE)


def test_the_loader_s_manifest_round_trips_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    key = PartitionKey(TOPIC, 3, date(2026, 11, 28), 9)
    m = Manifest.of(
        DATA_KEY,
        key,
        rows=225,
        size=48213,
        first_offset=120,
        last_offset=344,
        min_event_time=datetime(2026, 11, 28, 10, 0, 0, 250_000, tzinfo=paris),
        max_event_time=datetime(2026, 11, 28, 9, 59, 59, tzinfo=UTC),
        written_at=datetime(2026, 11, 28, 10, 0, 2, 123_456, tzinfo=UTC),
    )
    doc = json.loads(m.to_json())
    assert doc == json.loads(WRITTEN_BEFORE)
    assert list(doc) == list(json.loads(WRITTEN_BEFORE)), "the field order changed"
    assert Manifest.from_json(m.to_json()) == m
    # A field a later writer adds does not stop this reader.
    assert Manifest.from_json(_document(compression="zstd")) == m


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{not json", "Invalid JSON"),
        (b"[]", "document"),
        (_document(rows=None), "rows: Field required"),
        (_document(bytes="big"), "bytes: Input should be a valid integer"),
        (_document(rows=-1), "rows: Input should be greater than or equal to 0"),
        (_document(event_hour=24), "event_hour"),
        (_document(event_date="28/11/2026"), "event_date"),
        (_document(min_event_time="2026-11-28T09:00:00"), "min_event_time"),  # no offset
        (_document(first_offset=400), "first_offset 400 > last_offset 344"),
        (
            _document(min_event_time="2026-11-28T10:30:00+00:00"),
            "min_event_time is after max_event_time",
        ),
    ],
)
def test_a_malformed_manifest_is_refused_with_its_key_and_the_field(
    body: bytes, named: str
) -> None:
    where = "events/_manifests/flushed_date=2026-11-28/bad.json"
    with pytest.raises(ManifestError) as raised:
        Manifest.from_json(body, where)
    message = str(raised.value)
    assert message.startswith(f"{where} is not a raw-zone manifest: ")
    assert named in message
