"""Reading back what the platform wrote to Kafka, for assertions."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaException, Message, TopicPartition

from resources.kafka import TopicReader, make_kafka_consumer
from resources.settings import KafkaSettings


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """The next offset of every partition of ``topic``: where new messages will land."""
    consumer = make_kafka_consumer(kafka, group_id=f"probe-{uuid.uuid4().hex}")
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return {
                    p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in partitions
                }
            except KafkaException:
                # A freshly started broker may not have settled its partition leaders yet.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def read_since(
    kafka: KafkaSettings,
    topic: str,
    since: dict[int, int],
    expect: int | None = None,
    timeout: float = 30,
) -> list[Message]:
    """Every committed message of ``topic`` after ``since``, up to its current end."""
    until = end_offsets(kafka, topic)
    if expect is not None:
        deadline = time.monotonic() + timeout
        while (
            sum(until[p] - since.get(p, 0) for p in until) < expect and time.monotonic() < deadline
        ):
            time.sleep(0.2)
            until = end_offsets(kafka, topic)
    consumer = make_kafka_consumer(kafka, group_id=f"reader-{uuid.uuid4().hex}")
    wanted = {p: (since.get(p, 0), end) for p, end in until.items() if end > since.get(p, 0)}
    consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in wanted.items()])
    out: list[Message] = []
    done: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(wanted) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                continue
            out.append(msg)
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            if offset + 1 >= wanted[partition][1]:
                done.add(partition)
    finally:
        consumer.close()
    return out


def read_committed(
    kafka: KafkaSettings, topic: str, since: dict[int, int] | None = None, timeout: float = 60
) -> list[Message]:
    """Every committed record of a transactional topic after ``since``, up to its current end."""
    with TopicReader(kafka, topic, start=since or {}) as reader:
        return reader.read(timeout)
