"""Static membership of the stream workers: one member per instance and subscription."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer

from resources.kafka import make_kafka_admin, make_kafka_consumer
from resources.settings import PlatformSettings
from resources.topics import TopicSpec, ensure_topics
from runtime.metrics import WorkerMetrics
from runtime.worker import WorkerOptions
from tests.streaming.worker_helpers import wait_for


@pytest.mark.unit
def test_the_group_instance_id_follows_the_instance_and_its_topics() -> None:
    options = WorkerOptions(instance_id="host-a")
    same = options.group_instance_id(["b", "a"])
    assert same == options.group_instance_id(["a", "b", "a"]) and same.startswith("host-a.")
    assert options.group_instance_id(["a"]) != same
    assert WorkerOptions(instance_id="host-b").group_instance_id(["a", "b"]) != same
    overrides = options.consumer_overrides(WorkerMetrics("t"), ["a", "b"])
    assert overrides["group.instance.id"] == same


def _member(settings: PlatformSettings, group: str, options: WorkerOptions, topic: str) -> Consumer:
    consumer = make_kafka_consumer(
        settings.kafka,
        group,
        **{
            "session.timeout.ms": 10_000,  # the dead first member is dropped after this
            **{
                k: v
                for k, v in options.consumer_overrides(WorkerMetrics("t"), [topic]).items()
                if k != "stats_cb"
            },
        },
    )
    consumer.subscribe([topic])
    return consumer


def _assigned(consumer: Consumer) -> set[str]:
    consumer.poll(0.5)
    return {tp.topic for tp in consumer.assignment()}


@pytest.mark.integration
def test_a_worker_whose_topic_changed_is_assigned_the_new_topic(kafka: PlatformSettings) -> None:
    """The classic protocol hands a static member that rejoins with another subscription its
    old assignment (KAFKA-12759); the topic digest in the instance id avoids that. When this
    test fails with the digest gone, the broker has the fix."""
    tag = uuid.uuid4().hex[:8]
    old, new = f"member-{tag}.old", f"member-{tag}.new"
    ensure_topics(make_kafka_admin(kafka.kafka), [TopicSpec(t, 3, 1, {}) for t in (old, new)])
    group, options = f"member-{tag}", WorkerOptions(instance_id="host-a")
    first = _member(kafka, group, options, old)
    wait_for(lambda: _assigned(first) == {old}, 60, "the first member's assignment")
    # A crash: a static member's close() does not leave the group.
    first.close()
    second = _member(kafka, group, options, new)
    try:
        wait_for(lambda: _assigned(second) == {new}, 60, "the renamed subscription's assignment")
    finally:
        second.close()
