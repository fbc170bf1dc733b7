"""The enricher's work on each record: reading and validating it, the enrichment API call
(what it sends, how it reads the answer), and splicing the enrichment into the record.

Pure logic: the API is an ``httpx.MockTransport`` that records the request. The API's own
NDJSON answer is tested against the real server in ``tests/enrichment/test_api.py``, the
whole loop on a real Kafka in ``test_enricher.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from contract.enrichment import MODEL_VERSION_HEADER, NDJSON
from contract.failures import FailedEvent
from contract.registry import SchemaRegistry
from streaming.enricher import (
    EnricherOptions,
    EnrichmentClient,
    EnrichmentUnavailable,
    enriched,
    read_raw_record,
    validate,
)
from tests.streaming.enricher_helpers import FakeMessage, raw_records

pytestmark = pytest.mark.unit


def client_of(handle: Callable[[httpx.Request], httpx.Response]) -> EnrichmentClient:
    client = EnrichmentClient(EnricherOptions())
    client.http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(handle))
    return client


def ndjson_answer(status: int, seen: list[httpx.Request]) -> EnrichmentClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        events = orjson.loads(request.content)["events"]
        lines = b"\n".join(orjson.dumps({"scores": {"n": i}}) for i, _ in enumerate(events))
        headers = {"content-type": NDJSON, MODEL_VERSION_HEADER: "m-1.0.0"}
        return httpx.Response(status, content=lines, headers=headers)

    return client_of(handle)


def test_the_raw_records_are_sent_as_they_are_and_each_line_answers_one() -> None:
    values, _, _ = raw_records(50, bad_share=0.0)
    seen: list[httpx.Request] = []
    enrichments, version = ndjson_answer(200, seen).enrich(values)
    assert version == "m-1.0.0"
    assert [orjson.loads(e) for e in enrichments] == [{"scores": {"n": i}} for i in range(50)]
    request = seen[0]
    assert request.headers["accept"] == NDJSON
    # The API reads what it needs of each record (its model ignores the rest), so the record
    # is sent whole and no field the API reads can be forgotten here.
    assert orjson.loads(request.content)["events"] == [orjson.loads(v) for v in values]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b"{}", headers={"content-type": NDJSON}),  # 1 line for 2
        httpx.Response(200, json={"model_version": "m", "results": []}),  # not NDJSON
    ],
)
def test_an_answer_for_a_different_batch_is_refused(answer: httpx.Response) -> None:
    values, _, _ = raw_records(2, bad_share=0.0)
    with pytest.raises(EnrichmentUnavailable):
        client_of(lambda _: answer).enrich(values)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_transient_answer_raises_unavailable_and_counts_towards_the_breaker(status: int) -> None:
    values, _, _ = raw_records(5, bad_share=0.0)
    client = ndjson_answer(status, [])
    with pytest.raises(EnrichmentUnavailable):
        client.enrich(values)
    assert client.breaker.consecutive == 1


LINEAGE = {"enricher_version": "1.0.0", "source_offset": 7, "model_version": None}
ENRICHMENT = orjson.dumps({"geo": None, "money": [], "scores": {"bot_probability": 0.25}})


@pytest.mark.parametrize(
    "value",
    [
        b'{"event_id":"e-1","payload":{"a":[1,{"b":"}"}]}}',
        b'  {"event_id" : "e-1", "payload": {"a": [1, {"b": "}"}]}} \n\t',  # spacing kept
        '{"event_id":"e-1","payload":{"name":"caf\\u00e9 ☕"}}'.encode(),
    ],
)
def test_the_enrichment_is_spliced_into_the_record_unchanged(value: bytes) -> None:
    record = orjson.loads(value)
    out = enriched(value, read_raw_record(value), ENRICHMENT, LINEAGE)
    assert orjson.loads(out) == {
        **record,
        "enrichment": orjson.loads(ENRICHMENT),
        "lineage": LINEAGE,
    }
    assert out.count(b'"enrichment"') == 1 and out.startswith(value.rstrip()[:-1])


@pytest.mark.parametrize("key", ["enrichment", "lineage"])
def test_a_record_that_already_has_the_key_gets_it_once_replaced(key: str) -> None:
    value = orjson.dumps({"event_id": "e-1", key: {"stale": True}})
    out = enriched(value, read_raw_record(value), ENRICHMENT, LINEAGE)
    assert out.count(f'"{key}"'.encode()) == 1
    assert orjson.loads(out) == {
        "event_id": "e-1",
        "enrichment": orjson.loads(ENRICHMENT),
        "lineage": LINEAGE,
    }


PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"


def test_validate_keeps_valid_records_and_dead_letters_the_rest_with_their_reason() -> None:
    good, _, _ = raw_records(1, bad_share=0.0)
    bad_payload = orjson.dumps({"event_id": "v", "event_type": PAGE_VIEW, "payload": {"x": 1}})
    values = [
        good[0],
        b"\xff not json",
        b"[1, 2]",  # JSON, not an object
        b'{"event_id": "t", "event_type": "x", "payload": {}} trailing',
        orjson.dumps({"event_id": "u", "event_type": "iglu:x/y/jsonschema/1-0-0", "payload": {}}),
        orjson.dumps({"event_id": "n", "payload": {}}),  # no event type
        bad_payload,
    ]
    messages = [FakeMessage(0, i, v) for i, v in enumerate(values)]
    valid, outcome = validate(messages, SchemaRegistry.from_directory())  # type: ignore[arg-type]

    assert [(m.offset(), raw.payload) for m, raw, _ in valid] == [
        (0, orjson.loads(good[0])["payload"])
    ]
    dead = [FailedEvent.model_validate_json(v) for _, v in outcome.dead]
    assert [(d.metadata["source_offset"], d.failure_type) for d in dead] == [
        (1, "malformed"),
        (2, "malformed"),
        (3, "malformed"),
        (4, "unknown_schema"),
        (5, "unknown_schema"),
        (6, "schema_violation"),
    ]
    assert dead[1].errors[0].reason == "Expected `object`, got `array`"
    # The original is kept as JSON when it parses, else as its bytes.
    assert dead[0].original.encoding == "base64" and dead[1].original.data == [1, 2]
    assert dead[3].event_id == "u" and dead[3].original.data["event_id"] == "u"
    assert dead[4].errors[0].field == "/event_type"
    assert dead[5].event_id == "v" and {e.field for e in dead[5].errors} >= {"/payload/page_url"}
    assert outcome.reasons == {"malformed": 3, "unknown_schema": 2, "schema_violation": 1}
