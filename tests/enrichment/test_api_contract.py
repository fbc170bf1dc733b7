"""The enrichment API's HTTP contract, in process: the real app, started through its lifespan.

The NDJSON answer the enricher reads, the model version header, the 422 that names a bad
event's field, the limits, the warm-up and the health answer. The API served by uvicorn in its
own process is ``test_api.py``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from contract.enrichment import MODEL_VERSION_HEADER, NDJSON
from contract.records import Enrichment
from enrichment.api import WARM_UP_EVENT, create_app
from enrichment.config import EnrichmentOptions, EnrichmentSettings
from enrichment.service import Enricher, EnrichResponse, EventIn

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="module", autouse=True)
def model_library() -> None:
    """Load a model once before the tests: the first load imports scikit-learn (seconds),
    which a process pays once at start-up; each test's own start-up then takes milliseconds."""
    Enricher(EnrichmentOptions())


def settings(monkeypatch: pytest.MonkeyPatch, **options: Any) -> EnrichmentSettings:
    """The process's settings, with the environment's own ``TRIBUTARY_ENRICHMENT__*`` removed."""
    for name in [n for n in os.environ if n.startswith("TRIBUTARY_ENRICHMENT__")]:
        monkeypatch.delenv(name)
    return EnrichmentSettings.model_validate({"enrichment": options})


@contextlib.asynccontextmanager
async def serving(configured: EnrichmentSettings) -> AsyncIterator[httpx.AsyncClient]:
    """``create_app`` started through its lifespan, as uvicorn starts it, and a client to it."""
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://enrichment") as client:
            yield client


def raw(n: int, **over: Any) -> dict[str, Any]:
    """An event as the raw topic holds it, with the collector's stamp."""
    event: dict[str, Any] = {
        "event_id": f"e-{n}",
        "event_type": "iglu:com.tributary.shop/product_view/jsonschema/1-0-0",
        "event_timestamp": "2026-11-28T10:00:00Z",
        "payload": {"product_id": "SKU-1", "price": 108.0, "currency": "USD"},
        "context": {"session_id": "s-1"},
        "collector": {"client_ip": "193.0.6.139", "user_agent": CHROME, "producer": "p"},
    }
    event.update(over)
    return event


async def test_health_names_the_served_model(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(settings(monkeypatch)) as api:
        health = await api.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        version = health.json()["model_version"]
        assert version.startswith("bot_score-")
        answer = await api.post("/v1/enrich", json={"events": [raw(0)]})
        assert answer.json()["model_version"] == version


async def test_the_ndjson_answer_is_one_enrichment_per_event_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three events that enrich differently, so that a reordered answer shows.
    events = [raw(0), raw(1, collector=None, context=None), raw(2, payload={})]
    async with serving(settings(monkeypatch)) as api:
        as_json = (await api.post("/v1/enrich", json={"events": events})).json()
        r = await api.post("/v1/enrich", json={"events": events}, headers={"accept": NDJSON})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == NDJSON
    assert r.headers[MODEL_VERSION_HEADER] == as_json["model_version"]
    lines = r.content.split(b"\n")
    assert len(lines) == len(events), "one line per event, no blank line at the end"
    enrichments = [Enrichment.model_validate_json(line) for line in lines]
    assert [orjson.loads(line) for line in lines] == [x["enrichment"] for x in as_json["results"]]
    first, second, third = enrichments
    assert first.geo is not None and first.geo.country_code == "NL"
    assert first.user_agent is not None and first.user_agent.device_class == "desktop"
    assert [m.amount_eur for m in first.money] == [100.0]
    assert second.geo is None and second.user_agent is None
    assert third.money == []
    assert {e.model_version for e in enrichments} == {r.headers[MODEL_VERSION_HEADER]}


async def test_the_json_answer_is_the_documented_model(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(settings(monkeypatch)) as api:
        r = await api.post("/v1/enrich", json={"events": [raw(0), raw(1)]})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert MODEL_VERSION_HEADER not in r.headers
    model = EnrichResponse.model_validate_json(r.content)
    assert model.model_dump(mode="json") == r.json()
    assert [x.event_id for x in model.results] == ["e-0", "e-1"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"events": [raw(0), {"event_id": "x"}]},
            [{"field": "/events/1/event_type", "reason": "Field required"}],
        ),
        (
            {"events": [raw(0), raw(1, collector={"client_ip": "1.2.3.4", "user_agent": 5})]},
            [
                {
                    "field": "/events/1/collector/user_agent",
                    "reason": "Expected `str | null`, got `int`",
                }
            ],
        ),
        (
            {"events": [raw(0, event_id="x" * 129)]},
            [{"field": "/events/0/event_id", "reason": "Expected `str` of length <= 128"}],
        ),
        ({"events": [raw(0, payload=[1])]}, [{"field": "/events/0/payload", "reason": None}]),
        ({"events": []}, [{"field": "/events", "reason": None}]),
        ({}, [{"field": "/events", "reason": "Field required"}]),
    ],
    ids=["missing-field", "wrong-type", "too-long", "payload-not-object", "empty", "no-events"],
)
async def test_a_bad_event_is_a_422_naming_its_field(
    monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], errors: list[dict[str, Any]]
) -> None:
    async with serving(settings(monkeypatch)) as api:
        r = await api.post("/v1/enrich", json=body)
    assert r.status_code == 422
    assert r.json()["detail"] == "malformed request"
    got = r.json()["errors"]
    assert [e["field"] for e in got] == [e["field"] for e in errors]
    for want, have in zip(errors, got, strict=True):
        assert have["reason"]
        if want["reason"] is not None:
            assert have["reason"] == want["reason"]


