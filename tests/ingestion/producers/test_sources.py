"""Sources: seeded, realistic, schema-valid events, and broken ones that really are broken."""

from __future__ import annotations

import csv
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contract.envelope import EnvelopeRules, SourceItem, check_envelope
from contract.failures import FailureType
from contract.registry import SchemaRegistry
from ingestion.producers.sources import FieldMapping, FileSource, encode
from simulator.events import COLLECTOR_FLAWS, ClickstreamSource, IoTSource
from simulator.world import PAGE_VIEW_LATEST

pytestmark = pytest.mark.unit

REGISTRY = SchemaRegistry.from_directory()
RULES = EnvelopeRules()
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NOW = START + timedelta(days=1)  # every generated event lies within the allowed skew
FUNNEL = ["page_view", "product_view", "add_to_cart", "checkout_started", "purchase"]


def name(event: dict[str, Any]) -> str:
    return str(event["event_type"].split("/")[1])


def verdict(item: SourceItem) -> str:
    """'ok', the collector's failure type, or 'schema_violation' (the enricher's)."""
    if isinstance(item, bytes):
        try:
            data = orjson.loads(item)
        except orjson.JSONDecodeError:
            return str(FailureType.MALFORMED)
    else:
        data = orjson.loads(encode(item))  # what the collector decodes
    check = check_envelope(data, REGISTRY, RULES, now=NOW)
    if check.failure_type is not None:
        return str(check.failure_type)
    schema = REGISTRY.lookup(data["event_type"])
    assert schema is not None
    return str(FailureType.SCHEMA_VIOLATION) if schema.errors(data["payload"]) else "ok"


def test_same_seed_same_bytes_and_a_new_start_new_ids() -> None:
    first = [encode(e) for e in islice(ClickstreamSource(50, 3, 0.2, START), 3000)]
    again = [encode(e) for e in islice(ClickstreamSource(50, 3, 0.2, START), 3000)]
    assert first == again
    source = ClickstreamSource(50, 3, 0.2, START)
    assert [encode(e) for e in islice(source, 500)] == first[:500]
    assert [encode(e) for e in islice(source, 500)] == first[:500]  # each iter() starts over
    other_seed = [encode(e) for e in islice(ClickstreamSource(50, 4, 0.2, START), 3000)]
    assert other_seed != first

    later = ClickstreamSource(50, 3, 0.0, START + timedelta(hours=1))
    earlier = ClickstreamSource(50, 3, 0.0, START)
    ids_later = {e["event_id"] for e in islice(later, 1000) if isinstance(e, dict)}
    ids_earlier = {e["event_id"] for e in islice(earlier, 1000) if isinstance(e, dict)}
    assert not ids_later & ids_earlier  # a second run does not reuse ids

    iot = [encode(e) for e in islice(IoTSource(30, 3, 0.2, START), 2000)]
    assert iot == [encode(e) for e in islice(IoTSource(30, 3, 0.2, START), 2000)]


def test_ids_come_from_the_seed_not_uuid4() -> None:
    events = list(islice(ClickstreamSource(20, 1, 0.0, START), 50))
    assert all(uuid.UUID(e["event_id"]).version == 4 for e in events if isinstance(e, dict))
    assert len({e["event_id"] for e in events if isinstance(e, dict)}) == 50


@pytest.mark.parametrize(
    "source",
    [ClickstreamSource(300, 11, 0.0, START), IoTSource(40, 11, 0.0, START)],
    ids=["clickstream", "iot"],
)
def test_every_event_validates_envelope_and_payload(source: Any) -> None:
    events = list(islice(source, 5000))
    problems = Counter(verdict(e) for e in events)
    assert problems == Counter({"ok": 5000})
    for event in events:
        assert isinstance(event, dict)
        schema = REGISTRY.lookup(event["event_type"])
        assert schema is not None and schema.errors(event["payload"]) == []
        datetime.fromisoformat(event["event_timestamp"])
        assert event["event_timestamp"].endswith("Z")
        assert (
            START <= datetime.fromisoformat(event["event_timestamp"]) <= START + timedelta(hours=6)
        )


