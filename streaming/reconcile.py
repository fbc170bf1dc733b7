"""Reconciliation by ``event_id`` across the stages of the stream, from a starting point on.

A :class:`Reconciler` notes where every topic ends when it is created, then reads what each
stage wrote after that: the events the collector accepted (raw topic) and refused (collector
dead letters), what the enricher wrote (enriched topic, ``read_committed``, and its dead
letters), what the real-time loader indexed or refused (search-store documents by ``_id``: the
events, the enricher's dead letters by event id and the collector's by record; the loader dead
letters) and what the batch loader wrote (Parquet rows of the raw zone, found
through the manifests written since the start). :meth:`Reconciler.collect` returns a
:class:`Reconciliation` whose :meth:`~Reconciliation.problems` names every event that is
missing or duplicated anywhere. :meth:`Reconciler.settle` collects until nothing is missing
(or time runs out, or a process of the stream exited), and :func:`producer_problems` holds the
stages against what the producers were told. The demo prints both; the reliability tests
assert on them.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import pyarrow.parquet as pq

from contract.raw_zone import Manifest, manifests_prefix, manifests_since, parse_object_name
from contract.search import DEADLETTERS, EVENTS, index_pattern, record_id
from resources.kafka import TopicReader
from resources.s3 import make_s3_client
from resources.search import SearchStore, make_search_store
from resources.settings import PlatformSettings

# Ids per ``ids`` query of the search store; hits per query stay below index.max_result_window.
_IDS_PER_QUERY = 4000


@dataclass
class Reconciliation:
    """What every stage holds of the events accepted since the reconciler started."""

    accepted: Counter[str] = field(default_factory=Counter)
    collector_dead_letters: Counter[str] = field(default_factory=Counter)  # by failure type
    collector_dead_letter_ids: set[str] = field(default_factory=set)  # documents' _id
    enriched: Counter[str] = field(default_factory=Counter)
    enriched_dead_letters: Counter[str] = field(default_factory=Counter)
    enriched_dead_letter_types: dict[str, str] = field(default_factory=dict)  # by event id
    loader_dead_letters: Counter[str] = field(default_factory=Counter)
    indexed_events: Counter[str] = field(default_factory=Counter)
    indexed_dead_letters: Counter[str] = field(default_factory=Counter)
    indexed_collector_dead_letters: Counter[str] = field(default_factory=Counter)
    lake_rows: Counter[str] = field(default_factory=Counter)
    lake_objects: int = 0
    lake_dates: set[str] = field(default_factory=set)  # event dates the objects belong to
    overlapping_objects: list[tuple[str, str]] = field(default_factory=list)

    @property
    def enriched_dead_letter_reasons(self) -> Counter[str]:
        """The enricher's dead letters of this run's events, by failure type.

        The enricher may also be working off older records of the raw topic (a backlog from
        before, another producer's test data); their dead letters are not this run's. A dead
        letter without an event id cannot be one of this run's: the collector only writes
        events with one.
        """
        return Counter(t for i, t in self.enriched_dead_letter_types.items() if i in self.accepted)

    def ours(self, ids: Iterable[str]) -> int:
        """How many of ``ids`` are this run's events (a stage may also hold older ones)."""
        return sum(1 for i in ids if i in self.accepted)

    def problems(self) -> list[str]:
        """Every way in which the stages disagree; empty when each event is where it belongs."""
        found: list[str] = []

        def report(what: str, ids: Iterable[str]) -> None:
            ids = sorted(ids)
            if ids:
                found.append(f"{len(ids)} {what}, e.g. {', '.join(ids[:3])}")

        accepted = set(self.accepted)
        # Only this run's events: the workers may also be catching up on older ones.
        enriched = set(self.enriched) & accepted
        dead = set(self.enriched_dead_letters) & accepted
        report("accepted more than once", (i for i, n in self.accepted.items() if n > 1))
        report("accepted but neither enriched nor dead-lettered", accepted - enriched - dead)
        report("both enriched and dead-lettered", enriched & dead)
        report("enriched twice", (i for i in enriched if self.enriched[i] > 1))
        report("dead-lettered twice", (i for i in dead if self.enriched_dead_letters[i] > 1))
        rejected = set(self.loader_dead_letters)
        report("enriched but not indexed", enriched - set(self.indexed_events) - rejected)
        report("indexed twice", (i for i in enriched if self.indexed_events[i] > 1))
        report("dead letters not indexed", dead - set(self.indexed_dead_letters))
        report("dead letters indexed twice", (i for i in dead if self.indexed_dead_letters[i] > 1))
        collector = self.collector_dead_letter_ids
        indexed = self.indexed_collector_dead_letters
        report("collector dead letters not indexed", collector - set(indexed))
        report("collector dead letters indexed twice", (i for i in collector if indexed[i] > 1))
        report("enriched but not in the lake", enriched - set(self.lake_rows))
        report("in the lake twice", (i for i in enriched if self.lake_rows[i] > 1))
        for a, b in self.overlapping_objects:
            found.append(f"lake objects {a} and {b} cover the same offsets")
        return found

    @property
    def settled(self) -> bool:
        """True when every accepted event has reached the end of each of its paths."""
        return not self.problems()


class ProducerFigures(Protocol):
    """What a producer was told by the collector (the emitter's statistics have these)."""

    @property
    def sent(self) -> int: ...

    @property
    def accepted(self) -> int: ...

    @property
    def rejected(self) -> Mapping[str, int]: ...  # by reason


def producer_problems(producers: Iterable[ProducerFigures], result: Reconciliation) -> list[str]:
    """Where the topics disagree with what the collector told the producers.

    What it acknowledged is on the raw topic; what it refused is on its dead-letter topic, by
    the same reasons; and every event sent was one or the other.
    """
    sent = accepted = 0
    rejected: Counter[str] = Counter()
    for figures in producers:
        sent += figures.sent
        accepted += figures.accepted
        rejected.update(figures.rejected)
    on_raw = len(result.accepted)
    dead = sum(result.collector_dead_letters.values())
    found = []
    if accepted != on_raw:
        found.append(f"the collector acknowledged {accepted}, the raw topic holds {on_raw}")
    if +rejected != +result.collector_dead_letters:
        found.append("the collector's dead letters differ from what the producers were told")
    if on_raw + dead != sent:
        found.append(f"{sent} sent, but {on_raw + dead} accepted or dead-lettered")
    return found


@dataclass
class Settled:
    """The reconciliation when :meth:`Reconciler.settle` stopped, and why it stopped."""

    result: Reconciliation
    seconds: float
    exited: list[str] = field(default_factory=list)  # processes of the stream that exited


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _event_id(value: bytes | None) -> str | None:
    try:
        data = json.loads(value or b"")
    except ValueError:
        return None
    return data.get("event_id") if isinstance(data, dict) else None


class Reconciler:
    """Follows every stage from the moment it is created (or from given raw offsets)."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.lake_prefix = settings.s3.raw_prefix
        self.started_at = datetime.now(UTC)
        topics = settings.topics
        self._readers = {
            name: TopicReader(settings.kafka, topic)
            for name, topic in (
                ("raw", topics.raw),
                ("collector_dlq", topics.collector_dlq),
                ("enriched", topics.enriched),
                ("enriched_dlq", topics.enriched_dlq),
                ("loader_dlq", topics.loader_dlq),
            )
        }
        self._state = Reconciliation()
        self._manifest_cursor = manifests_since(self.lake_prefix, self.started_at)
        self._objects: dict[str, list[str]] = {}  # data key -> event ids in it
        self._s3 = make_s3_client(settings.s3)
        self._search: SearchStore = make_search_store(settings.search)

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._search.close()

    def __enter__(self) -> Reconciler:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def _read_topics(self) -> None:
        state = self._state
        for msg in self._readers["raw"].read():
            if event_id := _event_id(msg.value()):
                state.accepted[event_id] += 1
        for msg in self._readers["collector_dlq"].read():
            state.collector_dead_letters[json.loads(msg.value() or b"{}").get("failure_type")] += 1
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            state.collector_dead_letter_ids.add(record_id(topic, partition, offset))
        for msg in self._readers["enriched"].read():
            if event_id := _event_id(msg.value()):
                state.enriched[event_id] += 1
        for msg in self._readers["enriched_dlq"].read():
            failed = json.loads(msg.value() or b"{}")
            if event_id := failed.get("event_id"):
                state.enriched_dead_letters[event_id] += 1
                state.enriched_dead_letter_types[event_id] = failed.get(
                    "failure_type", "unreadable"
                )
        for msg in self._readers["loader_dlq"].read():
            if event_id := _event_id(msg.value()):
                state.loader_dead_letters[event_id] += 1

    def _count_indexed(self, family: str, ids: list[str]) -> Counter[str]:
        pattern = index_pattern(self.settings.search.index_prefix, family)
        self._search.refresh(pattern)
        counts: Counter[str] = Counter()
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            answer = self._search.search(
                pattern,
                {"query": {"ids": {"values": chunk}}, "_source": False, "size": 2 * len(chunk)},
            )
            counts.update(hit["_id"] for hit in answer["hits"]["hits"])
        return counts

    def ingest_times(self) -> list[tuple[datetime, datetime]]:
        """When the collector received each of this run's indexed events, and when it was indexed.

        ``collector.received_at`` and ``loader.indexed_at`` of the events' documents.
        """
        state = self._state
        ids = sorted(i for i in state.indexed_events if i in state.accepted)
        pattern = index_pattern(self.settings.search.index_prefix, EVENTS)
        fields = ["collector.received_at", "loader.indexed_at"]
        times = []
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            answer = self._search.search(
                pattern,
                {"query": {"ids": {"values": chunk}}, "_source": fields, "size": 2 * len(chunk)},
            )
            for hit in answer["hits"]["hits"]:
                source = hit["_source"]
                received = source.get("collector", {}).get("received_at")
                indexed = source.get("loader", {}).get("indexed_at")
                if received and indexed:
                    times.append((_utc(received), _utc(indexed)))
        return times

    def _read_lake(self) -> None:
        bucket = self.settings.s3.raw_bucket
        paginator = self._s3.get_paginator("list_objects_v2")
        new_keys: set[str] = set()
        for page in paginator.paginate(
            Bucket=bucket,
            Prefix=manifests_prefix(self.lake_prefix),
            StartAfter=self._manifest_cursor,
        ):
            for item in page.get("Contents", []):
                self._manifest_cursor = max(self._manifest_cursor, item["Key"])
                body = self._s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                new_keys.add(Manifest.from_json(body, item["Key"]).key)
        for key in sorted(new_keys):  # a rewritten object replaces what was read of it
            data = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            table = pq.read_table(io.BytesIO(data), columns=["event_id"])
            self._objects[key] = table.column("event_id").to_pylist()

    def _overlaps(self) -> list[tuple[str, str]]:
        # Objects of one partition but different event hours interleave by design; within
        # one hour's folder no two may share an offset.
        by_partition: dict[tuple[str, str, int], list[tuple[int, int, str]]] = {}
        for key in self._objects:
            folder, name = key.rsplit("/", 1)
            topic, partition, first, last = parse_object_name(name)
            by_partition.setdefault((folder, topic, partition), []).append((first, last, key))
        found = []
        for ranges in by_partition.values():
            ranges.sort()
            reach, reaching = -1, ""  # the furthest offset covered so far, and by which object
            for first, last, key in ranges:
                if first <= reach:
                    found.append((reaching, key))
                if last > reach:
                    reach, reaching = last, key
        return found

    def settle(
        self,
        timeout: float,
        poll: float = 1.0,
        exited: Callable[[], list[str]] | None = None,
    ) -> Settled:
        """Collect until every accepted event is where it belongs, or ``timeout`` seconds.

        ``exited`` names the processes of the stream that are no longer running: when one
        has, waiting longer cannot help, and the wait ends at once.
        """
        started = time.monotonic()
        result = self.collect()
        while not result.settled and time.monotonic() - started < timeout:
            if exited is not None and (gone := exited()):
                return Settled(result, time.monotonic() - started, gone)
            time.sleep(poll)
            result = self.collect()
        return Settled(result, time.monotonic() - started)

    def collect(self) -> Reconciliation:
        """Read what the stages wrote since the last call and return the whole picture."""
        self._read_topics()
        state = self._state
        accepted = state.accepted
        state.indexed_events = self._count_indexed(
            EVENTS, sorted(i for i in state.enriched if i in accepted)
        )
        state.indexed_dead_letters = self._count_indexed(
            DEADLETTERS, sorted(i for i in state.enriched_dead_letters if i in accepted)
        )
        state.indexed_collector_dead_letters = self._count_indexed(
            DEADLETTERS, sorted(state.collector_dead_letter_ids)
        )
        self._read_lake()
        state.lake_rows = Counter(
            event_id for ids in self._objects.values() for event_id in ids if event_id in accepted
        )
        state.lake_objects = len(self._objects)
        state.lake_dates = {
            part.removeprefix("event_date=")
            for key in self._objects
            for part in key.split("/")
            if part.startswith("event_date=")
        }
        state.overlapping_objects = self._overlaps()
        return state
