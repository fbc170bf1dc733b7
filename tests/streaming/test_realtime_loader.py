"""The real-time loader against real Kafka and each real search engine."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from contract.failures import FailedEvent, FailureType, Stage
from contract.search import DEADLETTERS, EVENTS, index_name, record_id
from resources.search import SearchStore, make_search_store
from resources.settings import PlatformSettings
from stack.config import StackSettings
from stack.manager import Stack
from stack.private import private_stack_settings
from streaming.realtime_loader import RealtimeLoaderSettings, deadletter_id
from tests.kafka_helpers import read_since
from tests.streaming.realtime_helpers import (
    all_docs,
    caught_up,
    collector_dead_letter,
    committed,
    drop_indices,
    drop_topics,
    enriched_event,
    failed_event,
    loader_thread,
    produce,
    produced,
    unique_settings,
)
from tests.streaming.worker_helpers import wait_for


@pytest.fixture()
def loader_settings(
    kafka: PlatformSettings, search: PlatformSettings
) -> Iterator[RealtimeLoaderSettings]:
    settings = unique_settings(search)
    yield settings
    with make_search_store(settings.search) as store:
        drop_indices(store, settings.search.index_prefix)
    drop_topics(settings)


@pytest.fixture()
def client(loader_settings: RealtimeLoaderSettings) -> Iterator[SearchStore]:
    with make_search_store(loader_settings.search) as store:
        yield store


@pytest.mark.unit
def test_record_ids_follow_the_record() -> None:
    assert record_id("t", 1, 2) == record_id("t", 1, 2) != record_id("t", 1, 3)
    assert record_id("t", 1, 2) != record_id("u", 1, 2)


@pytest.mark.unit
def test_a_dead_letter_is_named_by_its_event_only_when_the_enricher_wrote_it() -> None:
    event_id = str(uuid.uuid4())
    enricher = failed_event(event_id)
    assert deadletter_id(enricher, "t.enriched.dlq", 0, 7, "t.raw.dlq") == event_id
    assert deadletter_id(failed_event(None), "t.enriched.dlq", 0, 7, "t.raw.dlq") == record_id(
        "t.enriched.dlq", 0, 7
    )
    # The collector's: by the record, whatever event id the producer sent.
    for refused in (collector_dead_letter(event_id), collector_dead_letter(None)):
        assert deadletter_id(refused, "t.raw.dlq", 2, 9, "t.raw.dlq") == record_id(
            "t.raw.dlq", 2, 9
        )


@pytest.mark.integration
@pytest.mark.slow
def test_events_and_dead_letters_indexed_exactly_once(
    loader_settings: RealtimeLoaderSettings, client: SearchStore
) -> None:
    settings = loader_settings
    prefix = settings.search.index_prefix
    today = datetime.now(UTC)
    yesterday = today - timedelta(days=1)
    # An index past retention and one within it; retention runs when the loader starts.
    old = index_name(prefix, EVENTS, (today - timedelta(days=45)).date())
    client.create_index(old)

    source = f"shop-{uuid.uuid4().hex[:8]}"
    events = [enriched_event(source, yesterday if i % 3 == 0 else today) for i in range(240)]
    events += [enriched_event(source, today, geo=False) for _ in range(10)]
    # A resend of the same event (same event_id): still one document.
    events.append(events[0])
    letters = [failed_event(str(uuid.uuid4())) for _ in range(6)] + [
        failed_event(None) for _ in range(4)
    ]
    # The collector's refusals: without an event id, with a malformed one, the same id twice
    # (two refused events, two documents), the id of one of the enricher's dead letters.
    refused = [
        collector_dead_letter(None, FailureType.MALFORMED),
        collector_dead_letter("evt-12345678"),
        collector_dead_letter("evt-12345678"),
        collector_dead_letter(letters[0].event_id, FailureType.UNKNOWN_SCHEMA),
        collector_dead_letter("x" * 2000),
    ]
    produce(settings, settings.topics.enriched, events)
    produce(settings, settings.topics.enriched_dlq, letters)
    produce(settings, settings.topics.collector_dlq, refused)
    refused_ids = {
        record_id(m.topic() or "", m.partition() or 0, m.offset() or 0)
        for m in read_since(settings.kafka, settings.topics.collector_dlq, {}, expect=5)
    }
    assert len(refused_ids) == 5

    with loader_thread(settings) as loader:
        wait_for(lambda: caught_up(settings), 90, "the loader to commit every offset")
        assert old in loader.stats.retention_deleted

    assert client.indices(old) == []
    expected = {e.event_id for e in events}
    docs = all_docs(client, f"{prefix}-events-*")
    assert len(docs) == len({d["_id"] for d in docs}) == len(expected) == 250
    assert {d["_id"] for d in docs} == expected
    assert {d["_index"] for d in docs} == {
        index_name(prefix, EVENTS, yesterday.date()),
        index_name(prefix, EVENTS, today.date()),
    }
    # The refresh interval is set explicitly, so an index nobody searches keeps refreshing.
    todays = index_name(prefix, EVENTS, today.date())
    index_settings = client.index_settings(todays)[todays]
    assert index_settings["refresh_interval"] == "500ms"
    for d in docs:
        day = datetime.fromisoformat(d["_source"]["event_timestamp"]).date()
        assert d["_index"] == index_name(prefix, EVENTS, day)

    # Explicit mappings: dates, geo_point, keywords, numeric scores.
    index = index_name(prefix, EVENTS, today.date())
    props = client.mapping(index)[index]["properties"]
    assert props["location"]["type"] == "geo_point"
    assert props["event_timestamp"]["type"] == "date"
    assert props["collector"]["properties"]["received_at"]["type"] == "date"
    assert props["lineage"]["properties"]["enriched_at"]["type"] == "date"
    assert props["event_id"]["type"] == "keyword"
    assert (
        props["enrichment"]["properties"]["scores"]["properties"]["bot_probability"]["type"]
        == "float"
    )
    near_paris = client.count(
        f"{prefix}-events-*",
        {"geo_distance": {"distance": "10km", "location": {"lat": 48.85, "lon": 2.35}}},
    )
    assert near_paris == 240
    by_source = client.count(f"{prefix}-events-*", {"term": {"source": source}})
    assert by_source == 250

    docs = all_docs(client, f"{prefix}-deadletters-*")
    dead = [d for d in docs if d["_source"]["stage"] == Stage.ENRICHER]
    assert len(dead) == 10
    with_id = {f.event_id for f in letters if f.event_id}
    assert with_id <= {d["_id"] for d in dead}
    assert sum(1 for d in dead if d["_id"] not in with_id) == 4
    assert all(d["_source"]["failure_type"] == "schema_violation" for d in dead)
    # Every refusal of the collector is one document of its own, stage "collector".
    collector = [d for d in docs if d["_source"]["stage"] == Stage.COLLECTOR]
    assert len(docs) == len(dead) + len(collector)
    assert {d["_id"] for d in collector} == refused_ids
    assert sorted(d["_source"]["failure_type"] for d in collector) == sorted(
        f.failure_type for f in refused
    )
    assert (
        sum(1 for d in docs if d["_source"]["event_id"] == letters[0].event_id) == 2
    )  # the enricher's and the collector's, apart
    dl_index = index_name(prefix, DEADLETTERS, today.date())
    dl_props = client.mapping(dl_index)[dl_index]["properties"]
    assert dl_props["original"] == {"type": "object", "enabled": False}
    assert dl_props["errors"]["properties"]["field"]["type"] == "keyword"

    # Committed offsets match what was produced; nothing went to the loader DLQ.
    assert committed(settings, settings.topics.enriched) == len(events)
    assert committed(settings, settings.topics.enriched_dlq) == len(letters)
    assert committed(settings, settings.topics.collector_dlq) == len(refused)
    assert produced(settings, settings.topics.loader_dlq) == 0

    # A replay from the start (a second group) overwrites: no duplicates.
    replay = settings.model_copy(
        update={
            "realtime_loader": settings.realtime_loader.model_copy(
                update={"group_id": f"{settings.realtime_loader.group_id}-replay"}
            )
        }
    )
    with loader_thread(replay):
        wait_for(lambda: caught_up(replay), 90, "the replay to commit every offset")
    again = all_docs(client, f"{prefix}-events-*")
    assert len(again) == 250 and {d["_id"] for d in again} == expected
    assert min(d["_version"] for d in again) >= 2
    assert len(all_docs(client, f"{prefix}-deadletters-*")) == 10 + len(refused)


@pytest.mark.integration
@pytest.mark.slow
def test_mapping_conflict_goes_to_loader_dlq_and_loading_goes_on(
    loader_settings: RealtimeLoaderSettings, client: SearchStore
) -> None:
    settings = loader_settings
    prefix = settings.search.index_prefix
    source = f"shop-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    first = enriched_event(source, now, payload={"page_url": "https://a/", "rating": 4.5})
    conflicting = enriched_event(
        source, now, payload={"page_url": "https://a/", "rating": {"stars": 5}}
    )
    after = [enriched_event(source, now) for _ in range(20)]
    produce(settings, settings.topics.enriched, [first])
    with loader_thread(settings):
        wait_for(lambda: caught_up(settings), 60, "the first event")
        produce(settings, settings.topics.enriched, [conflicting, *after])
        produce(settings, settings.topics.enriched, [b"{not json"])
        wait_for(lambda: caught_up(settings), 60, "the loader to get past the conflict")

    ids = {d["_id"] for d in all_docs(client, f"{prefix}-events-*")}
    assert ids == {first.event_id, *(e.event_id for e in after)}
    assert committed(settings, settings.topics.enriched) == 23

    dlq = read_since(settings.kafka, settings.topics.loader_dlq, {}, expect=2)
    failures = [FailedEvent.model_validate_json(m.value() or b"") for m in dlq]
    assert len(failures) == 2
    rejected = next(f for f in failures if f.event_id == conflicting.event_id)
    assert rejected.failure_type is FailureType.LOADER_REJECTION
    assert rejected.stage is Stage.REALTIME_LOADER
    assert rejected.errors[0].field == "/"
    # The engine's own words: OpenSearch's mapper_parsing_exception, Elasticsearch 8's
    # document_parsing_exception, naming the field either way.
    reason = rejected.errors[0].reason
    assert re.search(r"\b(mapper|document)_parsing_exception\b", reason), reason
    assert "payload.rating" in reason
    assert rejected.original.encoding == "json"
    assert rejected.original.data["event_id"] == conflicting.event_id
    assert rejected.original.data["payload"]["rating"] == {"stars": 5}
    garbage = next(f for f in failures if f.event_id is None)
    assert garbage.original.encoding == "base64"
    assert "invalid record" in garbage.errors[0].reason


@pytest.fixture()
def private_search(
    tmp_path: Path, search: PlatformSettings
) -> Iterator[tuple[Stack, StackSettings, str]]:
    """A search server of this test's own (of the engine in use), to stop and start at will."""
    engine = search.search.engine.value
    settings = private_stack_settings(tmp_path / "state")
    settings.search.engine = search.search.engine
    stack = Stack(settings)
    stack.up([engine])
    yield stack, settings, engine
    stack.down([engine])


