"""The enricher on real Kafka: validation, dead letters, and exactly-once through crashes."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException

from cli.processes import PlatformProcess, child_env
from resources.kafka import make_kafka_consumer, make_kafka_producer
from resources.settings import PlatformSettings, TopicNames
from simulator.events import ClickstreamSource
from stack.private import free_port
from streaming.enricher import CircuitBreaker, Enricher, EnricherSettings
from tests.kafka_helpers import end_offsets, read_committed


def raw_records(
    n: int, bad_share: float, seed: int = 3
) -> tuple[list[bytes], set[str], Counter[str]]:
    """Raw-topic records as the collector writes them, and what the enricher should make of them."""
    source = iter(ClickstreamSource(users=max(1, n // 20), seed=seed, bad_share=bad_share))
    out: list[bytes] = []
    valid_ids: set[str] = set()
    expected: Counter[str] = Counter()
    from contract.envelope import EnvelopeRules, check_envelope
    from contract.registry import SchemaRegistry

    registry = SchemaRegistry.from_directory()
    rules = EnvelopeRules()
    while len(out) < n:
        item = next(source)
        if isinstance(item, bytes):
            continue  # the collector never lets non-JSON through
        check = check_envelope(item, registry, rules)
        if not check.ok:
            continue  # nor an invalid envelope
        record = {
            **item,
            "collector": {
                "received_at": "2026-11-28T10:00:00Z",
                "collector_id": "test",
                "request_id": "r",
                "producer": "tests",
                "client_ip": "203.0.113.5",
                "user_agent": "Mozilla/5.0",
                "path": "rest",
            },
        }
        compiled = registry.lookup(item["event_type"])
        assert compiled is not None
        if compiled.errors(item["payload"]):
            expected["schema_violation"] += 1
        else:
            valid_ids.add(item["event_id"])
        out.append(orjson.dumps(record))
    return out, valid_ids, expected


def produce(kafka: PlatformSettings, topic: str, values: list[bytes]) -> None:
    producer = make_kafka_producer(kafka.kafka)
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=f"user:{i % 17}")
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def settings_for(kafka: PlatformSettings, topics: TopicNames, **enricher: Any) -> EnricherSettings:
    return EnricherSettings.model_validate(
        {
            "kafka": kafka.kafka.model_dump(),
            "topics": topics.model_dump(),
            "enricher": {
                "group_id": f"enricher-{topics.raw}",
                "enrichment_enabled": False,
                "metrics_port": 0,
                **enricher,
            },
        }
    )


COORDINATOR_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def committed_through(settings: EnricherSettings) -> bool:
    """True when no committed record of the raw topic lies past the enricher group's offsets.

    Compared by reading, not by offsets alone: transaction markers (replays write the raw
    topic transactionally) take offsets that no consumer ever commits past.
    """
    from confluent_kafka import TopicPartition

    ends = end_offsets(settings.kafka, settings.topics.raw)
    consumer = make_kafka_consumer(settings.kafka, settings.enricher.group_id)
    try:
        committed = consumer.committed([TopicPartition(settings.topics.raw, p) for p in ends], 10)
    except KafkaException as exc:
        # A fresh Kafka is still electing and loading the group coordinators: not yet.
        if exc.args[0].code() in COORDINATOR_NOT_READY:
            return False
        raise
    finally:
        consumer.close()
    since = {tp.partition: max(tp.offset, 0) for tp in committed}
    if all(since[p] >= end for p, end in ends.items()):
        return True
    return not read_committed(settings.kafka, settings.topics.raw, since, timeout=10)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def ids_of(messages: list[Any]) -> list[str]:
    return [orjson.loads(m.value() or b"")["event_id"] for m in messages]


@pytest.mark.integration
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
