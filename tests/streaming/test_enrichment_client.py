"""The enricher's client of the enrichment API: what it sends, and how it reads the answer.

Pure logic: the API is an ``httpx.MockTransport`` that records the request.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from enrichment.service import CollectorIn, EventIn
from streaming.enricher import EnricherOptions, EnrichmentClient, EnrichmentUnavailable
from tests.streaming.test_enricher import raw_records


def client_answering(status: int, seen: list[dict[str, Any]]) -> EnrichmentClient:
    def handle(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        seen.append(body)
        results = [
            {"event_id": e["event_id"], "enrichment": {"scores": {}}} for e in body["events"]
        ]
        return httpx.Response(status, json={"model_version": "m-1.0.0", "results": results})

    client = EnrichmentClient(EnricherOptions())
    client.http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(handle))
    return client


def test_every_field_the_api_reads_is_sent_with_the_records_values() -> None:
    values, _, _ = raw_records(50, bad_share=0.0)
    records = [orjson.loads(v) for v in values]
    seen: list[dict[str, Any]] = []
    enrichments, version = client_answering(200, seen).enrich(records)
    assert version == "m-1.0.0" and len(enrichments) == len(records)
    sent = seen[0]["events"]
    for record, event in zip(records, sent, strict=True):
        # Every field of the API's model, so a field added there cannot be forgotten here
        # (the event time feeds the model's session timing: without it, serving saw other
        # features than training).
        assert set(event) == set(EventIn.model_fields), set(EventIn.model_fields) ^ set(event)
        for name in EventIn.model_fields:
            if name != "collector":
                assert event[name] == record.get(name), name
        assert event["event_timestamp"]
        assert event["collector"] == {
            name: record["collector"].get(name) for name in CollectorIn.model_fields
        }


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_transient_answer_raises_unavailable_and_counts_towards_the_breaker(status: int) -> None:
    values, _, _ = raw_records(5, bad_share=0.0)
    client = client_answering(status, [])
    with pytest.raises(EnrichmentUnavailable):
        client.enrich([orjson.loads(v) for v in values])
    assert client.breaker.consecutive == 1
