from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import httpx
import orjson
import pytest

from contract.enrichment import MODEL_VERSION_HEADER, NDJSON
from contract.records import Enrichment
from enrichment.service import EnrichResponse
from simulator.events import ClickstreamSource
from stack.private import free_port

pytestmark = pytest.mark.integration

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _serve(env_extra: dict[str, str]) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TRIBUTARY_ENRICHMENT__PORT": str(port), **env_extra}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "enrichment.api:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the enrichment API did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve({"TRIBUTARY_ENRICHMENT__MAX_BATCH_EVENTS": "500"})


def _event(n: int, **over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"e-{n}",
        "event_type": "iglu:com.tributary.shop/product_view/jsonschema/1-0-0",
        "payload": {"product_id": "SKU-1", "price": 108.0, "currency": "USD"},
        "context": {"session_id": "s-1"},
        "collector": {"client_ip": "8.8.8.8", "user_agent": GOOGLEBOT, "producer": "p"},
    }
    event.update(over)
    return event


def test_healthz_and_metrics(server: str) -> None:
    health = httpx.get(f"{server}/healthz").json()
    assert health == {"status": "ok", "model_version": "bot_score-1.0.0"}
    httpx.post(f"{server}/v1/enrich", json={"events": [_event(0)]})
    text = httpx.get(f"{server}/metrics").text
    assert "tributary_enrichment_events_total" in text
    assert "tributary_enrichment_batch_seconds_bucket" in text
    assert 'tributary_enrichment_requests_total{status="200"}' in text


def test_batch_with_odd_inputs(server: str) -> None:
    events = [
        _event(0),
        _event(1, collector={"client_ip": None, "user_agent": None}),  # nothing known
        _event(2, collector=None, context=None),
        _event(3, payload={"price": 5, "currency": "XYZ"}),  # unknown currency
        _event(4, collector={"client_ip": "10.0.0.7", "user_agent": "curl/8.5.0"}),
        _event(5, collector={"client_ip": "garbage", "user_agent": ""}),
        _event(6, extra_field=1, payload={}),
        _event(7, collector={"client_ip": None, "user_agent": "Mozilla/5.0 " + "x" * 9000}),
    ]
    r = httpx.post(f"{server}/v1/enrich", json={"events": events})
    assert r.status_code == 200, r.text
    body = r.json()
    # The answer is assembled as plain JSON: it must still be exactly the documented model
    # (Enrichment forbids extra fields) and dump back to the same JSON.
    model = EnrichResponse.model_validate_json(r.content)
    assert model.model_dump(mode="json") == body
    assert body["model_version"] == "bot_score-1.0.0"
    results = body["results"]
    assert [x["event_id"] for x in results] == [f"e-{i}" for i in range(8)]
    e = [x["enrichment"] for x in results]
    assert all(x["model_version"] == "bot_score-1.0.0" for x in e)
    assert all(0 <= x["scores"]["bot_probability"] <= 1 for x in e)
    assert e[0]["user_agent"]["is_bot"] and e[0]["geo"]["country_code"] == "US"
    assert e[0]["money"] == [
        {
            "field": "/price",
            "amount": 108.0,
            "currency": "USD",
            "amount_eur": 100.0,
            "rates_version": "eur-ref-2026.1",
        }
    ]
    assert e[1]["user_agent"] is None and e[1]["geo"] is None
    assert e[2]["user_agent"] is None and e[2]["geo"] is None
    assert e[3]["money"] == []
    assert e[4]["geo"] is None and e[4]["user_agent"]["device_class"] == "bot"
    assert e[5]["geo"] is None and e[5]["user_agent"] is None
    assert e[6]["money"] == []
    assert e[7]["user_agent"]["device_class"] in {"desktop", "other"}  # read, not refused


def test_ndjson_answer_is_the_same_enrichments_one_per_line(server: str) -> None:
    """The enricher's form of the answer: the JSON answer's enrichments, one per line."""
    events = [_event(0), _event(1, collector=None, context=None), _event(2, payload={})]
    as_json = httpx.post(f"{server}/v1/enrich", json={"events": events}).json()
    r = httpx.post(f"{server}/v1/enrich", json={"events": events}, headers={"accept": NDJSON})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == NDJSON
    assert r.headers[MODEL_VERSION_HEADER] == as_json["model_version"] == "bot_score-1.0.0"
    lines = r.content.split(b"\n")
    assert [orjson.loads(line) for line in lines] == [x["enrichment"] for x in as_json["results"]]
    for line in lines:
        Enrichment.model_validate_json(line)


