"""Records nested deeper than the platform's limit, downstream of the collector.

A raw record, an enriched record or a dead letter may come from anywhere that can write to
Kafka. Deep ones must become dead letters (which themselves serialise and parse again), never
a crash that stops a worker on the same record over and over. Each stage's own code runs;
Kafka and OpenSearch are small fakes here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.exceptions import RequestValidationError

from contract.failures import FailedEvent, FailureType
from contract.registry import SchemaRegistry
from enrichment.api import _parse
from resources.search import make_search_store
from resources.settings import PlatformSettings
from streaming import dlq
from streaming.batch_loader import BatchLoaderSettings, LoaderStats, _Loader
from streaming.enricher import validate
from streaming.realtime_loader import RealtimeLoader, RealtimeLoaderSettings
from tests.streaming.enricher_helpers import raw_records
from tests.streaming.realtime_helpers import enriched_event

pytestmark = pytest.mark.unit

LIMIT = PlatformSettings().max_json_depth
PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"


def nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def nested_text(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def with_payload(record: dict[str, Any], levels: int) -> bytes:
    """``record`` with a payload ``levels`` deep, as text (no encoder writes 5,000 levels)."""
    return orjson.dumps({**record, "payload": "@"}).replace(b'"@"', nested_text(levels))


class Msg:
    """The calls the stages make on a consumed Kafka message."""

    def __init__(self, topic: str, value: bytes, key: bytes | None = b"user_id:u-1") -> None:
        self._topic, self._value, self._key = topic, value, key

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


class Producer:
    """Keeps what is produced; reports every delivery at once."""

    def __init__(self) -> None:
        self.produced: list[tuple[str, bytes, bytes | str | None]] = []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | str | None = None,
        on_delivery: Callable[..., None] | None = None,
        **_: Any,
    ) -> None:
        self.produced.append((topic, value, key))
        if on_delivery is not None:
            on_delivery(None, None)

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0

    def __getattr__(self, name: str) -> Callable[..., None]:
        # Transactions (init, begin, send offsets, commit): nothing to do in memory.
        return lambda *args, **kwargs: None


@pytest.mark.parametrize("levels", [LIMIT, LIMIT + 1, 300, 5_000])
def test_the_enricher_dead_letters_a_deep_raw_record_as_malformed(levels: int) -> None:
    [good], _, _ = raw_records(1, bad_share=0.0)
    record = orjson.loads(good)
    deep = with_payload({**record, "event_type": PAGE_VIEW}, levels - 1)
    valid, outcome = validate([Msg("raw", deep)], SchemaRegistry.from_directory(), LIMIT)  # type: ignore[list-item]
    [(key, value)] = outcome.dead
    assert valid == [] and key == b"user_id:u-1"
    failed = FailedEvent.model_validate_json(value)
    if levels <= LIMIT:  # within the limit: judged on its payload, kept as JSON
        assert failed.failure_type is FailureType.SCHEMA_VIOLATION
        assert failed.original.encoding == "json"
        assert failed.event_id == record["event_id"]
    else:
        assert failed.failure_type is FailureType.MALFORMED
        assert failed.errors[0].reason == f"nested more than {LIMIT} levels deep (the limit)"
        assert failed.original.encoding == "base64" and failed.original.to_bytes() == deep


@pytest.mark.parametrize(
    "changes",
    [
        {"event_type": "iglu:x/y/jsonschema/1-0-0", "event_id": 5},
        {"event_type": "iglu:x/y/jsonschema/1-0-0", "event_id": "x" * 100_000},
        {"event_type": "iglu:x/y/jsonschema/1-0-0", "collector": "not an object"},
        {"event_type": "iglu:x/y/jsonschema/1-0-0", "collector": {"received_at": "yesterday"}},
        {"event_type": ["not", "a", "string"]},
    ],
)
def test_the_enricher_dead_letters_a_raw_record_with_odd_fields(changes: dict[str, Any]) -> None:
    """A record written by something other than the collector: a dead letter, not a crash."""
    [good], _, _ = raw_records(1, bad_share=0.0)
    record = {**orjson.loads(good), **changes}
    valid, outcome = validate(
        [Msg("raw", orjson.dumps(record))],  # type: ignore[list-item]
        SchemaRegistry.from_directory(),
        LIMIT,
    )
    assert valid == []
    [(_, value)] = outcome.dead
    failed = FailedEvent.model_validate_json(value)
    assert failed.failure_type is FailureType.UNKNOWN_SCHEMA
    assert failed.original.data == record
    assert failed.event_id in (None, record["event_id"]) and len(failed.event_id or "") <= 256


@pytest.fixture()
def realtime_loader() -> RealtimeLoader:
    settings = RealtimeLoaderSettings()
    # A store that is never called: the records are refused before any bulk request.
    return RealtimeLoader(settings, threading.Event(), store=make_search_store(settings.search))


@pytest.mark.parametrize("levels", [250, 300, 5_000])
def test_the_realtime_loader_dead_letters_a_deep_enriched_record(
    realtime_loader: RealtimeLoader, levels: int
) -> None:
    topics = realtime_loader.settings.topics
    record = enriched_event("shop").model_dump(mode="json")
    deep = with_payload(record, levels)
    doc = realtime_loader._prepare(Msg(topics.enriched, deep))  # type: ignore[arg-type]
    assert doc.error and "invalid record" in doc.error
    producer = Producer()
    realtime_loader._dead_letter([doc], producer)  # type: ignore[arg-type]
    [(topic, value, key)] = producer.produced
    assert topic == topics.loader_dlq and key == b"user_id:u-1"
    failed = FailedEvent.model_validate_json(value)
    assert failed.failure_type is FailureType.LOADER_REJECTION
    assert failed.original.encoding == "base64" and failed.original.to_bytes() == deep


def test_the_realtime_loader_indexes_a_record_within_the_limit_as_usual(
    realtime_loader: RealtimeLoader,
) -> None:
    record = enriched_event("shop", payload=nested(LIMIT - 1))
    msg = Msg(realtime_loader.settings.topics.enriched, record.model_dump_json().encode())
    doc = realtime_loader._prepare(msg)  # type: ignore[arg-type]
    assert doc.error is None and doc.source is not None
    assert doc.source["payload"] == nested(LIMIT - 1)


@pytest.mark.parametrize("levels", [300, 5_000])
def test_the_batch_loader_dead_letters_a_deep_enriched_record_under_its_key(levels: int) -> None:
    loader = _Loader(BatchLoaderSettings(), LoaderStats(), None)
    producer = Producer()
    loader.producer = producer  # type: ignore[assignment]
    deep = with_payload(enriched_event("shop").model_dump(mode="json"), levels)
    loader.handle(Msg(loader.topic, deep, key=b"session_id:s-1"))  # type: ignore[arg-type]
    [(topic, value, key)] = producer.produced
    assert topic == loader.dlq_topic and key == b"session_id:s-1"
    failed = FailedEvent.model_validate_json(value)
    assert failed.original.encoding == "base64" and failed.original.to_bytes() == deep
    assert loader.stats.dead_letters == 1


def test_the_enrichment_api_refuses_a_deep_request_as_invalid() -> None:
    [good], _, _ = raw_records(1, bad_share=0.0)
    record = orjson.loads(good)
    at_limit = b'{"events": [' + with_payload(record, LIMIT - 1) + b"]}"
    assert _parse(at_limit, LIMIT).events[0].payload == nested(LIMIT - 1)
    for levels in (LIMIT, 5_000):
        with pytest.raises(RequestValidationError) as refused:
            _parse(b'{"events": [' + with_payload(record, levels) + b"]}", LIMIT)
        assert "levels deep" in str(refused.value.errors())


class Consumer:
    """A consumer whose partition holds ``messages``; consumed once."""

    def __init__(self, messages: list[Msg]) -> None:
        self.messages = messages

    def consume(self, _n: int, _timeout: float) -> list[Msg]:
        out, self.messages = self.messages, []
        return out

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def dead_letters(settings: PlatformSettings) -> list[Msg]:
    """An enriched dead letter, one whose original nests 5,000 deep, and one that is not JSON."""
    [good], _, _ = raw_records(1, bad_share=0.0)
    failed = {
        "failure_type": "enrichment_failed",
        "stage": "enricher",
        "errors": [{"field": "/", "reason": "enrichment unavailable"}],
        "original": {"encoding": "json", "data": orjson.loads(good)},
    }
    deep = orjson.dumps({**failed, "original": {"encoding": "json", "data": "@"}})
    topic = settings.topics.enriched_dlq
    return [
        Msg(topic, orjson.dumps(failed), key=b"user_id:u-9"),
        Msg(topic, deep.replace(b'"@"', nested_text(5_000))),
        Msg(topic, b"\xff"),
    ]


def test_inspect_counts_deep_dead_letters_as_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = PlatformSettings()

    class Reader:
        def __init__(self, *_: Any, **__: Any) -> None:
            pass

        def __enter__(self) -> Reader:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def read(self, _timeout: float) -> list[Msg]:
            return dead_letters(settings)

    monkeypatch.setattr(dlq, "TopicReader", Reader)
    result = dlq.inspect(settings, dlq.DeadLetterTopic.ENRICHED)
    assert (result.total, result.unreadable) == (3, 2)
    assert result.by_reason == {("enricher", "enrichment_failed"): 1}


def test_replay_skips_deep_dead_letters_and_keeps_the_record_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = PlatformSettings()
    producer = Producer()
    monkeypatch.setattr(
        dlq, "make_kafka_consumer", lambda *a, **k: Consumer(dead_letters(settings))
    )
    monkeypatch.setattr(dlq, "make_kafka_producer", lambda *a, **k: producer)
    report = dlq.replay(settings, dlq.DeadLetterTopic.ENRICHED, idle_s=0)
    assert report.moved == {"enrichment_failed": 1} and report.skipped == {"unreadable": 2}
    [(topic, _, key)] = producer.produced
    assert topic == settings.topics.raw
    assert key == b"user_id:u-9", "a replayed record goes back to its user's partition"
