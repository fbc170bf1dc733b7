"""Dead letters: look at them by reason, and send them round again.

``inspect`` reads a dead-letter topic and counts its failed events by stage, type and reason.
``replay`` re-publishes the originals of selected dead letters to the topic they came from:
the enricher's to the raw topic, the loaders' to the enriched topic. A replay is one consumer
group per dead-letter topic and moves records in Kafka transactions with its offsets, so an
interrupted replay resumes where it stopped and moves nothing twice. Each re-published record
carries a replay counter header; a dead letter replayed ``max_replays`` times is left alone, so
an event that can never succeed does not loop forever.

The collector's dead letters are events whose envelope was refused: they must be corrected
and sent through the collector again (which checks the envelope), not put on the raw topic.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
from confluent_kafka import Message, TopicPartition

from contract.failures import REPLAY_COUNT_HEADER, FailedEvent, replay_count_of
from resources.kafka import TopicReader, make_kafka_consumer, make_kafka_producer
from resources.settings import PlatformSettings


class DeadLetterTopic(enum.StrEnum):
    COLLECTOR = "collector"
    ENRICHED = "enriched"
    LOADER = "loader"


def topic_of(settings: PlatformSettings, which: DeadLetterTopic) -> str:
    return {
        DeadLetterTopic.COLLECTOR: settings.topics.collector_dlq,
        DeadLetterTopic.ENRICHED: settings.topics.enriched_dlq,
        DeadLetterTopic.LOADER: settings.topics.loader_dlq,
    }[which]


def replay_target(settings: PlatformSettings, which: DeadLetterTopic) -> str:
    if which is DeadLetterTopic.COLLECTOR:
        raise ValueError(
            "collector dead letters failed the envelope check: correct them and send them "
            "through the collector (tributary produce file ...), not straight to Kafka"
        )
    return settings.topics.raw if which is DeadLetterTopic.ENRICHED else settings.topics.enriched


def replay_count(headers: object, failed: FailedEvent) -> int:
    """How often this dead letter's event was replayed already."""
    return max(replay_count_of(headers), failed.replay_count)


@dataclass
class Inspection:
    total: int = 0
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    top_errors: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    unreadable: int = 0


def inspect(settings: PlatformSettings, which: DeadLetterTopic, timeout: float = 60) -> Inspection:
    """Count every dead letter of a topic by stage and failure type, with the top reasons."""
    result = Inspection()
    with TopicReader(settings.kafka, topic_of(settings, which), start={}) as reader:
        for msg in reader.read(timeout):
            result.total += 1
            try:
                failed = FailedEvent.model_validate_json(msg.value() or b"")
            except ValueError:
                result.unreadable += 1
                continue
            result.by_reason[(failed.stage, failed.failure_type)] += 1
            for error in failed.errors[:3]:
                result.top_errors[(failed.failure_type, error.field, error.reason[:80])] += 1
    return result


@dataclass
class ReplayReport:
    moved: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    exhausted: int = 0
    target: str = ""


def replay(
    settings: PlatformSettings,
    which: DeadLetterTopic,
    reasons: set[str] | None = None,
    max_replays: int = 3,
    limit: int | None = None,
    batch_size: int = 500,
    idle_s: float = 3.0,
) -> ReplayReport:
    """Move dead letters' originals back to their source topic; resume where the last stopped."""
    source = topic_of(settings, which)
    report = ReplayReport(target=replay_target(settings, which))
    group = f"tributary-dlq-replay-{source}"
    consumer = make_kafka_consumer(settings.kafka, group, **{"enable.auto.commit": False})
    producer = make_kafka_producer(
        settings.kafka, **{"transactional.id": f"{group}-{uuid.uuid4().hex[:8]}"}
    )
    producer.init_transactions(30)
    consumer.subscribe([source])
    idle_since = time.monotonic()
    moved_total = 0
    try:
        while limit is None or moved_total < limit:
            want = batch_size if limit is None else min(batch_size, limit - moved_total)
            messages = [m for m in consumer.consume(want, 0.5) if not _error(m)]
            if not messages:
                if time.monotonic() - idle_since > idle_s:
                    break
                continue
            idle_since = time.monotonic()
            producer.begin_transaction()
            offsets: dict[int, int] = {}
            for msg in messages:
                offsets[msg.partition() or 0] = (msg.offset() or 0) + 1
                try:
                    failed = FailedEvent.model_validate_json(msg.value() or b"")
                except ValueError:
                    report.skipped["unreadable"] += 1
                    continue
                if reasons and failed.failure_type not in reasons:
                    report.skipped[failed.failure_type] += 1
                    continue
                if "original_withheld" in failed.metadata:  # pseudonyms on: nothing to replay
                    report.skipped["original_withheld"] += 1
                    continue
                count = replay_count(msg.headers(), failed)
                if count >= max_replays:
                    report.exhausted += 1
                    continue
                producer.produce(
                    report.target,
                    value=failed.original.to_bytes(),
                    key=msg.key(),  # the key the record had before it failed
                    headers=[(REPLAY_COUNT_HEADER, str(count + 1).encode())],
                )
                report.moved[failed.failure_type] += 1
                moved_total += 1
            producer.send_offsets_to_transaction(
                [TopicPartition(source, p, o) for p, o in offsets.items()],
                consumer.consumer_group_metadata(),
                30,
            )
            producer.commit_transaction(60)
    finally:
        consumer.close()
    return report


def _error(msg: Message) -> bool:
    return msg.error() is not None


def as_json(report: ReplayReport) -> bytes:
    return orjson.dumps(
        {
            "target": report.target,
            "moved": dict(report.moved),
            "skipped": dict(report.skipped),
            "exhausted": report.exhausted,
        }
    )