@pytest.mark.integration
@pytest.mark.slow
def test_search_outage_loses_and_duplicates_nothing(
    kafka: PlatformSettings, private_search: tuple[Stack, StackSettings, str]
) -> None:
    stack, private, engine = private_search
    settings = unique_settings(kafka.model_copy(update={"search": private.search}))
    client = make_search_store(settings.search)
    prefix = settings.search.index_prefix
    source = f"shop-{uuid.uuid4().hex[:8]}"
    try:
        first = [enriched_event(source) for _ in range(60)]
        produce(settings, settings.topics.enriched, first)
        with loader_thread(settings) as loader:
            wait_for(lambda: caught_up(settings), 60, "the first events")
            stack.down([engine])
            during = [enriched_event(source) for _ in range(80)]
            produce(settings, settings.topics.enriched, during)
            produce(settings, settings.topics.enriched_dlq, [failed_event(None)])
            time.sleep(5)
            # Nothing is committed while the search store is down.
            assert committed(settings, settings.topics.enriched) == 60
            assert committed(settings, settings.topics.enriched_dlq) == 0
            assert loader.stats.retries > 0
            stack.up([engine])
            wait_for(lambda: caught_up(settings), 120, "the loader to catch up after the outage")
        docs = all_docs(client, f"{prefix}-events-*")
        expected = {e.event_id for e in first + during}
        assert len(docs) == len(expected) == 140 and {d["_id"] for d in docs} == expected
        assert len(all_docs(client, f"{prefix}-deadletters-*")) == 1
        assert produced(settings, settings.topics.loader_dlq) == 0
    finally:
        client.close()
        drop_topics(settings)


@pytest.mark.unit
def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_REALTIME_LOADER__BATCH_SIZE", "7")
    monkeypatch.setenv("TRIBUTARY_SEARCH__INDEX_PREFIX", "x")
    settings = RealtimeLoaderSettings()
    assert settings.realtime_loader.batch_size == 7
    assert settings.search.index_prefix == "x"
    assert settings.realtime_loader.index_replicas == 0
    assert orjson.loads(settings.realtime_loader.model_dump_json())["retention_days"] == 30
