"""The collector's HTTP contract, in process: the real app, an in-memory Kafka producer.

What the collector answers and what it hands to Kafka for each kind of request; the real
collector process against real Kafka is ``test_collector_rest.py``.
"""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from contract.failures import FailureType
from tests.ingestion.collector_helpers import READ_ONLY_KEY, WRITE_KEY, event
from tests.ingestion.inprocess_helpers import (
    collector_settings,
    in_process_collector,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

UNKNOWN = "iglu:com.tributary.shop/refund/jsonschema/1-0-0"
# Small limits, so that each is crossed with a few hundred bytes. One event is about 300.
LIMITS = {"max_batch_events": 3, "max_event_bytes": 600, "max_body_bytes": 2000}


async def test_an_accepted_event_reaches_the_raw_topic_with_the_collector_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = collector_settings(monkeypatch, instance_id="collector-a")
    async with in_process_collector(settings) as c:
        sent = event()
        resp = await c.post(sent, **{"user-agent": "tests/1.0", "x-request-id": "req-7"})
        assert resp.status_code == 202, resp.text
        assert resp.headers["content-type"] == "application/json"
        assert resp.json() == {"request_id": "req-7", "accepted": 1, "rejected": 0}
        [message] = c.raw
        assert message.key == b"user_id:u-1"
        record = message.json()
        assert {k: v for k, v in record.items() if k != "collector"} == sent
        meta = record["collector"]
        assert meta["received_at"].endswith("Z")
        assert {k: v for k, v in meta.items() if k != "received_at"} == {
            "collector_id": "collector-a",
            "request_id": "req-7",
            "producer": "test-producer",
            "client_ip": "198.51.100.20",
            "user_agent": "tests/1.0",
            "path": "rest",
        }
        assert c.dead_letters == []


async def test_the_producer_is_configured_from_the_collector_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = collector_settings(
        monkeypatch, delivery_timeout_s=3, queue_max_messages=1234, linger_ms=7
    )
    async with in_process_collector(settings) as c:
        assert c.kafka.config["message.timeout.ms"] == 3000
        assert c.kafka.config["queue.buffering.max.messages"] == 1234
        assert c.kafka.config["linger.ms"] == 7
        assert c.kafka.error_cb is not None


@pytest.mark.parametrize(
    ("supplied", "kept"),
    [
        ("req-123", "req-123"),
        ("r" * 200, "r" * 128),
        (None, None),  # none supplied: a fresh UUID
        ("bad\x7fid", None),  # not printable: replaced by a fresh UUID
    ],
)
async def test_the_request_id_is_answered_and_stamped_on_every_event(
    monkeypatch: pytest.MonkeyPatch, supplied: str | None, kept: str | None
) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        headers = {} if supplied is None else {"x-request-id": supplied}
        resp = await c.post([event(), event(event_id="nope")], **headers)
        assert resp.status_code == 207
        request_id = resp.json()["request_id"]
        if kept is None:
            assert uuid.UUID(request_id)
        else:
            assert request_id == kept
        [accepted] = c.raw
        [dead] = c.dead_letters
        assert accepted.json()["collector"]["request_id"] == request_id
        assert dead.metadata["request_id"] == request_id


async def test_a_mixed_batch_names_each_rejected_field_and_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        good = [event(), event()]
        bad_id = event(event_id="nope")
        unknown = event(event_type=UNKNOWN)
        no_source = event(source="")
        resp = await c.post([good[0], bad_id, unknown, good[1], no_source])
        assert resp.status_code == 207, resp.text
        body = resp.json()
        assert (body["accepted"], body["rejected"]) == (2, 3)
        outcomes = body["events"]
        assert [o["index"] for o in outcomes] == [0, 1, 2, 3, 4]
        assert [o["status"] for o in outcomes] == [
            "accepted",
            "rejected",
            "rejected",
            "accepted",
            "rejected",
        ]
        assert outcomes[0] == {"index": 0, "event_id": good[0]["event_id"], "status": "accepted"}
        assert outcomes[1]["reason"] == "envelope_violation"
        assert [e["field"] for e in outcomes[1]["errors"]] == ["/event_id"]
        assert outcomes[2]["reason"] == "unknown_schema"
        assert outcomes[2]["errors"][0]["field"] == "/event_type"
        assert outcomes[4]["reason"] == "envelope_violation"
        assert [e["field"] for e in outcomes[4]["errors"]] == ["/source"]
        assert all(e["reason"] for o in outcomes[1:3] + outcomes[4:] for e in o["errors"])

        assert [m.json()["event_id"] for m in c.raw] == [g["event_id"] for g in good]
        dead = {d.failure_type: d for d in c.dead_letters}
        assert len(c.dead_letters) == 3
        schema = dead[FailureType.UNKNOWN_SCHEMA]
        assert schema.stage == "collector"
        assert (schema.event_id, schema.event_type) == (unknown["event_id"], UNKNOWN)
        assert (schema.original.encoding, schema.original.data) == ("json", unknown)
        assert [e.model_dump() for e in schema.errors] == outcomes[2]["errors"]
        assert schema.metadata["producer"] == "test-producer"
        # The reasons a producer is told are the reasons kept with the dead letters.
        by_event = {d.original.data["event_id"]: d for d in c.dead_letters}
        for outcome in (outcomes[1], outcomes[4]):
            kept = by_event[outcome["event_id"]]
            assert kept.failure_type == outcome["reason"]
            assert [e.model_dump() for e in kept.errors] == outcome["errors"]


async def test_a_batch_of_only_bad_events_is_400(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post([event(source=""), event(payload=[])])
        assert resp.status_code == 400
        assert (resp.json()["accepted"], resp.json()["rejected"]) == (0, 2)
        assert c.raw == [] and len(c.dead_letters) == 2


async def test_an_event_over_the_size_limit_is_refused_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch, **LIMITS)) as c:
        big = event(payload={"page_url": "https://shop.example.com/", "page_title": "x" * 700})
        ok = event()
        resp = await c.post([big, ok])
        assert resp.status_code == 207
        assert resp.json()["events"][0]["reason"] == "size_violation"
        assert [m.json()["event_id"] for m in c.raw] == [ok["event_id"]]
        [dead] = c.dead_letters
        assert dead.failure_type == "size_violation" and dead.event_id == big["event_id"]
        # Kept as bytes, cut at the event limit: a dead letter is never larger than an event.
        assert dead.original.encoding == "base64"
        assert dead.original.to_bytes() == orjson.dumps(big)[:600]


