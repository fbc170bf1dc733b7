"""``POST /v1/events`` answered before FastAPI and through FastAPI's route: the same answers.

The collector's application answers that request itself (``events_endpoint``), ahead of
FastAPI's routing and dependencies; the FastAPI route stays, for the OpenAPI document. Each
request below goes to both, and the status, the answer, the headers that matter and what
reaches Kafka must be the same.
"""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from ingestion.api.routes import events as events_module
from tests.ingestion.collector_helpers import READ_ONLY_KEY, WRITE_KEY, event
from tests.ingestion.inprocess_helpers import (
    InProcessCollector,
    collector_settings,
    in_process_collector,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

LIMITS = {"max_batch_events": 3, "max_event_bytes": 600, "max_body_bytes": 2000}
UNKNOWN = "iglu:com.tributary.shop/refund/jsonschema/1-0-0"

REQUESTS: dict[str, tuple[bytes, dict[str, str], str | None]] = {
    "one event": (orjson.dumps(event()), {}, WRITE_KEY),
    "a batch": (orjson.dumps([event(), event()]), {}, WRITE_KEY),
    "a mixed batch": (
        orjson.dumps([event(), event(event_type=UNKNOWN), {"event_id": 3}]),
        {},
        WRITE_KEY,
    ),
    "only bad events": (orjson.dumps([event(source=""), 7]), {}, WRITE_KEY),
    "an upper-case UUID": (
        orjson.dumps(event(event_id="5B4C8A8E-2B7E-4C7E-9D1A-2F0B0F3C4A11")),
        {},
        WRITE_KEY,
    ),
    "too many events": (orjson.dumps([event()] * 4), {}, WRITE_KEY),
    "a body too large": (b"[" + b" " * 2100 + b"]", {}, WRITE_KEY),
    "not JSON": (b"{nope", {}, WRITE_KEY),
    "nested too deep": (b"[" * 40 + b"]" * 40, {}, WRITE_KEY),
    "an empty batch": (b"[]", {}, WRITE_KEY),
    "text/plain": (orjson.dumps(event()), {"content-type": "text/plain"}, WRITE_KEY),
    "gzip": (gzip.compress(orjson.dumps(event())), {"content-encoding": "gzip"}, WRITE_KEY),
    "broken gzip": (b"\x1f\x8bnope", {"content-encoding": "gzip"}, WRITE_KEY),
    "brotli": (orjson.dumps(event()), {"content-encoding": "br"}, WRITE_KEY),
    "no key": (orjson.dumps(event()), {}, None),
    "a wrong key": (orjson.dumps(event()), {}, "trib_wrong"),
    "a read-only key": (orjson.dumps(event()), {}, READ_ONLY_KEY),
    "the X-API-Key header": (orjson.dumps(event()), {"x-api-key": WRITE_KEY}, None),
    "a forwarded client": (
        orjson.dumps(event()),
        {"x-forwarded-for": "203.0.113.9, 10.0.0.1", "user-agent": "tests/2"},
        WRITE_KEY,
    ),
}


def _answer(c: InProcessCollector, status: int, body: bytes, headers: Any) -> dict[str, Any]:
    """What must agree: the answer, its headers, and every message with its key."""

    def message(value: bytes) -> Any:
        record = orjson.loads(value)
        for part in (record, record.get("collector") or {}, record.get("metadata") or {}):
            part.pop("received_at", None)
            part.pop("failed_at", None)
        return record

    return {
        "status": status,
        "body": orjson.loads(body),
        "headers": {
            name: headers.get(name) for name in ("content-type", "www-authenticate", "retry-after")
        },
        "messages": [(m.topic, m.key, message(m.value)) for m in c.kafka.messages],
    }


async def _send(
    monkeypatch: pytest.MonkeyPatch,
    through_fastapi: bool,
    name: str,
    refuse: bool = False,
    **options: Any,
) -> dict[str, Any]:
    body, headers, key = REQUESTS[name]
    settings = collector_settings(
        monkeypatch, instance_id="c-1", trusted_proxies=["10.0.0.0/8"], **LIMITS, **options
    )
    async with in_process_collector(
        settings, ("10.0.0.2", 4000), through_fastapi=through_fastapi
    ) as c:
        if refuse:
            c.kafka.refuse = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
        resp = await c.post(body, key, **{"x-request-id": "req-1", **headers})
        return _answer(c, resp.status_code, resp.content, resp.headers)


@pytest.mark.parametrize("name", sorted(REQUESTS))
async def test_the_endpoint_answers_as_the_fastapi_route(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fast = await _send(monkeypatch, False, name)
    routed = await _send(monkeypatch, True, name)
    assert fast == routed
    assert fast["status"] < 500


async def test_a_refused_delivery_is_the_same_503_on_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = await _send(monkeypatch, False, "a batch", refuse=True, retry_after_s=9)
    routed = await _send(monkeypatch, True, "a batch", refuse=True, retry_after_s=9)
    assert fast == routed
    assert fast["status"] == 503
    assert fast["headers"]["retry-after"] == "9"


async def test_post_v1_events_does_not_go_through_fastapi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The application hands the request to the bare endpoint, and other requests on."""
    calls: list[str] = []
    endpoint = events_module.events_endpoint

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await endpoint(scope, receive, send)

    monkeypatch.setattr(events_module, "events_endpoint", counted)
    async with in_process_collector(collector_settings(monkeypatch)) as c:
        assert (await c.post(event())).status_code == 202
        assert (await c.http.get("/v1/events")).status_code == 405
        assert (await c.http.get("/healthz")).status_code == 200
    assert calls == ["/v1/events"]
