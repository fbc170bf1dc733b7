"""Dead-letter inspection and replay on real Kafka, with the real enricher in the loop."""

from __future__ import annotations

import threading

import pytest

from resources.settings import PlatformSettings, TopicNames
from streaming.dlq import DeadLetterTopic, inspect, replay
from streaming.enricher import Enricher, EnricherSettings
from tests.kafka_helpers import read_committed
from tests.streaming.enricher_helpers import committed_through, produce, raw_records, settings_for
from tests.streaming.worker_helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def enrich_all(settings: EnricherSettings) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=Enricher(settings, stop).run)
    thread.start()
    try:
        wait_for(lambda: committed_through(settings), 120, "the enricher to catch up")
    finally:
        stop.set()
        thread.join(30)


def test_inspect_and_replay_with_a_loop_guard(
    kafka: PlatformSettings,
    topics: TopicNames,
) -> None:
    values, _, expected = raw_records(600, bad_share=0.3)
    violations = expected["schema_violation"]
    assert violations > 0
    produce(kafka, topics.raw, values)
    settings = settings_for(kafka, topics)
    enrich_all(settings)

    seen = inspect(settings, DeadLetterTopic.ENRICHED)
    assert seen.total == violations
    assert seen.by_reason[("enricher", "schema_violation")] == violations
    assert any(field.startswith("/payload") for (_, field, _) in seen.top_errors)

    # Only the chosen failure types move.
    none_moved = replay(settings, DeadLetterTopic.ENRICHED, {"enrichment_failed"}, max_replays=1)
    assert sum(none_moved.moved.values()) == 0
    assert none_moved.skipped["schema_violation"] == violations

    # That replay consumed them (its group's offsets advanced): reset by a fresh group name is
    # not possible here, so produce the dead letters again through the enricher instead.
    produce(kafka, topics.raw, [v for v in values])
    enrich_all(settings)
    first = replay(settings, DeadLetterTopic.ENRICHED, {"schema_violation"}, max_replays=1)
    assert first.target == topics.raw
    assert first.moved["schema_violation"] == violations

    # Resumes where it stopped: nothing new, nothing moved.
    again = replay(settings, DeadLetterTopic.ENRICHED, {"schema_violation"}, max_replays=1)
    assert sum(again.moved.values()) == 0 and again.exhausted == 0

    # The replayed events fail again, now carrying their replay count...
    enrich_all(settings)
    dead = read_committed(kafka.kafka, topics.enriched_dlq)
    replayed = [m for m in dead if b'"replay_count":1' in (m.value() or b"")]
    assert len(replayed) == violations
    # ...so the loop guard leaves them where they are.
    last = replay(settings, DeadLetterTopic.ENRICHED, {"schema_violation"}, max_replays=1)
    assert sum(last.moved.values()) == 0
    assert last.exhausted == violations


def test_collector_dead_letters_are_not_replayed_onto_kafka(kafka: PlatformSettings) -> None:
    with pytest.raises(ValueError, match="through the collector"):
        replay(kafka, DeadLetterTopic.COLLECTOR)
