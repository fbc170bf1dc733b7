"""Helpers of the real-time loader tests: records, topics, a loader thread, read-backs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import TopicPartition

from contract.failures import ErrorDetail, FailedEvent, FailureType, OriginalPayload, Stage
from contract.records import (
    CollectorMetadata,
    EnrichedEvent,
    Enrichment,
    GeoInfo,
    Lineage,
    MoneyInfo,
    UserAgentInfo,
)
from resources.kafka import make_kafka_admin, make_kafka_consumer, make_kafka_producer
from resources.search import SearchStore
from resources.settings import TopicNames
from resources.topics import ensure_topics, platform_topics
from streaming.realtime_loader import RealtimeLoader, RealtimeLoaderSettings
from tests.kafka_helpers import end_offsets

PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"
PURCHASE = "iglu:com.tributary.shop/purchase/jsonschema/1-0-0"


def enriched_event(
    source: str,
    when: datetime | None = None,
    payload: dict[str, Any] | None = None,
    event_id: str | None = None,
    geo: bool = True,
) -> EnrichedEvent:
    when = when or datetime.now(UTC)
    purchase = payload is None and uuid.uuid4().int % 2 == 0
    return EnrichedEvent(
        event_id=event_id or str(uuid.uuid4()),
        event_type=PURCHASE if purchase else PAGE_VIEW,
        event_timestamp=when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        source=source,
        payload=payload
        if payload is not None
        else (
            {"order_id": "o-1", "total": 42.5, "currency": "USD"}
            if purchase
            else {"page_url": "https://shop.example.com/", "referrer": None}
        ),
        context={"user_id": f"u-{uuid.uuid4().int % 50}", "session_id": "s-1", "ab": "b"},
        collector=CollectorMetadata(
            received_at=when + timedelta(milliseconds=20),
            collector_id="collector-1",
            request_id=str(uuid.uuid4()),
            producer="web-shop",
            client_ip="203.0.113.7",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            path="rest",
        ),
        enrichment=Enrichment(
            user_agent=UserAgentInfo(
                browser_family="Firefox", browser_version="133", os_family="Linux"
            ),
            geo=GeoInfo(
                country_code="FR",
                country_name="France",
                city="Paris",
                latitude=48.8566,
                longitude=2.3522,
                source="geolite2-2026-11",
            )
            if geo
            else None,
            money=[
                MoneyInfo(
                    field="/total",
                    amount=42.5,
                    currency="USD",
                    amount_eur=39.1,
                    rates_version="ecb-2026-11-27",
                )
            ]
            if purchase
            else [],
            scores={"bot_probability": 0.02},
            model_version="bot-1.3",
        ),
        lineage=Lineage(
            enricher_version="0.1.0",
            schema_version="1-0-0",
            source_topic="tributary.events.raw",
            source_partition=0,
            source_offset=uuid.uuid4().int % 10_000,
            enriched_at=when + timedelta(milliseconds=50),
        ),
    )


def collector_dead_letter(
    event_id: str | None, reason: FailureType = FailureType.ENVELOPE_VIOLATION
) -> FailedEvent:
    """A refusal as the collector writes it: its ``event_id`` is whatever the producer sent."""
    return FailedEvent(
        failure_type=reason,
        stage=Stage.COLLECTOR,
        errors=[ErrorDetail(field="/event_id", reason="must be a UUID")],
        original=OriginalPayload(encoding="json", data={"event_id": event_id, "payload": {}}),
        event_id=event_id,
        received_at=datetime.now(UTC),
        metadata={"producer": "web-shop", "request_id": str(uuid.uuid4())},
    )


def failed_event(event_id: str | None, when: datetime | None = None) -> FailedEvent:
    return FailedEvent(
        failure_type=FailureType.SCHEMA_VIOLATION,
        stage=Stage.ENRICHER,
        errors=[ErrorDetail(field="/payload/page_url", reason="'x' is not a 'uri'")],
        original=OriginalPayload(encoding="json", data={"event_id": event_id, "payload": {}}),
        event_id=event_id,
        event_type=PAGE_VIEW if event_id else None,
        failed_at=when or datetime.now(UTC),
        metadata={"producer": "web-shop"},
    )


def unique_settings(base: RealtimeLoaderSettings | Any, **loader: Any) -> RealtimeLoaderSettings:
    """Loader settings with topics, index prefix and group of their own (exact counts)."""
    tag = uuid.uuid4().hex[:10]
    names = TopicNames(
        raw=f"rtl-{tag}.raw",
        collector_dlq=f"rtl-{tag}.raw.dlq",
        enriched=f"rtl-{tag}.enriched",
        enriched_dlq=f"rtl-{tag}.enriched.dlq",
        loader_dlq=f"rtl-{tag}.loader.dlq",
    )
    data = base.model_dump()
    data["kafka"]["partitions"] = 3
    data["topics"] = names.model_dump()
    data["search"]["index_prefix"] = f"rtl-{tag}"
    data["realtime_loader"] = {
        "group_id": f"rtl-{tag}",
        "batch_size": 50,
        "max_wait_s": 0.2,
        "poll_timeout_s": 0.2,
        "retry": {"initial_s": 0.2, "max_s": 2.0},
        "metrics_port": 0,
        **loader,
    }
    settings = RealtimeLoaderSettings.model_validate(data)
    specs = [
        s
        for s in platform_topics(settings.topics, settings.kafka)
        if s.name in (names.enriched, names.enriched_dlq, names.collector_dlq, names.loader_dlq)
    ]
    ensure_topics(make_kafka_admin(settings.kafka), specs)
    return settings


def drop_topics(settings: RealtimeLoaderSettings) -> None:
    t = settings.topics
    admin = make_kafka_admin(settings.kafka)
    topics = [t.enriched, t.enriched_dlq, t.collector_dlq, t.loader_dlq]
    for future in admin.delete_topics(topics).values():
        with suppress(Exception):
            future.result()


def produce(settings: RealtimeLoaderSettings, topic: str, records: list[Any]) -> None:
    producer = make_kafka_producer(settings.kafka)
    for r in records:
        value = r if isinstance(r, bytes) else r.model_dump_json().encode()
        key = None if isinstance(r, bytes) else (getattr(r, "event_id", None) or None)
        producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0


def committed(settings: RealtimeLoaderSettings, topic: str, group: str | None = None) -> int:
    """The sum of the group's committed offsets on ``topic``."""
    consumer = make_kafka_consumer(settings.kafka, group or settings.realtime_loader.group_id)
    try:
        partitions = [TopicPartition(topic, p) for p in end_offsets(settings.kafka, topic)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
    finally:
        consumer.close()


def produced(settings: RealtimeLoaderSettings, topic: str) -> int:
    return sum(end_offsets(settings.kafka, topic).values())


def caught_up(settings: RealtimeLoaderSettings) -> bool:
    t = settings.topics
    return all(
        committed(settings, x) == produced(settings, x)
        for x in (t.enriched, t.enriched_dlq, t.collector_dlq)
    )


@contextmanager
def loader_thread(settings: RealtimeLoaderSettings) -> Iterator[RealtimeLoader]:
    """Run the loader in a thread; stop it on exit and re-raise what it raised."""
    stop = threading.Event()
    loader = RealtimeLoader(settings, stop)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            loader.run()
        except BaseException as exc:
            errors.append(exc)
            raise

    thread = threading.Thread(target=target, name="realtime-loader", daemon=True)
    thread.start()
    try:
        yield loader
        assert not errors, f"the loader died: {errors[0]!r}"
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the loader did not stop within 60s"
    assert not errors, f"the loader died: {errors[0]!r}"


def all_docs(store: SearchStore, pattern: str) -> list[dict[str, Any]]:
    """Every document of ``pattern`` (with ``_version``), after a refresh."""
    store.refresh(pattern)
    answer = store.search(pattern, {"query": {"match_all": {}}, "size": 10_000, "version": True})
    return list(answer["hits"]["hits"])


def drop_indices(store: SearchStore, prefix: str) -> None:
    """Delete a test's indices and templates (by name: Elasticsearch refuses wildcards)."""
    for name in store.indices(f"{prefix}-*", closed=True):
        store.delete_index(name)
    for family in ("events", "deadletters"):
        store.delete_template(f"{prefix}-{family}")