async def test_a_body_that_is_not_json_is_a_422(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(settings(monkeypatch)) as api:
        r = await api.post(
            "/v1/enrich", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert r.status_code == 422
    [error] = r.json()["errors"]
    assert error["field"] == "/" and error["reason"]


async def test_a_batch_over_the_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(settings(monkeypatch, max_batch_events=3)) as api:
        assert (
            await api.post("/v1/enrich", json={"events": [raw(i) for i in range(3)]})
        ).is_success
        r = await api.post("/v1/enrich", json={"events": [raw(i) for i in range(4)]})
    assert r.status_code == 413
    assert r.json() == {"detail": "4 events; at most 3"}


async def test_a_batch_past_its_latency_budget_is_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each batch takes 100 ms more than the enricher needs; the budget is 20 ms. (A tiny budget
    # alone races a fast batch: a warm enricher can answer before the timer is looked at.)
    enrich = Enricher.enrich

    def slow(self: Enricher, events: list[EventIn]) -> list[dict[str, Any]]:
        answer = enrich(self, events)
        time.sleep(0.1)
        return answer

    monkeypatch.setattr(Enricher, "enrich", slow)
    async with serving(settings(monkeypatch, latency_budget_ms=20, retry_after_s=4)) as api:
        r = await api.post("/v1/enrich", json={"events": [raw(i) for i in range(5)]})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "4"
    assert r.json() == {"detail": "batch not enriched within 20 ms; retry later"}


async def test_the_enricher_is_warmed_up_before_the_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: list[list[EventIn]] = []
    answers: list[list[dict[str, Any]]] = []
    enrich = Enricher.enrich

    def recording(self: Enricher, events: list[EventIn]) -> list[dict[str, Any]]:
        batches.append(events)
        answers.append(enrich(self, events))
        return answers[-1]

    monkeypatch.setattr(Enricher, "enrich", recording)
    async with serving(settings(monkeypatch)) as api:
        assert batches == [[WARM_UP_EVENT]], "start-up enriches the warm-up event, once"
        # The warm-up goes through every lazily set-up part: the user-agent parser, the geo
        # table, the rate table and the model.
        [warm] = answers[0]
        assert warm["enrichment"]["user_agent"]["browser_family"] == "Chrome"
        assert warm["enrichment"]["geo"]["country_code"] == "US"
        assert warm["enrichment"]["money"][0]["currency"] == "USD"
        assert 0 <= warm["enrichment"]["scores"]["bot_probability"] <= 1
        assert (await api.post("/v1/enrich", json={"events": [raw(0)]})).status_code == 200
    assert len(batches) == 2