def test_context_overrides_collector(server: str) -> None:
    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    )
    event = _event(0, context={"client_ip": "193.0.6.139", "user_agent": chrome})
    e = httpx.post(f"{server}/v1/enrich", json={"events": [event]}).json()["results"][0]
    assert e["enrichment"]["geo"]["country_code"] == "NL"
    assert e["enrichment"]["user_agent"]["device_class"] == "desktop"


def test_synthetic_stream_bots_score_higher(server: str) -> None:
    source = ClickstreamSource(users=400, seed=99, start=datetime(2026, 2, 1, tzinfo=UTC))
    events = []
    for item in islice(source, 400):
        assert isinstance(item, dict)
        context = dict(item["context"])
        bot = context.pop("device_type") == "bot"
        events.append((bot, {**item, "context": context, "collector": {"client_ip": None}}))
    r = httpx.post(f"{server}/v1/enrich", json={"events": [ev for _, ev in events]})
    assert r.status_code == 200
    scores = [x["enrichment"]["scores"]["bot_probability"] for x in r.json()["results"]]
    bots = [s for (bot, _), s in zip(events, scores, strict=True) if bot]
    humans = [s for (bot, _), s in zip(events, scores, strict=True) if not bot]
    assert bots and humans
    assert min(bots) > 0.5 > sorted(humans)[int(len(humans) * 0.95)]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"events": []}, 422),
        ({}, 422),
        ({"events": [{"event_id": "x"}]}, 422),
        ({"events": [{"event_id": "x", "event_type": "t", "payload": [1]}]}, 422),
        ({"events": "nope"}, 422),
    ],
)
def test_malformed_requests(server: str, body: dict[str, Any], status: int) -> None:
    r = httpx.post(f"{server}/v1/enrich", json=body)
    assert r.status_code == status
    assert r.json()["detail"] == "malformed request" and r.json()["errors"]


def test_malformed_request_names_the_field(server: str) -> None:
    """The body is decoded by the route itself; its 422 still points at the failing field
    (the first one: the decoder stops there)."""
    r = httpx.post(f"{server}/v1/enrich", json={"events": [_event(0), {"event_id": "x"}]})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "/events/1/event_type", "reason": "Field required"}]
    wrong = _event(0, collector={"client_ip": "1.2.3.4", "user_agent": 5})
    r = httpx.post(f"{server}/v1/enrich", json={"events": [_event(1), wrong]})
    assert r.json()["errors"] == [
        {"field": "/events/1/collector/user_agent", "reason": "Expected `str | null`, got `int`"}
    ]
    r = httpx.post(f"{server}/v1/enrich", json={"events": [_event(0, event_id="x" * 129)]})
    assert r.json()["errors"] == [
        {"field": "/events/0/event_id", "reason": "Expected `str` of length <= 128"}
    ]


def test_openapi_documents_the_request_body(server: str) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    body = spec["paths"]["/v1/enrich"]["post"]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schemas = spec["components"]["schemas"]
    request = schemas[ref.rsplit("/", 1)[1]]
    assert request["required"] == ["events"]
    event = schemas[request["properties"]["events"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"event_id", "event_type", "payload"} <= set(event["required"])
    # Every reference in the document resolves.
    text = json.dumps(spec)
    for name in {m.split('"')[0] for m in text.split('"#/components/schemas/')[1:]}:
        assert name in schemas, name


def test_not_json(server: str) -> None:
    r = httpx.post(
        f"{server}/v1/enrich", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


def test_too_many_events(server: str) -> None:
    r = httpx.post(f"{server}/v1/enrich", json={"events": [_event(i) for i in range(501)]})
    assert r.status_code == 413


@pytest.mark.slow
def test_latency_budget_gives_503() -> None:
    for url in _serve({"TRIBUTARY_ENRICHMENT__LATENCY_BUDGET_MS": "0.001"}):
        r = httpx.post(f"{url}/v1/enrich", json={"events": [_event(i) for i in range(200)]})
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