async def test_gzip_bodies_are_inflated(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        batch = [event() for _ in range(20)]
        resp = await c.post(gzip.compress(orjson.dumps(batch)), **{"content-encoding": "gzip"})
        assert resp.status_code == 202, resp.text
        assert [m.json()["event_id"] for m in c.raw] == [e["event_id"] for e in batch]


def _too_many() -> list[dict[str, Any]]:
    return [event() for _ in range(4)]


BOMB = gzip.compress(b"[" + b" " * 50_000 + b"]")


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason", "detail", "kept"),
    [
        (b"\x00\xffnot json", {}, 400, "malformed", "not valid JSON", b"\x00\xffnot json"),
        (b"not gzip", {"content-encoding": "gzip"}, 400, "malformed", "not valid gzip", None),
        # What was refused after inflating is kept inflated.
        (
            gzip.compress(b"{broken json"),
            {"content-encoding": "gzip"},
            400,
            "malformed",
            "not valid JSON",
            b"{broken json",
        ),
        (b"[]", {}, 400, "envelope_violation", "the batch is empty", None),
        (
            orjson.dumps(event()),
            {"content-type": "application/xml"},
            415,
            "malformed",
            "content type must be application/json, not 'application/xml'",
            None,
        ),
        (orjson.dumps(event()), {"content-encoding": "br"}, 415, "malformed", "encoding br", None),
        (orjson.dumps(_too_many()), {}, 413, "size_violation", "the batch has 4 events", None),
        (b"[" + b" " * 2500 + b"]", {}, 413, "size_violation", "the limit is 2000", None),
        (BOMB, {"content-encoding": "gzip"}, 413, "size_violation", "inflates past", None),
    ],
    ids=[
        "not-json",
        "broken-gzip",
        "gzip-not-json",
        "empty-batch",
        "content-type",
        "encoding",
        "too-many-events",
        "body-too-large",
        "gzip-bomb",
    ],
)
async def test_a_refused_body_is_answered_with_its_reason_and_dead_lettered_whole(
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    headers: dict[str, str],
    status: int,
    reason: str,
    detail: str,
    kept: bytes | None,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch, **LIMITS)) as c:
        resp = await c.post(body, **{"x-request-id": "req-refused", **headers})
        assert resp.status_code == status, resp.text
        answer = resp.json()
        assert answer["reason"] == reason and answer["request_id"] == "req-refused"
        assert detail in answer["detail"]
        assert c.raw == []
        [dead] = c.dead_letters
        assert dead.failure_type == reason and dead.stage == "collector"
        assert [(e.field, e.reason) for e in dead.errors] == [("/", answer["detail"])]
        assert dead.metadata["request_id"] == "req-refused"
        expected = body if kept is None else kept
        assert dead.metadata["body_bytes"] == len(expected)
        assert dead.metadata["truncated"] is (len(expected) > LIMITS["max_event_bytes"])
        assert dead.original.to_bytes() == expected[: LIMITS["max_event_bytes"]]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong-key"}, 401),
        ({"authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"x-api-key": "wrong-key"}, 401),
        ({"authorization": f"Bearer {READ_ONLY_KEY}"}, 403),
        ({"x-api-key": READ_ONLY_KEY}, 403),
    ],
)
async def test_a_caller_without_a_write_key_is_refused_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], status: int
) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(event(), key=None, **headers)
        assert resp.status_code == status
        if status == 401:
            assert resp.headers["www-authenticate"] == "Bearer"
            assert "API key" in resp.json()["detail"]
        else:
            assert resp.json() == {"detail": "producer 'dashboard' may not send events"}
        assert c.kafka.messages == [], "a refused caller's event reached Kafka"