def test_clickstream_is_realistic() -> None:
    events = [e for e in islice(ClickstreamSource(300, 5, 0.0, START), 6000) if isinstance(e, dict)]
    types = Counter(e["event_type"] for e in events)
    latest = REGISTRY.latest("com.tributary.shop", "page_view").uri
    assert latest == PAGE_VIEW_LATEST and types[latest] > 0
    assert types["iglu:com.tributary.shop/page_view/jsonschema/1-0-0"] > 0
    assert any(e["payload"].get("referrer_medium") == "search" for e in events)
    contexts = [e["context"] for e in events]
    assert {c["device_type"] for c in contexts} == {"desktop", "mobile", "bot"}
    assert any("user_id" not in c for c in contexts) and any("user_id" in c for c in contexts)
    assert all(c["session_id"] and c["client_ip"] and c["user_agent"] for c in contexts)
    bots = [c["user_agent"] for c in contexts if c["device_type"] == "bot"]
    assert bots and all("bot" in ua.lower() for ua in bots)
    currencies = {e["payload"]["currency"] for e in events if "currency" in e["payload"]}
    assert currencies == {"EUR", "USD", "GBP"}
    products = {e["payload"]["product_id"] for e in events if name(e) == "product_view"}
    assert len(products) > 20
    # Sessions of different users interleave.
    first_sessions = [e["context"]["session_id"] for e in events[:40]]
    assert len(set(first_sessions)) > 5


def test_funnel_order_within_sessions_with_drop_off() -> None:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in islice(ClickstreamSource(400, 8, 0.0, START), 20000):
        assert isinstance(event, dict)
        sessions[event["context"]["session_id"]].append(event)
    reached: Counter[str] = Counter()
    for events in sessions.values():
        names = [name(e) for e in events]
        times = [datetime.fromisoformat(e["event_timestamp"]) for e in events]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert names[0] == "page_view"
        assert len({e["context"].get("user_id") for e in events}) == 1
        viewed: set[str] = set()
        cart: Counter[str] = Counter()
        checked_out: dict[str, Any] | None = None
        for event, event_name in zip(events, names, strict=True):
            payload = event["payload"]
            if event_name == "product_view":
                viewed.add(payload["product_id"])
            elif event_name == "add_to_cart":
                assert payload["product_id"] in viewed
                cart[payload["product_id"]] += payload["quantity"]
            elif event_name == "checkout_started":
                assert cart and payload["item_count"] == sum(cart.values())
                checked_out = payload
            elif event_name == "purchase":
                assert checked_out is not None
                assert payload["total"] == checked_out["cart_value"]
                assert {i["product_id"]: i["quantity"] for i in payload["items"]} == dict(cart)
                total = sum(i["quantity"] * i["unit_price"] for i in payload["items"])
                assert payload["total"] == pytest.approx(total)
        for step in FUNNEL:
            if step in names:
                reached[step] += 1
    counts = [reached[step] for step in FUNNEL]
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0
    assert len(set(counts)) == len(counts)  # every step loses some sessions


@pytest.mark.parametrize("kind", ["clickstream", "iot"])
def test_bad_share_is_respected_and_every_flaw_is_refused(kind: str) -> None:
    def make(share: float) -> Any:
        if kind == "clickstream":
            return ClickstreamSource(200, 21, share, START)
        return IoTSource(50, 21, share, START)

    source = make(0.1)
    verdicts = Counter(verdict(e) for e in islice(source, 10000))
    refused = 10000 - verdicts["ok"]
    assert refused == sum(source.flaws.values())
    assert 0.08 <= refused / 10000 <= 0.12

    # Everything broken: each event is refused, by the collector or by its payload schema,
    # exactly as its flaw says.
    source = make(1.0)
    verdicts = Counter(verdict(e) for e in islice(source, 3000))
    flaws = source.flaws
    assert verdicts["ok"] == 0
    assert set(flaws) >= set(COLLECTOR_FLAWS) and len(flaws) == len(COLLECTOR_FLAWS) + 3
    assert verdicts[FailureType.MALFORMED] == flaws["not_json"]
    assert verdicts[FailureType.UNKNOWN_SCHEMA] == flaws["unknown_type"]
    assert verdicts[FailureType.ENVELOPE_VIOLATION] == (
        flaws["bad_uuid"] + flaws["naive_timestamp"] + flaws["payload_not_object"]
    )
    payload_flaws = sum(n for flaw, n in flaws.items() if flaw not in COLLECTOR_FLAWS)
    assert verdicts[FailureType.SCHEMA_VIOLATION] == payload_flaws > 0


def test_not_json_is_bytes_that_keep_the_event_id() -> None:
    source = ClickstreamSource(50, 2, 1.0, START)
    raw = [e for e in islice(source, 2000) if isinstance(e, bytes)]
    assert len(raw) == source.flaws["not_json"] > 0
    for item in raw:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(item)
        assert item.startswith(b'{"event_id":"')


# -- files ---------------------------------------------------------------------------------

