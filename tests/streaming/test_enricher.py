"""The enricher on real Kafka: validation, dead letters, and exactly-once through crashes."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from cli.processes import PlatformProcess, child_env
from resources.settings import PlatformSettings, TopicNames
from stack.private import free_port
from streaming.enricher import CircuitBreaker, Enricher
from tests.kafka_helpers import read_committed
from tests.streaming.enricher_helpers import (
    committed_through,
    ids_of,
    produce,
    raw_records,
    settings_for,
)
from tests.streaming.worker_helpers import wait_for


@pytest.mark.integration
@pytest.mark.slow
def test_valid_events_are_enriched_and_the_rest_dead_lettered(
    kafka: PlatformSettings, topics: TopicNames
) -> None:
    values, valid_ids, expected = raw_records(1500, bad_share=0.2)
    values.append(b"\xff not json")
    values.append(
        orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "iglu:x/y/jsonschema/1-0-0",
                "payload": {},
            }
        )
    )
    expected["malformed"] += 1
    expected["unknown_schema"] += 1
    produce(kafka, topics.raw, values)
    settings = settings_for(kafka, topics)
    stop = threading.Event()
    enricher = Enricher(settings, stop)
    thread = threading.Thread(target=enricher.run)
    thread.start()
    try:
        wait_for(lambda: committed_through(settings), 120, "the enricher to catch up")
    finally:
        stop.set()
        thread.join(30)

    enriched = read_committed(kafka.kafka, topics.enriched)
    assert sorted(ids_of(enriched)) == sorted(valid_ids)
    record = orjson.loads(enriched[0].value() or b"")
    assert record["lineage"]["enricher_version"]
    assert record["lineage"]["source_topic"] == topics.raw
    assert record["lineage"]["schema_version"] == record["event_type"].rsplit("/", 1)[1]
    assert record["collector"]["producer"] == "tests"
    dead_messages = read_committed(kafka.kafka, topics.enriched_dlq)
    dead = [orjson.loads(m.value() or b"") for m in dead_messages]
    assert Counter(d["failure_type"] for d in dead) == expected
    violation = next(d for d in dead if d["failure_type"] == "schema_violation")
    assert violation["stage"] == "enricher"
    assert all(e["field"].startswith("/payload") for e in violation["errors"])
    assert violation["original"]["encoding"] == "json"
    assert violation["metadata"]["source_topic"] == topics.raw
    assert enricher.stats["enriched"] == len(valid_ids)


@pytest.mark.integration
@pytest.mark.slow
def test_kill_9_and_a_rebalance_neither_duplicate_nor_drop(
    kafka: PlatformSettings, topics: TopicNames, tmp_path: Path
) -> None:
    values, valid_ids, _ = raw_records(20000, bad_share=0.0)
    settings = settings_for(kafka, topics, batch_size=200)
    env = child_env(settings, inherit=False)
    # Three instances of one group, running at once: each its own member id and port; the
    # third is the first one restarted (same member id).
    members = [("enricher-a", free_port()), ("enricher-b", free_port())]
    members.append(members[0])
    instances = [
        PlatformProcess(
            "enricher",
            {
                **env,
                "TRIBUTARY_ENRICHER__INSTANCE_ID": member,
                "TRIBUTARY_ENRICHER__METRICS_PORT": str(port),
            },
            tmp_path / f"enricher-{i}.log",
        )
        for i, (member, port) in enumerate(members)
    ]
    first, second, third = instances
    first.start()
    feeder = threading.Thread(target=produce, args=(kafka, topics.raw, values))
    feeder.start()
    try:
        time.sleep(4)
        second.start()  # joins the group: a rebalance mid-stream
        time.sleep(3)
        first.stop(signal.SIGKILL)  # crash mid-transaction, most likely
        feeder.join()
        third.start()
        wait_for(lambda: committed_through(settings), 180, "the group to catch up")
    finally:
        for instance in instances:
            instance.stop()
    ids = ids_of(read_committed(kafka.kafka, topics.enriched))
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} events enriched twice"
    assert set(ids) == valid_ids, f"{len(valid_ids - set(ids))} events lost"


@pytest.mark.unit
def test_circuit_breaker_opens_and_half_opens() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, reset_s=10, clock=lambda: now[0])
    for _ in range(2):
        breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.state == "half-open" and breaker.allow()
    breaker.failure()  # the trial failed: open again
    assert not breaker.allow()
    now[0] = 21
    breaker.success()
    assert breaker.state == "closed"