async def test_the_x_api_key_header_authenticates_too(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(event(), key=None, **{"x-api-key": WRITE_KEY})
        assert resp.status_code == 202
        assert c.raw[0].json()["collector"]["producer"] == "test-producer"


async def test_with_auth_disabled_events_are_from_the_anonymous_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch, auth_disabled=True)) as c:
        assert (await c.post(event(), key=None)).status_code == 202
        assert c.raw[0].json()["collector"]["producer"] == "anonymous"


async def test_a_trusted_proxy_names_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = collector_settings(monkeypatch, trusted_proxies=["10.0.0.0/8"])
    async with in_process_collector(settings, client=("10.0.0.5", 40000)) as c:
        await c.post(event(), **{"x-forwarded-for": "192.0.2.1, 203.0.113.9"})
        assert c.raw[0].json()["collector"]["client_ip"] == "203.0.113.9"


async def test_refused_deliveries_are_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch, retry_after_s=7)) as c:
        c.kafka.refuse = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
        resp = await c.post([event(), event()])
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "7"
        assert "Kafka refused 2 message(s)" in resp.json()["detail"]


async def test_an_unconfirmed_request_is_503_after_the_delivery_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch, delivery_timeout_s=0.2)) as c:
        c.kafka.hold = True
        resp = await c.post(event())
        assert resp.status_code == 503
        assert "did not confirm" in resp.json()["detail"]


async def test_a_full_producer_queue_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        c.kafka.queue_full = True
        resp = await c.post(event())
        assert resp.status_code == 503
        assert "queue is full" in resp.json()["detail"]


async def test_kafka_down_fails_fast_and_readiness_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        assert (await c.http.get("/healthz")).json() == {"status": "ok"}
        ready = await c.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "kafka": "reachable",
            "topics": {c.settings.topics.raw: True, c.settings.topics.collector_dlq: True},
        }

        c.kafka.brokers_up = False
        assert c.kafka.error_cb is not None
        c.kafka.error_cb(KafkaError(KafkaError._ALL_BROKERS_DOWN))
        resp = await c.post(event())
        assert resp.status_code == 503 and resp.headers["retry-after"] == "2"
        assert c.kafka.messages == []
        down = await c.http.get("/readyz")
        assert down.status_code == 503 and down.json()["status"] == "unavailable"
        assert (await c.http.get("/healthz")).status_code == 200, "alive while Kafka is down"

        c.kafka.brokers_up = True
        assert (await c.http.get("/readyz")).status_code == 200
        assert (await c.post(event())).status_code == 202


async def test_readiness_needs_both_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        c.kafka.topics.discard(c.settings.topics.collector_dlq)
        ready = await c.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["topics"] == {
            c.settings.topics.raw: True,
            c.settings.topics.collector_dlq: False,
        }
