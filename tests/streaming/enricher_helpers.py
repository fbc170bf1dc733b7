"""Helpers of the enricher tests: raw records, a Kafka message, the enrichment API process,
and reading where the enricher's consumer group stands."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException

from cli.processes import PlatformProcess, child_env
from enrichment.config import EnrichmentOptions, EnrichmentSettings
from resources.kafka import make_kafka_consumer, make_kafka_producer
from resources.settings import PlatformSettings, TopicNames
from simulator.events import ClickstreamSource
from streaming.enricher import EnricherSettings
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


def ids_of(messages: list[Any]) -> list[str]:
    return [orjson.loads(m.value() or b"")["event_id"] for m in messages]


TOPIC = "raw"


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._partition, self._offset, self._value = partition, offset, value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def error(self) -> None:
        return None


class EnrichmentApi(PlatformProcess):
    """``tributary run enrichment-api`` on a free port, stopped and restarted by the tests."""

    def __init__(self, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = child_env(EnrichmentSettings(enrichment=EnrichmentOptions(port=port)), inherit=False)
        super().__init__("enrichment-api", env, log, ready_url=f"{self.url}/healthz")
