"""The enricher with the real enrichment API in the loop: enrichment, outage, deadline."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from resources.settings import PlatformSettings, TopicNames
from stack.private import free_port
from streaming.dlq import DeadLetterTopic, replay
from streaming.enricher import Enricher
from tests.kafka_helpers import read_committed
from tests.streaming.enricher_helpers import (
    EnrichmentApi,
    committed_through,
    produce,
    raw_records,
    settings_for,
)
from tests.streaming.worker_helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[EnrichmentApi]:
    server = EnrichmentApi(free_port(), tmp_path / "enrichment.log")
    server.start()
    yield server
    server.stop()


def run_until_caught_up(enricher: Enricher, timeout: float = 180) -> None:
    thread = threading.Thread(target=enricher.run)
    thread.start()
    try:
        wait_for(lambda: committed_through(enricher.settings), timeout, "the enricher")
    finally:
        enricher.stop.set()
        thread.join(60)


def test_events_carry_enrichments_and_the_model_version(
    kafka: PlatformSettings,
    topics: TopicNames,
    api: EnrichmentApi,
) -> None:
    values, valid_ids, _ = raw_records(800, bad_share=0.0)
    produce(kafka, topics.raw, values)
    settings = settings_for(kafka, topics, enrichment_enabled=True, enrichment_url=api.url)
    run_until_caught_up(Enricher(settings, threading.Event()))
    records = [orjson.loads(m.value() or b"") for m in read_committed(kafka.kafka, topics.enriched)]
    assert {r["event_id"] for r in records} == valid_ids
    assert len(records) == len(valid_ids)
    versions = {r["lineage"]["model_version"] for r in records}
    assert len(versions) == 1 and next(iter(versions))
    assert all(0 <= r["enrichment"]["scores"]["bot_probability"] <= 1 for r in records)
    assert any(r["enrichment"]["user_agent"] for r in records)
    priced = [r for r in records if "price" in r["payload"] or "total" in r["payload"]]
    assert priced and all(r["enrichment"]["money"] for r in priced)


def test_an_api_outage_applies_back_pressure_then_recovers(
    kafka: PlatformSettings,
    topics: TopicNames,
    api: EnrichmentApi,
) -> None:
    values, valid_ids, _ = raw_records(400, bad_share=0.0)
    settings = settings_for(
        kafka,
        topics,
        enrichment_enabled=True,
        enrichment_url=api.url,
        request_timeout_s=1,
        retry={"initial_s": 0.2, "max_s": 1},
        breaker_reset_s=1,
    )
    api.stop()
    produce(kafka, topics.raw, values)
    stop = threading.Event()
    enricher = Enricher(settings, stop)
    thread = threading.Thread(target=enricher.run)
    thread.start()
    try:
        time.sleep(8)  # the API is down all this while
        assert enricher.stats["dead"] == 0, "an outage flooded the dead-letter topic"
        assert enricher.stats["enriched"] == 0
        api.start()
        wait_for(lambda: committed_through(settings), 120, "recovery")
    finally:
        stop.set()
        thread.join(60)
    ids = [
        orjson.loads(m.value() or b"")["event_id"]
        for m in read_committed(kafka.kafka, topics.enriched)
    ]
    assert Counter(ids) == Counter(valid_ids)
    assert read_committed(kafka.kafka, topics.enriched_dlq) == []


def test_past_the_deadline_events_are_dead_lettered_and_replayable(
    kafka: PlatformSettings,
    topics: TopicNames,
    api: EnrichmentApi,
) -> None:
    values, valid_ids, _ = raw_records(200, bad_share=0.0)
    settings = settings_for(
        kafka,
        topics,
        enrichment_enabled=True,
        enrichment_url=api.url,
        request_timeout_s=1,
        retry={"initial_s": 0.2, "max_s": 0.5},
        dead_letter_after_s=3,
    )
    api.stop()
    produce(kafka, topics.raw, values)
    run_until_caught_up(Enricher(settings, threading.Event()))
    dead = [
        orjson.loads(m.value() or b"") for m in read_committed(kafka.kafka, topics.enriched_dlq)
    ]
    assert {d["event_id"] for d in dead} == valid_ids
    assert {d["failure_type"] for d in dead} == {"enrichment_failed"}

    api.start()
    report = replay(settings, DeadLetterTopic.ENRICHED, {"enrichment_failed"})
    assert report.moved["enrichment_failed"] == len(valid_ids)
    run_until_caught_up(Enricher(settings, threading.Event()))
    enriched = [
        orjson.loads(m.value() or b"")["event_id"]
        for m in read_committed(kafka.kafka, topics.enriched)
    ]
    assert Counter(enriched) == Counter(valid_ids)
