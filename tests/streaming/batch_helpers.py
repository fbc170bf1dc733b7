"""Helpers of the batch loader tests: realistic enriched events, a loader thread, read-back."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from contract.raw_zone import Manifest, manifests_prefix, parse_object_name
from contract.records import (
    CollectorMetadata,
    EnrichedEvent,
    Enrichment,
    GeoInfo,
    Lineage,
    MoneyInfo,
    UserAgentInfo,
)
from resources.kafka import make_kafka_admin, make_kafka_producer
from resources.s3 import make_s3_client
from resources.settings import KafkaSettings, PlatformSettings, S3Settings
from resources.topics import TopicSpec, ensure_topics
from streaming.batch_loader import BatchLoaderOptions, BatchLoaderSettings, LoaderStats, run
from tests.kafka_helpers import end_offsets

PURCHASE = "iglu:com.tributary.shop/purchase/jsonschema/1-0-0"
PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-1"


def enriched_event(ts: datetime, n: int) -> EnrichedEvent:
    """A realistic enriched record; odd ``n`` are purchases with money, even page views."""
    now = datetime.now(UTC)
    purchase = n % 2 == 1
    return EnrichedEvent(
        event_id=str(uuid.uuid4()),
        event_type=PURCHASE if purchase else PAGE_VIEW,
        event_timestamp=ts.isoformat(timespec="milliseconds"),
        source="web-shop",
        payload=(
            {"order_id": f"o-{n}", "total": {"amount": 19.99 + n, "currency": "USD"}}
            if purchase
            else {"page_url": f"https://shop.example.com/p/{n}", "referrer": None}
        ),
        context={"user_id": f"u-{n % 7}", "session_id": f"s-{n % 3}"} if n % 5 else None,
        collector=CollectorMetadata(
            received_at=now,
            collector_id="collector-1",
            request_id=uuid.uuid4().hex,
            producer="test-shop",
            client_ip="203.0.113.7",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            path="rest" if n % 3 else "grpc",
        ),
        enrichment=Enrichment(
            user_agent=UserAgentInfo(
                browser_family="Firefox",
                browser_version="133.0",
                os_family="Linux",
                device_family="Other",
                device_class="desktop",
            ),
            geo=GeoInfo(
                country_code="DE",
                country_name="Germany",
                city="Berlin",
                latitude=52.52,
                longitude=13.40,
                source="geolite2-2026-11",
            ),
            money=(
                [
                    MoneyInfo(
                        field="/total/amount",
                        amount=19.99 + n,
                        currency="USD",
                        amount_eur=round((19.99 + n) * 0.92, 2),
                        rates_version="ecb-2026-11-27",
                    )
                ]
                if purchase
                else []
            ),
            scores={"bot_probability": 0.01 * (n % 10)},
            model_version="bot-v3",
        ),
        lineage=Lineage(
            enricher_version="0.1.0",
            schema_version="1-0-0" if purchase else "1-0-1",
            model_version="bot-v3",
            source_topic="tributary.events.raw",
            source_partition=n % 6,
            source_offset=1000 + n,
            enriched_at=now,
        ),
    )


@dataclass
class Produced:
    event: EnrichedEvent
    partition: int


def hours_apart(base: datetime, n: int, hours: int = 3) -> list[datetime]:
    """``n`` timestamps cycling over ``hours`` consecutive hours, in mixed time zones."""
    zones = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]
    return [
        (base + timedelta(hours=i % hours, seconds=i)).astimezone(zones[i % len(zones)])
        for i in range(n)
    ]


def create_topic(kafka: KafkaSettings, name: str, partitions: int = 2) -> None:
    ensure_topics(make_kafka_admin(kafka), [TopicSpec(name, partitions, 1)])


def produce(
    kafka: KafkaSettings, topic: str, events: Iterable[EnrichedEvent], partitions: int = 2
) -> list[Produced]:
    producer = make_kafka_producer(kafka)
    out = []
    for i, ev in enumerate(events):
        p = i % partitions
        producer.produce(topic, value=ev.model_dump_json().encode(), key=ev.event_id, partition=p)
        out.append(Produced(ev, p))
    assert producer.flush(30) == 0
    return out


def produce_raw(kafka: KafkaSettings, topic: str, value: bytes, partition: int) -> None:
    producer = make_kafka_producer(kafka)
    producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


class LoaderThread:
    """``streaming.batch_loader.run`` in a thread, with its stats."""

    def __init__(
        self, settings: BatchLoaderSettings, after_upload: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.stats = LoaderStats()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.after_upload = after_upload

    def _run(self) -> None:
        try:
            run(self.settings, self.stop, self.stats, after_upload=self.after_upload)
        except BaseException as e:
            self.error = e

    def start(self) -> LoaderThread:
        self.thread.start()
        return self

    def wait_caught_up(self, timeout: float = 90) -> dict[int, int]:
        topic = self.settings.batch_loader.topic
        assert topic is not None
        end = end_offsets(self.settings.kafka, topic)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.thread.is_alive(), f"loader died: {self.error!r}"
            if all(self.stats.committed.get(p, -1) == o for p, o in end.items()):
                return end
            time.sleep(0.2)
        raise AssertionError(f"not caught up: committed {self.stats.committed}, end {end}")

    def close(self, timeout: float = 60) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "loader did not stop"


@dataclass
class LakeObject:
    key: str
    table: pa.Table
    topic: str
    partition: int
    first: int
    last: int


def read_lake(s3: S3Settings, prefix: str) -> tuple[list[LakeObject], list[Manifest]]:
    """Every data object and every manifest under ``prefix`` (read as the sensor reads it)."""
    client = make_s3_client(s3)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=s3.raw_bucket, Prefix=prefix
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
    objects, manifests = [], []
    for key in sorted(keys):
        body = client.get_object(Bucket=s3.raw_bucket, Key=key)["Body"].read()
        if key.startswith(manifests_prefix(prefix)):
            manifests.append(Manifest.from_json(body, key))
        elif key.endswith(".parquet"):
            topic, partition, first, last = parse_object_name(key)
            objects.append(
                LakeObject(key, pq.read_table(io.BytesIO(body)), topic, partition, first, last)
            )
    return objects, manifests


def loader_settings(
    platform: PlatformSettings, s3: S3Settings | None = None, **options: Any
) -> BatchLoaderSettings:
    tag = uuid.uuid4().hex[:10]
    topic = f"test.batch.{tag}"
    create_topic(platform.kafka, topic)
    create_topic(platform.kafka, f"{topic}.dlq", 1)
    opts = {
        "group_id": f"batch-{tag}",
        "topic": topic,
        "dlq_topic": f"{topic}.dlq",
        "flush_max_events": 25,
        "flush_max_age_s": 1.0,
        "retry": {"initial_s": 0.2, "max_s": 2.0},
        "metrics_port": 0,
        "poll_timeout_s": 0.2,
        "commit_interval_s": 0.5,
        **options,
    }
    return BatchLoaderSettings(
        kafka=platform.kafka,
        topics=platform.topics,
        s3=(s3 or platform.s3).model_copy(update={"raw_prefix": f"test-batch/{tag}/"}),
        batch_loader=BatchLoaderOptions.model_validate(opts),
    )
