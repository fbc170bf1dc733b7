"""Kafka on the real broker: the declared topics, and an idempotent round trip."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import TopicPartition

from resources.kafka import make_kafka_admin, make_kafka_consumer, make_kafka_producer
from resources.settings import PlatformSettings
from resources.topics import describe_topic_config, ensure_topics, platform_topics

pytestmark = pytest.mark.integration


def test_platform_topics_exist_with_their_declared_settings(kafka: PlatformSettings) -> None:
    admin = make_kafka_admin(kafka.kafka)
    specs = platform_topics(kafka.topics, kafka.kafka)
    assert {s.name for s in specs} == {
        kafka.topics.raw,
        kafka.topics.collector_dlq,
        kafka.topics.enriched,
        kafka.topics.enriched_dlq,
        kafka.topics.loader_dlq,
    }
    metadata = admin.list_topics(timeout=10).topics
    for spec in specs:
        assert spec.name in metadata, f"{spec.name} was not created"
        assert len(metadata[spec.name].partitions) == spec.partitions
        config = describe_topic_config(admin, spec.name)
        for key, value in spec.config.items():
            assert config[key] == value, f"{spec.name}: {key}={config[key]}, declared {value}"


def test_ensure_topics_is_idempotent_and_repairs_drift(kafka: PlatformSettings) -> None:
    admin = make_kafka_admin(kafka.kafka)
    specs = platform_topics(kafka.topics, kafka.kafka)
    assert ensure_topics(admin, specs).created == []
    # Someone changes a topic by hand; the next reconciliation puts it back.
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        kafka.topics.loader_dlq,
        incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()
    # The broker applies a config change asynchronously: wait until it shows.
    deadline = time.monotonic() + 30
    while describe_topic_config(admin, kafka.topics.loader_dlq)["retention.ms"] != "1000":
        assert time.monotonic() < deadline, "the manual change never showed"
        time.sleep(0.2)
    report = ensure_topics(admin, specs)
    assert report.altered == [kafka.topics.loader_dlq]
    config = describe_topic_config(admin, kafka.topics.loader_dlq)
    assert config["retention.ms"] == str(30 * 24 * 3600 * 1000)


def test_produce_and_consume_round_trip(kafka: PlatformSettings) -> None:
    topic = kafka.topics.raw
    producer = make_kafka_producer(kafka.kafka)
    run = uuid.uuid4().hex
    delivered: list[tuple[int, int]] = []

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        delivered.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    for i in range(20):
        producer.produce(
            topic, key=f"user-{i % 3}", value=f"{run}:{i}".encode(), on_delivery=on_delivery
        )
    assert producer.flush(30) == 0
    assert len(delivered) == 20

    consumer = make_kafka_consumer(kafka.kafka, group_id=f"test-{run}")
    consumer.assign(
        [
            TopicPartition(topic, p, o)
            for p, o in {p: min(o for q, o in delivered if q == p) for p, _ in delivered}.items()
        ]
    )
    seen: list[str] = []
    try:
        for _ in range(100):
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            value = (msg.value() or b"").decode()
            if value.startswith(run):
                seen.append(value)
            if len(seen) == 20:
                break
    finally:
        consumer.close()
    assert sorted(seen, key=lambda v: int(v.split(":")[1])) == [f"{run}:{i}" for i in range(20)]


def test_producer_defaults_are_idempotent_with_acks_all(kafka: PlatformSettings) -> None:
    from resources.kafka import PRODUCER_DEFAULTS

    assert PRODUCER_DEFAULTS["enable.idempotence"] is True
    assert PRODUCER_DEFAULTS["acks"] == "all"
    # An override cannot weaken the guarantees silently: they are applied after settings.
    producer = make_kafka_producer(kafka.kafka, **{"linger.ms": 1})
    assert producer.flush(5) == 0
