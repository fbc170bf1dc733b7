"""Fixtures of the stream worker tests."""

from __future__ import annotations

import uuid

import pytest

from resources.kafka import make_kafka_admin
from resources.settings import PlatformSettings, TopicNames
from resources.topics import ensure_topics, platform_topics


@pytest.fixture()
def topics(kafka: PlatformSettings) -> TopicNames:
    """Topics of this test's own, so counts are exact."""
    suffix = uuid.uuid4().hex[:8]
    names = TopicNames(
        raw=f"test.{suffix}.raw",
        collector_dlq=f"test.{suffix}.raw.dlq",
        enriched=f"test.{suffix}.enriched",
        enriched_dlq=f"test.{suffix}.enriched.dlq",
        loader_dlq=f"test.{suffix}.loader.dlq",
    )
    kafka_settings = kafka.kafka.model_copy(update={"partitions": 3})
    ensure_topics(make_kafka_admin(kafka.kafka), platform_topics(names, kafka_settings))
    return names
