"""The collector over HTTP, against real Kafka: statuses, routing, metadata, limits."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from tests.ingestion.collector_helpers import (
    READ_ONLY_KEY,
    WRITE_KEY,
    CollectorProcess,
    Topics,
    event,
)

pytestmark = pytest.mark.integration


def test_one_valid_event_is_accepted_with_metadata(
    collector: CollectorProcess, topics: Topics
) -> None:
    e = event()
    resp = collector.post(
        e,
        **{"user-agent": "tests/1.0", "x-request-id": "req-123", "x-forwarded-for": "203.0.113.7"},
    )
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"request_id": "req-123", "accepted": 1, "rejected": 0}
    [message] = topics.raw_messages(1)
    assert message.key() == b"user_id:u-1"
    record = orjson.loads(message.value() or b"")
    assert {k: v for k, v in record.items() if k != "collector"} == e
    meta = record["collector"]
    assert meta["producer"] == "test-producer"
    assert meta["request_id"] == "req-123"
    assert meta["user_agent"] == "tests/1.0"
    assert meta["client_ip"] == "203.0.113.7", "X-Forwarded-For from a trusted proxy is honoured"
    assert meta["path"] == "rest"
    assert meta["collector_id"]
    received = datetime.fromisoformat(meta["received_at"])
    assert abs(received - datetime.now(UTC)) < timedelta(seconds=30)
    assert topics.dlq(0) == []


def test_a_mixed_batch_gets_per_event_statuses(collector: CollectorProcess, topics: Topics) -> None:
    good = [event(), event(), event()]
    bad = event(event_id="nope")
    unknown = event(event_type="iglu:com.tributary.shop/refund/jsonschema/1-0-0")
    resp = collector.post([good[0], bad, good[1], unknown, good[2]])
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (3, 2)
    statuses = {e["index"]: e for e in body["events"]}
    assert [statuses[i]["status"] for i in range(5)] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "accepted",
    ]
    assert statuses[1]["reason"] == "envelope_violation"
    assert statuses[1]["errors"][0]["field"] == "/event_id"
    assert statuses[3]["reason"] == "unknown_schema"
    assert {r["event_id"] for r in topics.raw(3)} == {g["event_id"] for g in good}
    dead = topics.dlq(2)
    assert sorted(d["failure_type"] for d in dead) == ["envelope_violation", "unknown_schema"]
    for d in dead:
        assert d["stage"] == "collector"
        assert d["original"]["encoding"] == "json"
        assert d["metadata"]["producer"] == "test-producer"
    by_type = {d["failure_type"]: d for d in dead}
    assert by_type["unknown_schema"]["original"]["data"] == unknown
    assert by_type["unknown_schema"]["event_id"] == unknown["event_id"]


def test_a_batch_of_only_bad_events_is_400_and_dead_lettered(
    collector: CollectorProcess, topics: Topics
) -> None:
    resp = collector.post([event(source=""), event(payload=[])])
    assert resp.status_code == 400
    assert resp.json()["rejected"] == 2
    assert len(topics.dlq(2)) == 2


def test_gzip_batches_are_accepted(collector: CollectorProcess, topics: Topics) -> None:
    batch = [event() for _ in range(50)]
    resp = httpx.post(
        f"{collector.url}/v1/events",
        content=gzip.compress(orjson.dumps(batch)),
        headers={
            "content-type": "application/json",
            "content-encoding": "gzip",
            "authorization": f"Bearer {WRITE_KEY}",
        },
    )
    assert resp.status_code == 202, resp.text
    assert {r["event_id"] for r in topics.raw(50)} == {e["event_id"] for e in batch}


def _post_raw(collector: CollectorProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{collector.url}/v1/events",
        content=body,
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {WRITE_KEY}",
            **headers,
        },
        timeout=30,
    )


def test_a_body_that_is_not_json_is_400_and_still_dead_lettered(
    collector: CollectorProcess, topics: Topics
) -> None:
    body = b"\x00\xffthis is not json"
    resp = _post_raw(collector, body)
    assert resp.status_code == 400
    assert resp.json()["reason"] == "malformed"
    [dead] = topics.dlq(1)
    assert dead["failure_type"] == "malformed"
    assert dead["original"] == {"encoding": "base64", "data": base64.b64encode(body).decode()}
    assert "not valid JSON" in dead["errors"][0]["reason"]


def test_broken_gzip_is_400(collector: CollectorProcess, topics: Topics) -> None:
    resp = _post_raw(collector, b"not gzip at all", **{"content-encoding": "gzip"})
    assert resp.status_code == 400
    assert "gzip" in resp.json()["detail"]
    assert topics.dlq(1)[0]["failure_type"] == "malformed"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"authorization": ""}, 401),
        ({"authorization": "Bearer wrong-key"}, 401),
        ({"authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"authorization": f"Bearer {READ_ONLY_KEY}"}, 403),
    ],
)
def test_authentication(
    collector: CollectorProcess, topics: Topics, headers: dict[str, str], status: int
) -> None:
    resp = _post_raw(collector, orjson.dumps(event()), **headers)
    assert resp.status_code == status
    if status == 401:
        assert resp.headers["www-authenticate"] == "Bearer"
    assert topics.raw(0) == [], "an unauthenticated event reached the raw topic"


def test_x_api_key_header_also_authenticates(collector: CollectorProcess) -> None:
    resp = httpx.post(
        f"{collector.url}/v1/events",
        content=orjson.dumps(event()),
        headers={"content-type": "application/json", "x-api-key": WRITE_KEY},
    )
    assert resp.status_code == 202


def test_wrong_content_type_is_415(collector: CollectorProcess, topics: Topics) -> None:
    resp = _post_raw(collector, orjson.dumps(event()), **{"content-type": "application/xml"})
    assert resp.status_code == 415
    assert topics.dlq(1)[0]["failure_type"] == "malformed"


def test_unknown_content_encoding_is_415(collector: CollectorProcess) -> None:
    resp = _post_raw(collector, orjson.dumps(event()), **{"content-encoding": "br"})
    assert resp.status_code == 415


def test_too_many_events_is_413(collector: CollectorProcess, topics: Topics) -> None:
    resp = collector.post([event() for _ in range(1001)])
    assert resp.status_code == 413
    assert "1001 events" in resp.json()["detail"]
    [dead] = topics.dlq(1)
    assert dead["failure_type"] == "size_violation"
    assert dead["metadata"]["truncated"] is True


def test_an_oversized_event_is_refused_but_its_batch_mates_are_not(
    collector: CollectorProcess, topics: Topics
) -> None:
    big = event(payload={"page_url": "https://shop.example.com/", "page_title": "x" * 70_000})
    ok = event()
    resp = collector.post([big, ok])
    assert resp.status_code == 207
    statuses = resp.json()["events"]
    assert statuses[0]["reason"] == "size_violation"
    assert [r["event_id"] for r in topics.raw(1)] == [ok["event_id"]]


def test_a_body_over_the_limit_is_413(collector: CollectorProcess, topics: Topics) -> None:
    resp = _post_raw(collector, b"[" + b" " * (6 * 1024 * 1024) + b"]")
    assert resp.status_code == 413
    assert topics.dlq(1)[0]["failure_type"] == "size_violation"


def test_a_gzip_bomb_is_413(collector: CollectorProcess) -> None:
    bomb = gzip.compress(b"[" + b" " * (50 * 1024 * 1024) + b"]")
    assert len(bomb) < 100_000
    resp = _post_raw(collector, bomb, **{"content-encoding": "gzip"})
    assert resp.status_code == 413


def test_client_ip_is_the_peer_when_no_proxy_header(
    collector: CollectorProcess, topics: Topics
) -> None:
    assert collector.post(event()).status_code == 202
    assert topics.raw(1)[0]["collector"]["client_ip"] == "127.0.0.1"


def test_operations_endpoints(collector: CollectorProcess) -> None:
    assert httpx.get(f"{collector.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{collector.url}/readyz")
    assert ready.status_code == 200
    assert all(ready.json()["topics"].values())
    collector.post([event(), event(event_id="bad")])
    text = httpx.get(f"{collector.url}/metrics").text
    assert 'tributary_collector_events_accepted_total{path="rest"}' in text
    assert (
        'tributary_collector_events_rejected_total{path="rest",reason="envelope_violation"}' in text
    )
    assert "tributary_collector_kafka_delivery_seconds_bucket" in text
    spec = httpx.get(f"{collector.url}/openapi.json").json()
    post = spec["paths"]["/v1/events"]["post"]
    assert {"202", "207", "400", "401", "403", "413", "415", "503"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["examples"]


def test_a_gzip_body_that_is_not_json_is_dead_lettered_inflated(
    collector: CollectorProcess, topics: Topics
) -> None:
    resp = _post_raw(collector, gzip.compress(b"{broken json"), **{"content-encoding": "gzip"})
    assert resp.status_code == 400
    [dead] = topics.dlq(1)
    assert base64.b64decode(dead["original"]["data"]) == b"{broken json"


@pytest.mark.parametrize("levels", [300, 10_000])
def test_a_deeply_nested_body_is_400_malformed_and_dead_lettered(
    collector: CollectorProcess, topics: Topics, levels: int
) -> None:
    body = b'{"a":' * levels + b"1" + b"}" * levels
    resp = _post_raw(collector, body, **{"x-request-id": f"deep-{levels}"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["reason"] == "malformed"
    assert "nested more than 32 levels deep" in resp.json()["detail"]
    [message] = topics.dlq_messages(1)
    assert message.key() == f"request_id:deep-{levels}".encode()
    dead = orjson.loads(message.value() or b"")
    assert dead["failure_type"] == "malformed"
    assert base64.b64decode(dead["original"]["data"]) == body[: 64 * 1024]
