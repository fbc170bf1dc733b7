"""Kafka client factories, free of Dagster: the collector and workers import them."""

from __future__ import annotations

import logging
import re
import time
import uuid
import zlib
from typing import Any, Self

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from resources.settings import KafkaSettings

# Idempotent, acks=all: a retried send never duplicates and an acknowledged record is on
# every in-sync replica. Callers may override the batching knobs, not these guarantees.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "zstd",
    "linger.ms": 5,
}

# Offsets are stored by the application only after its write succeeded (at-least-once, or
# exactly-once together with transactions); the consumer never reads aborted records.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
}


class OncePerState(logging.Filter):
    """Passes a librdkafka log line once per state of its source, at WARNING at most.

    A broker that is down makes librdkafka repeat "Connect to ... failed" every few hundred
    milliseconds; each client and broker (the line's source) is reported again only when
    what it says changes (a different error, or a recovery), not its timings or counts.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, str], str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) != 3:  # not librdkafka's "fac [client] text"
            return True
        facility, client, text = (str(a) for a in args)
        text = re.sub(r"^\[thrd:[^\]]*\]:\s*", "", text)
        source, _, message = text.partition(": ")
        state = facility + " " + re.sub(r"\d+", "#", re.sub(r"\s*\(after .*\)$", "", message))
        if self._last.get((client, source)) == state:
            return False
        self._last[(client, source)] = state
        if record.levelno > logging.WARNING:  # a client that retries is not failing yet
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# Every client's librdkafka log goes through Python logging (served by the client's poll),
# instead of librdkafka's own "%3|...|FAIL|..." lines on stderr; debug and info are dropped.
CLIENT_LOG = logging.getLogger("tributary.kafka.client")
CLIENT_LOG.setLevel(logging.WARNING)
CLIENT_LOG.addFilter(OncePerState())


def make_kafka_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """Return an idempotent ``acks=all`` producer; ``overrides`` use librdkafka names."""
    return Producer(
        {**settings.client_config(), **PRODUCER_DEFAULTS, "logger": CLIENT_LOG, **overrides}
    )


def make_kafka_consumer(settings: KafkaSettings, group_id: str, **overrides: Any) -> Consumer:
    """Return a ``read_committed`` consumer that leaves offset storing to the caller."""
    return Consumer(
        {
            **settings.client_config(),
            **CONSUMER_DEFAULTS,
            "group.id": group_id,
            "logger": CLIENT_LOG,
            **overrides,
        }
    )


def make_kafka_admin(settings: KafkaSettings, **overrides: Any) -> AdminClient:
    """Return an admin client for topic management."""
    config: dict[str, Any] = {**settings.client_config(), "logger": CLIENT_LOG, **overrides}
    return AdminClient(config)


def key_partition(key: str, partitions: int) -> int:
    """The partition the platform's producers put a record with ``key`` on.

    They keep librdkafka's default partitioner, ``consistent_random``: CRC32 of the key's bytes
    modulo the topic's partition count (random only for a record without a key). A topic whose
    partitions were added later holds a key's older records on the partition it had then.
    """
    return (zlib.crc32(key.encode()) & 0xFFFFFFFF) % partitions


def end_offsets(consumer: Consumer, topic: str, timeout: float = 10) -> dict[int, int]:
    """Return the high watermark of every partition of ``topic``: where new records land."""
    partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
        for p in partitions
    }


class TopicReader:
    """Reads a topic onward from given offsets, in rounds, as ``read_committed``.

    Each :meth:`read` returns the records between the previous round's end and the topic's
    current end. Transaction markers take offsets too, so a round ends when the consumer's
    *position* (not the last record's offset) reaches the end; records of a transaction still
    open stay for a later round. The reader joins no group and commits nothing.
    """

    def __init__(
        self, settings: KafkaSettings, topic: str, start: dict[int, int] | None = None
    ) -> None:
        self.topic = topic
        self._consumer = make_kafka_consumer(
            settings,
            group_id=f"tributary-reader-{uuid.uuid4().hex}",
            **{"enable.auto.commit": False},
        )
        ends = end_offsets(self._consumer, topic)
        self.positions = dict(ends) if start is None else {p: start.get(p, 0) for p in ends}
        self._consumer.assign([TopicPartition(topic, p, o) for p, o in self.positions.items()])

    def read(self, timeout: float = 60) -> list[Message]:
        """Return the records up to the topic's end as of now (fewer if ``timeout`` passes)."""
        ends = end_offsets(self._consumer, self.topic)
        if set(ends) != set(self.positions):  # partitions were added
            for p in set(ends) - set(self.positions):
                self.positions[p] = 0
            self._consumer.assign(
                [TopicPartition(self.topic, p, o) for p, o in self.positions.items()]
            )
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.positions[p] >= end for p, end in ends.items()):
                break
            msg = self._consumer.poll(0.2)
            if msg is not None and not msg.error():
                out.append(msg)
                continue
            for tp in self._consumer.position(
                [TopicPartition(self.topic, p) for p in self.positions]
            ):
                if tp.offset >= 0:
                    self.positions[tp.partition] = tp.offset
        for msg in out:
            partition, offset = msg.partition(), msg.offset()
            if partition is not None and offset is not None:
                self.positions[partition] = max(self.positions[partition], offset + 1)
        return out

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
