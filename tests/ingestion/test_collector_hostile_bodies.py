"""Hostile bodies, in process: each one a 4xx and a dead letter, never a 5xx.

Deep nesting, content types, huge numbers, and the keys the dead letters carry. The real
collector process gets the same bodies in ``test_collector_fuzz.py`` and
``test_collector_openapi.py``.
"""

from __future__ import annotations

import json

import orjson
import pytest

from contract.failures import FailureType
from tests.ingestion.collector_helpers import event
from tests.ingestion.inprocess_helpers import collector_settings, in_process_collector

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

EVENT_LIMIT = 64 * 1024


def nested(levels: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * levels + b"]" * levels
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def payload_nested(levels: int) -> dict[str, object]:
    """A payload object ``levels`` deep (so the event is one more)."""
    value: dict[str, object] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("levels", [300, 600, 1_000, 5_000, 10_000])
@pytest.mark.parametrize("kind", ["array", "object"])
async def test_a_deeply_nested_body_is_400_malformed_and_dead_lettered_truncated(
    monkeypatch: pytest.MonkeyPatch, levels: int, kind: str
) -> None:
    body = nested(levels, kind)
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(body, **{"x-request-id": "req-deep"})
        assert resp.status_code == 400, resp.text
        answer = resp.json()
        assert answer["reason"] == "malformed" and answer["request_id"] == "req-deep"
        assert "nested more than" in answer["detail"] and "32" in answer["detail"]
        assert c.raw == []
        [dead] = c.dead_letters
        assert dead.failure_type is FailureType.MALFORMED
        assert [(e.field, e.reason) for e in dead.errors] == [("/", answer["detail"])]
        assert dead.original.encoding == "base64"
        assert dead.original.to_bytes() == body[:EVENT_LIMIT]
        assert dead.metadata["truncated"] is (len(body) > EVENT_LIMIT)
        [message] = c.kafka.on(c.settings.topics.collector_dlq)
        assert message.key == b"request_id:req-deep"


async def test_a_valid_event_with_a_payload_nested_301_deep_is_refused_not_a_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deep = event(payload=payload_nested(301))
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        for body in (deep, [event(), deep]):
            resp = await c.post(json.dumps(body).encode())  # orjson writes 254 levels at most
            assert resp.status_code == 400, resp.text
            assert resp.json()["reason"] == "malformed"
        assert c.raw == []
        assert [d.failure_type for d in c.dead_letters] == [FailureType.MALFORMED] * 2
        assert "one more for the batch's array" in c.dead_letters[1].errors[0].reason


@pytest.mark.parametrize(("depth", "limit", "accepted"), [(32, 32, True), (33, 32, False)])
async def test_events_nest_up_to_the_platform_limit(
    monkeypatch: pytest.MonkeyPatch, depth: int, limit: int, accepted: bool
) -> None:
    settings = collector_settings(monkeypatch)
    assert settings.max_json_depth == limit
    at = event(payload=payload_nested(depth - 1))
    async with in_process_collector(settings) as c:
        single = await c.post(at)
        batch = await c.post([event(), at])
        assert (single.status_code, batch.status_code) == ((202, 202) if accepted else (400, 400))
        assert len(c.raw) == (3 if accepted else 0)


async def test_the_limit_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_MAX_JSON_DEPTH", "8")
    settings = collector_settings(monkeypatch)
    async with in_process_collector(settings) as c:
        assert (await c.post(event(payload=payload_nested(7)))).status_code == 202
        refused = await c.post(event(payload=payload_nested(8)))
        assert refused.status_code == 400 and "more than 8 levels" in refused.json()["detail"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain; charset=utf-8", "application/xml", ""]
)
async def test_only_application_json_is_accepted(
    monkeypatch: pytest.MonkeyPatch, content_type: str
) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(event(), **{"content-type": content_type})
        assert resp.status_code == 415, resp.text
        assert resp.json()["reason"] == "malformed"
        assert c.raw == []
        [dead] = c.dead_letters
        assert "content type must be application/json" in dead.errors[0].reason
        ok = await c.post(event(), **{"content-type": "application/json; charset=utf-8"})
        assert ok.status_code == 202


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # Beyond a double: not a JSON number any stage could keep.
        (b'{"event_id": 1e400}', 400),
        (b"[" + b"1" * 400 + b"]", 400),
        # Past 64 bits but within a double: kept as a number, the event judged on its fields.
        (b'{"payload": {"n": 18446744073709551616}}', 400),
        (b"-" + b"9" * 30, 400),
    ],
)
async def test_huge_numbers_are_a_4xx_and_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, body: bytes, status: int
) -> None:
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(body)
        assert resp.status_code == status, resp.text
        assert c.raw == [] and len(c.dead_letters) == 1


async def test_a_huge_number_in_a_valid_payload_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The standard library writes integers of any size; orjson reads them as doubles.
    body = json.dumps(event(payload={"page_url": "https://shop.example.com/", "n": 10**29}))
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(body.encode())
        assert resp.status_code == 202, resp.text
        [record] = c.raw
        assert record.json()["payload"]["n"] == 1e29


async def test_a_very_long_string_is_a_size_violation_kept_at_the_event_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    long = event(source="s" * 1_000_000)
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post([long, event()])
        assert resp.status_code == 207, resp.text
        assert resp.json()["events"][0]["reason"] == "size_violation"
        [dead] = c.dead_letters
        assert len(dead.original.to_bytes()) == EVENT_LIMIT


async def test_dead_letters_are_keyed_like_the_raw_topic_else_by_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = event(event_id="not-a-uuid", context={"user_id": "u-7", "session_id": "s-1"})
    session = event(event_type="iglu:x/y/jsonschema/1-0-0", context={"session_id": "s-2"})
    anonymous = event(source="", context=None)
    nameless = {"payload": {}, "context": {"user_id": 42}}
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post([user, session, anonymous, nameless], **{"x-request-id": "r-1"})
        assert resp.status_code == 400
        keys = [m.key for m in c.kafka.on(c.settings.topics.collector_dlq)]
        assert keys == [
            b"user_id:u-7",
            b"session_id:s-2",
            f"event_id:{anonymous['event_id']}".encode(),
            b"request_id:r-1",  # no identity the envelope would accept
        ]
        await c.post(b"{not json", **{"x-request-id": "r-2"})
        assert c.kafka.on(c.settings.topics.collector_dlq)[-1].key == b"request_id:r-2"


@pytest.mark.parametrize("field_name", ["event_id", "event_type"])
async def test_a_dead_letter_carries_no_identifier_larger_than_the_envelope_allows(
    monkeypatch: pytest.MonkeyPatch, field_name: str
) -> None:
    # A 3 MB identifier: copied into its dead letter, Kafka (2 MiB messages) refused it: a 503
    # the producer retried for ever, and the event was never dead-lettered.
    huge = event(**{field_name: "é" * 1_500_000})
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        resp = await c.post(huge)
        assert resp.status_code == 400, resp.text[:300]
        [status] = resp.json()["events"]
        assert status["reason"] == "size_violation"
        assert len(resp.content) < 1000
        [message] = c.kafka.on(c.settings.topics.collector_dlq)
        assert len(message.value) < 2 * EVENT_LIMIT
        [dead] = c.dead_letters
        assert getattr(dead, field_name) is None
        assert dead.original.to_bytes() == orjson.dumps(huge)[:EVENT_LIMIT]
