"""The enricher's client of the enrichment API: what it sends, how it reads the answer, and
how it splices the enrichment into the record.

Pure logic: the API is an ``httpx.MockTransport`` that records the request. The API's own
NDJSON answer is tested against the real server in ``tests/enrichment/test_api.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from enrichment import MODEL_VERSION_HEADER, NDJSON
from streaming.enricher import EnricherOptions, EnrichmentClient, EnrichmentUnavailable, enriched
from tests.streaming.test_enricher import raw_records


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
    out = enriched(value, record, ENRICHMENT, LINEAGE)
    assert orjson.loads(out) == {
        **record,
        "enrichment": orjson.loads(ENRICHMENT),
        "lineage": LINEAGE,
    }
    assert out.count(b'"enrichment"') == 1 and out.startswith(value.rstrip()[:-1])


@pytest.mark.parametrize("key", ["enrichment", "lineage"])
def test_a_record_that_already_has_the_key_gets_it_once_replaced(key: str) -> None:
    value = orjson.dumps({"event_id": "e-1", key: {"stale": True}})
    out = enriched(value, orjson.loads(value), ENRICHMENT, LINEAGE)
    assert out.count(f'"{key}"'.encode()) == 1
    assert orjson.loads(out) == {
        "event_id": "e-1",
        "enrichment": orjson.loads(ENRICHMENT),
        "lineage": LINEAGE,
    }