ROWS = [
    {"order_ref": "A-1", "ts": "2026-11-28 10:15:00", "sku": "SKU-1001", "qty": "2",
     "unit_price": "89.9", "customer": "c-42"},
    {"order_ref": "A-2", "ts": "2026-11-28T11:00:00+00:00", "sku": "SKU-1002", "qty": "1",
     "unit_price": "15", "customer": ""},
]  # fmt: skip
MAPPING = FieldMapping(
    event_type="iglu:com.tributary.shop/add_to_cart/jsonschema/1-0-0",
    source="orders-export",
    timestamp="ts",
    timezone="Europe/Berlin",
    payload={"product_id": "sku", "quantity": "qty", "price": "unit_price"},
    constants={"currency": "EUR"},
    context={"user_id": "customer"},
    casts={"qty": "int", "unit_price": "float"},
)
EXPECTED = [
    {
        "event_type": "iglu:com.tributary.shop/add_to_cart/jsonschema/1-0-0",
        "event_timestamp": "2026-11-28T10:15:00.000+01:00",
        "source": "orders-export",
        "payload": {"product_id": "SKU-1001", "quantity": 2, "price": 89.9, "currency": "EUR"},
        "context": {"user_id": "c-42"},
    },
    {
        "event_type": "iglu:com.tributary.shop/add_to_cart/jsonschema/1-0-0",
        "event_timestamp": "2026-11-28T11:00:00.000Z",
        "source": "orders-export",
        "payload": {"product_id": "SKU-1002", "quantity": 1, "price": 15.0, "currency": "EUR"},
    },
]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"\n")
    elif path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def check_file_events(events: list[Any]) -> None:
    assert [{k: v for k, v in e.items() if k != "event_id"} for e in events] == EXPECTED
    for event in events:
        assert uuid.UUID(event["event_id"]).version == 5
        check = check_envelope(event, REGISTRY, RULES, now=datetime(2026, 11, 29, tzinfo=UTC))
        assert check.ok, check.errors
        schema = REGISTRY.lookup(event["event_type"])
        assert schema is not None and schema.errors(event["payload"]) == []


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_file_source_maps_rows_with_deterministic_ids(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"orders{suffix}", ROWS)
    events = list(FileSource(path, MAPPING))
    check_file_events(events)
    assert len({e["event_id"] for e in events}) == 2
    # A replay, even of a copy in another format, sends the same ids.
    again = list(FileSource(write(tmp_path / "copy.jsonl", ROWS), MAPPING))
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]
    # A changed row gets another id.
    changed = [{**ROWS[0], "qty": "3"}, ROWS[1]]
    other = list(FileSource(write(tmp_path / f"changed{suffix}", changed), MAPPING))
    assert other[0]["event_id"] != events[0]["event_id"]
    assert other[1]["event_id"] == events[1]["event_id"]


def test_file_source_typed_parquet_remaining_columns_and_id_column(tmp_path: Path) -> None:
    berlin = datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    rows = [
        {"id": "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11", "at": berlin, "device_id": "thermo-7",
         "sensor": "temperature", "value": Decimal("21.50"), "unit": "celsius", "site": "lyon",
         "internal": "x"},
    ]  # fmt: skip
    path = tmp_path / "readings.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    mapping = FieldMapping(
        event_type="iglu:com.tributary.iot/sensor_reading/jsonschema/1-0-0",
        source="historian",
        event_id="id",
        timestamp="at",
        payload="*",
        context=["site", "device_id"],
        drop=["internal"],
    )
    (event,) = list(FileSource(path, mapping))
    assert event == {
        "event_id": "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11",
        "event_type": "iglu:com.tributary.iot/sensor_reading/jsonschema/1-0-0",
        "event_timestamp": "2026-11-28T10:15:00.000Z",
        "source": "historian",
        "payload": {"sensor": "temperature", "value": 21.5, "unit": "celsius"},
        "context": {"site": "lyon", "device_id": "thermo-7"},
    }


def test_file_source_refuses_what_it_cannot_map(tmp_path: Path) -> None:
    path = write(tmp_path / "orders.jsonl", [ROWS[0], {**ROWS[1], "ts": None}])
    with pytest.raises(ValueError, match=r"orders.jsonl:2: no value in the timestamp column"):
        list(FileSource(path, MAPPING))
    bad_number = write(tmp_path / "n.csv", [{**ROWS[0], "qty": "two"}])
    with pytest.raises(ValueError, match=r"n.csv:2: column 'qty' is not int"):
        list(FileSource(bad_number, MAPPING))
    with pytest.raises(ValueError, match="cannot tell the format"):
        FileSource(tmp_path / "orders.txt", MAPPING)
    with pytest.raises(ValueError):
        FieldMapping.model_validate({**MAPPING.model_dump(), "timezone": "Mars/Olympus"})
