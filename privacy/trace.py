"""Where one event is: every stage looked up by ``event_id``, with bounded look-ups only.

:func:`trace` returns a :class:`Trace`: one :class:`Step` per stage (collector dead letters, raw
topic, enriched topic, enricher dead letters, search store, loader dead letters, raw zone,
curated lake), each saying whether the event is there, where (coordinates, index, object and
row, table rows), why it stopped (failure type, JSON Pointer, failed check) and how it was
looked up. No look-up reads a whole topic, index or bucket:

1. the search store by ``_id`` (the event's document, the enricher's dead letter) and by
   ``event_id`` (the collector's dead letters, whose ``_id`` is their record's coordinates):
   one query of each index family;
2. what was found there gives the event's time, date, Kafka key and coordinates: the records
   the documents came from (``loader.partition``/``offset``) and the raw record the enricher
   read (``lineage``) are read at their offsets, one record each;
3. the raw zone, when the event's date is known (a hint or a document): the listing of its
   date's (or hour's) folder, and only the objects whose name covers the enriched record's
   offset (or, without it, the objects of the key's partition), their ``event_id`` column;
4. a topic with no known coordinates is read in a window of time around the event's time
   (``offsets_for_times``), only on the key's partition when the key is known (the
   producers' partitioner, :func:`resources.kafka.key_partition`);
5. the curated tables of the event's date through pyiceberg, with a row filter on the
   partition column and ``event_id`` (``session_id`` for the session).
"""

from __future__ import annotations

import enum
import io
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from contract.envelope import identity_key
from contract.jsontext import DEFAULT_MAX_DEPTH, JsonRefused, loads
from contract.raw_zone import parse_object_name
from contract.search import DEADLETTERS, EVENTS, index_pattern
from privacy.pseudonyms import Pseudonymiser, key_version_of
from resources.kafka import key_partition, make_kafka_consumer
from resources.lake import (
    DEDUPLICATED_EVENTS,
    FCT_EVENTS,
    FCT_SESSIONS,
    PARTITION_COLUMN,
    QUARANTINED_EVENTS,
    STG_EVENTS,
    VALIDATED_EVENTS,
    make_catalog,
    table_identifier,
)
from resources.s3 import make_s3_client
from resources.search import SearchStore, make_search_store
from resources.settings import PlatformSettings
from runtime.retry import RetrySettings

DEFAULT_WINDOW = timedelta(minutes=10)
"""Half the span of time a topic is read around the event's time when its offset is unknown."""
DEFAULT_LOOKBACK = timedelta(hours=1)
"""How far back the topics are read when nothing tells the event's time."""
# A windowed read of one topic stops after this long, whatever it has read.
_TOPIC_TIMEOUT_S = 60.0
_POLL_S = 0.5

T = TypeVar("T")


class Stage(enum.StrEnum):
    COLLECTOR_DLQ = "collector_dlq"
    RAW_TOPIC = "raw_topic"
    ENRICHED_TOPIC = "enriched_topic"
    ENRICHER_DLQ = "enricher_dlq"
    SEARCH = "search"
    LOADER_DLQ = "loader_dlq"
    RAW_ZONE = "raw_zone"
    CURATED = "curated"


class State(enum.StrEnum):
    FOUND = "found"
    """The event is there (or, curated: validated and kept)."""
    DEAD_LETTER = "dead_letter"
    """A dead letter of the event: the stage refused it, the reason says why."""
    QUARANTINED = "quarantined"
    """The curated lake's validation put it aside; the failed checks say why."""
    ABSENT = "absent"
    """Looked up where it would be, and not there."""
    NOT_LOOKED_UP = "not_looked_up"
    """Nothing told where to look without scanning (e.g. no date for the lake)."""


class Outcome(enum.StrEnum):
    COMPLETE = "complete"
    """Found in every stage of its path, up to its end: curated and kept."""
    PARTIAL = "partial"
    """Found, but it stopped somewhere (a dead letter, a quarantine) or a later stage lacks it."""
    NOT_FOUND = "not_found"
    """In no stage."""


@dataclass
class Step:
    stage: Stage
    state: State
    how: str
    where: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": str(self.stage),
            "state": str(self.state),
            "where": self.where,
            "reason": self.reason,
            "how": self.how,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Hints:
    """What the caller knows of the event; each narrows a look-up."""

    at: datetime | None = None
    """About when the collector received it."""
    day: date | None = None
    """Its event date (UTC), the lake's partition."""
    user_id: str | None = None
    """Its ``context.user_id``: the Kafka key, so one partition per topic."""
    window: timedelta = DEFAULT_WINDOW


@dataclass
class Trace:
    event_id: str
    steps: list[Step]
    outcome: Outcome
    stopped_at: Stage | None
    why: str
    seconds: float

    def step(self, stage: Stage) -> Step:
        return next(s for s in self.steps if s.stage is stage)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "outcome": str(self.outcome),
            "stopped_at": None if self.stopped_at is None else str(self.stopped_at),
            "why": self.why,
            "seconds": round(self.seconds, 4),
            "stages": [s.as_dict() for s in self.steps],
        }

    def lines(self) -> list[str]:
        """One line per stage, then the outcome: what ``tributary trace`` prints."""
        out = []
        for s in self.steps:
            where = ", ".join(f"{k}={_short(v)}" for k, v in s.where.items())
            reason = f" ({s.reason})" if s.reason else ""
            line = f"{s.stage:<15} {s.state:<14}{reason}"
            if where:
                line += f"  {where}"
            out.append(f"{line}  [{s.how}; {s.seconds * 1000:.0f} ms]")
        out.append(f"{self.outcome}: {self.why}")
        return out


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _timed(step: Step, started: float) -> Step:
    step.seconds = time.monotonic() - started
    return step


def _reason(failed: dict[str, Any]) -> str:
    errors = failed.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    text = str(failed.get("failure_type", "unknown"))
    if first:
        text += f" at {first.get('field', '/')}: {first.get('reason', '')}"
    return text


def _pointer(failed: dict[str, Any]) -> str | None:
    errors = failed.get("errors") or []
    return errors[0].get("field") if errors and isinstance(errors[0], dict) else None


@dataclass
class _Known:
    """What the look-ups so far tell about the event."""

    at: datetime | None = None
    event_timestamp: datetime | None = None
    day: date | None = None
    key: str | None = None
    # Records known by their (partition, offset): every copy the stages stamped.
    raw: list[tuple[int, int]] = field(default_factory=list)
    enriched: list[tuple[int, int]] = field(default_factory=list)
    enricher_dlq: list[tuple[int, int]] = field(default_factory=list)
    collector_dlq: list[tuple[int, int]] = field(default_factory=list)
    window: timedelta = DEFAULT_WINDOW

    def learn_event(self, data: dict[str, Any]) -> None:
        """Learn from an event's JSON (a raw or enriched record, or a search document)."""
        if self.key is None:
            self.key = identity_key(data.get("context"), data.get("event_id"))
        ts = _utc(data.get("event_timestamp"))
        if ts is not None and self.event_timestamp is None:
            self.event_timestamp = ts
            self.day = self.day or ts.date()
        collector = data.get("collector")
        if isinstance(collector, dict) and self.at is None:
            self.at = _utc(collector.get("received_at"))
        lineage = data.get("lineage")
        if isinstance(lineage, dict):
            p, o = lineage.get("source_partition"), lineage.get("source_offset")
            if isinstance(p, int) and isinstance(o, int):
                _add(self.raw, (p, o))


def _add(coords: list[tuple[int, int]], at: tuple[int, int]) -> None:
    if at not in coords:
        coords.append(at)


class Tracer:
    """The clients of every stage, opened once; :meth:`trace` looks up one event."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        # With pseudonyms on, the enricher's topics (and so the raw zone's objects) are keyed
        # by the pseudonym of the id; the raw topic and the collector's dead letters by the id.
        self.pseudonyms = Pseudonymiser.from_settings(settings.privacy.pseudonyms)
        self._search: SearchStore | None = None
        self._consumer: Consumer | None = None
        self._s3: Any = None
        self._catalog: Any = None

    @property
    def search(self) -> SearchStore:
        if self._search is None:
            self._search = make_search_store(self.settings.search)
        return self._search

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = make_kafka_consumer(
                self.settings.kafka,
                group_id=f"tributary-trace-{uuid.uuid4().hex}",
                **{"enable.auto.commit": False},
            )
        return self._consumer

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = make_s3_client(self.settings.s3)
        return self._s3

    def close(self) -> None:
        if self._search is not None:
            self._search.close()
        if self._consumer is not None:
            self._consumer.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the trace -----------------------------------------------------------------------

    def trace(self, event_id: str, hints: Hints | None = None) -> Trace:
        hints = hints or Hints()
        started = time.monotonic()
        known = _Known(at=hints.at, day=hints.day, window=hints.window)
        if hints.user_id is not None:
            known.key = identity_key({"user_id": hints.user_id}, event_id)
        topics = self.settings.topics
        search = self._search_step(event_id, known)
        steps: dict[Stage, Step] = {Stage.SEARCH: search}
        if known.day is not None:
            steps[Stage.RAW_ZONE] = self._raw_zone_step(event_id, known)
        steps[Stage.ENRICHED_TOPIC] = self._topic_step(
            Stage.ENRICHED_TOPIC, topics.enriched, event_id, known, known.enriched
        )
        steps[Stage.RAW_TOPIC] = self._topic_step(
            Stage.RAW_TOPIC, topics.raw, event_id, known, known.raw
        )
        steps[Stage.ENRICHER_DLQ] = self._topic_step(
            Stage.ENRICHER_DLQ, topics.enriched_dlq, event_id, known, known.enricher_dlq
        )
        steps[Stage.COLLECTOR_DLQ] = self._topic_step(
            Stage.COLLECTOR_DLQ, topics.collector_dlq, event_id, known, known.collector_dlq
        )
        steps[Stage.LOADER_DLQ] = self._topic_step(
            Stage.LOADER_DLQ, topics.loader_dlq, event_id, known, []
        )
        if Stage.RAW_ZONE not in steps:
            if known.day is not None:
                steps[Stage.RAW_ZONE] = self._raw_zone_step(event_id, known)
            else:
                steps[Stage.RAW_ZONE] = Step(
                    Stage.RAW_ZONE, State.NOT_LOOKED_UP, "no event date (pass --date)"
                )
        if known.day is not None:
            steps[Stage.CURATED] = self._curated_step(event_id, known.day)
        else:
            steps[Stage.CURATED] = Step(
                Stage.CURATED, State.NOT_LOOKED_UP, "no event date (pass --date)"
            )
        ordered = [steps[s] for s in Stage]
        outcome, stopped, why = judge(ordered)
        return Trace(event_id, ordered, outcome, stopped, why, time.monotonic() - started)

    # -- the search store ----------------------------------------------------------------

    def _search_step(self, event_id: str, known: _Known) -> Step:
        started = time.monotonic()
        prefix = self.settings.search.index_prefix
        topics = self.settings.topics
        events = self.search.search(
            index_pattern(prefix, EVENTS),
            {"query": {"ids": {"values": [event_id]}}, "size": 10},
        )["hits"]["hits"]
        dead = self.search.search(
            index_pattern(prefix, DEADLETTERS),
            {
                "query": {
                    "bool": {
                        "should": [
                            {"ids": {"values": [event_id]}},
                            {"term": {"event_id": event_id}},
                        ]
                    }
                },
                "size": 10,
            },
        )["hits"]["hits"]
        how = (
            f"{self.search.title} ids/term query of {index_pattern(prefix, EVENTS)} "
            f"and {index_pattern(prefix, DEADLETTERS)}"
        )
        where: dict[str, Any] = {}
        for hit in events:
            source = hit["_source"]
            known.learn_event(source)
            loader = source.get("loader") or {}
            if loader.get("topic") == topics.enriched:
                _add(known.enriched, (int(loader["partition"]), int(loader["offset"])))
            where = {"index": hit["_index"], "document": hit["_id"]}
        reason = None
        letters = []
        for hit in dead:
            source = hit["_source"]
            loader = source.get("loader") or {}
            if loader.get("topic") == topics.collector_dlq:
                _add(known.collector_dlq, (int(loader["partition"]), int(loader["offset"])))
            elif loader.get("topic") == topics.enriched_dlq:
                _add(known.enricher_dlq, (int(loader["partition"]), int(loader["offset"])))
            moment = _utc(source.get("received_at")) or _utc(source.get("failed_at"))
            known.at = known.at or moment
            original = source.get("original") or {}
            if original.get("encoding") == "json" and isinstance(original.get("data"), dict):
                known.learn_event(original["data"])
            letters.append(
                {
                    "index": hit["_index"],
                    "document": hit["_id"],
                    "stage": source.get("stage"),
                    "failure_type": source.get("failure_type"),
                }
            )
            reason = reason or f"{source.get('stage')}: {_reason(source)}"
        if letters:
            where["dead_letters"] = letters
        if events:
            state = State.FOUND
        elif letters:
            state = State.DEAD_LETTER
        else:
            state = State.ABSENT
        return _timed(Step(Stage.SEARCH, state, how, where, reason), started)

    # -- Kafka ---------------------------------------------------------------------------

    def _key_on(self, topic: str, key: str | None) -> str | None:
        """The record key the event has on ``topic``; None when it cannot be known."""
        if key is None or self.pseudonyms is None:
            return key
        topics = self.settings.topics
        if topic in (topics.raw, topics.collector_dlq):  # written before the enricher
            ident = key.partition(":")[2]
            return None if key_version_of(ident) is not None else key
        if topic == topics.loader_dlq:  # the enricher's records and the collector's, mixed
            return None
        pseudonymised = self.pseudonyms.kafka_key(key.encode("utf-8", "surrogateescape"))
        return None if pseudonymised is None else pseudonymised.decode("utf-8", "surrogateescape")

    def _partitions(self, topic: str) -> list[int]:
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {topic}: {meta.error}")
        return sorted(meta.partitions)

    def _topic_step(
        self,
        stage: Stage,
        topic: str,
        event_id: str,
        known: _Known,
        coords: list[tuple[int, int]],
    ) -> Step:
        started = time.monotonic()
        if coords:
            read = [self._read_at(topic, p, o) for p, o in sorted(coords)]
            found = [m for m in read if m is not None and _matches(m, event_id)]
            how = "read at " + ", ".join(f"{topic}[{p}]@{o}" for p, o in sorted(coords))
        else:
            partitions = self._partitions(topic)
            key = self._key_on(topic, known.key)
            if key is not None:
                partitions = [key_partition(key, len(partitions))]
            anchor = known.at
            window = known.window
            if anchor is None:
                end = datetime.now(UTC)
                begin = end - DEFAULT_LOOKBACK
            else:
                begin, end = anchor - window, anchor + window
            found, scanned = self._read_window(topic, partitions, begin, end, event_id)
            which = (
                f"partition {partitions[0]} (key {key})"
                if key is not None
                else f"{len(partitions)} partitions"
            )
            how = (
                f"{topic} {which} from {begin.isoformat(timespec='seconds')} "
                f"to {end.isoformat(timespec='seconds')}: {scanned} records read"
            )
        if not found:
            return _timed(Step(stage, State.ABSENT, how), started)
        msg = found[0]
        data = _decode(msg) or {}
        _, ts_ms = msg.timestamp()
        where: dict[str, Any] = {
            "topic": topic,
            "partition": msg.partition(),
            "offset": msg.offset(),
            "time": datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat() if ts_ms > 0 else None,
        }
        if len(found) > 1:
            where["copies"] = [(m.partition(), m.offset()) for m in found]
        state, reason = State.FOUND, None
        if stage in (Stage.COLLECTOR_DLQ, Stage.ENRICHER_DLQ, Stage.LOADER_DLQ):
            state, reason = State.DEAD_LETTER, _reason(data)
            where["pointer"] = _pointer(data)
            original = data.get("original") or {}
            if original.get("encoding") == "json" and isinstance(original.get("data"), dict):
                known.learn_event(original["data"])
            known.at = known.at or _utc(data.get("received_at"))
        else:
            known.learn_event(data)
            if stage is Stage.ENRICHED_TOPIC:
                for m in found:
                    _add(known.enriched, (m.partition() or 0, m.offset() or 0))
        return _timed(Step(stage, state, how, where, reason), started)

    def _read_at(self, topic: str, partition: int, offset: int) -> Message | None:
        consumer = self.consumer
        consumer.assign([TopicPartition(topic, partition, offset)])
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                msg = consumer.poll(0.1)
                if msg is None:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=10
                    )
                    if not low <= offset < high:
                        return None
                    continue
                if msg.error():
                    continue
                return msg if msg.offset() == offset else None
            return None
        finally:
            consumer.unassign()

    def _read_window(
        self,
        topic: str,
        partitions: list[int],
        begin: datetime,
        end: datetime,
        event_id: str,
    ) -> tuple[list[Message], int]:
        """The records of ``event_id`` stamped in ``[begin, end]`` on ``partitions``."""
        consumer = self.consumer
        begin_ms, end_ms = int(begin.timestamp() * 1000), int(end.timestamp() * 1000)
        starts = _retried(
            lambda: consumer.offsets_for_times(
                [TopicPartition(topic, p, begin_ms) for p in partitions], timeout=10
            )
        )
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        todo = {tp.partition: tp.offset for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        if not todo:
            return [], 0
        consumer.assign([TopicPartition(topic, p, o) for p, o in todo.items()])
        found: list[Message] = []
        paused: list[TopicPartition] = []
        scanned = 0
        needle = event_id.encode()
        deadline = time.monotonic() + _TOPIC_TIMEOUT_S
        try:
            while todo and time.monotonic() < deadline:
                batch = consumer.consume(1000, _POLL_S)
                for msg in batch:
                    p = msg.partition()
                    if msg.error() or p not in todo:
                        continue
                    scanned += 1
                    offset = msg.offset() or 0
                    if msg.timestamp()[1] > end_ms:
                        done = True
                    else:
                        value = msg.value() or b""
                        if needle in value and _matches(msg, event_id):
                            found.append(msg)
                        done = offset + 1 >= ends[p]
                    if done:
                        del todo[p]
                        paused.append(TopicPartition(topic, p))
                        consumer.pause(paused[-1:])
                if not batch:  # transaction markers at the end take offsets too
                    for tp in consumer.position([TopicPartition(topic, p) for p in todo]):
                        if tp.offset >= ends[tp.partition]:
                            del todo[tp.partition]
        finally:
            # A partition stays paused across assignments: the next read would get nothing.
            if paused:
                consumer.resume(paused)
            consumer.unassign()
        return found, scanned

    # -- the raw zone --------------------------------------------------------------------

    def _raw_zone_step(self, event_id: str, known: _Known) -> Step:
        started = time.monotonic()
        assert known.day is not None
        s3 = self.settings.s3
        folder = f"{s3.raw_prefix}event_date={known.day.isoformat()}/"
        if known.event_timestamp is not None:
            folder += f"event_hour={known.event_timestamp.hour:02d}/"
        keys = [
            item["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=s3.raw_bucket, Prefix=folder
            )
            for item in page.get("Contents", [])
            if item["Key"].endswith(".parquet")
        ]
        listed = len(keys)
        enriched_topic = self.settings.topics.enriched
        candidates = []
        for key in keys:
            try:
                topic, partition, _, _ = parse_object_name(key)
            except ValueError:
                continue
            if topic != enriched_topic:
                continue
            # Every copy of an event has its key, so its partition: a replayed or resent copy
            # lies in another object of the same partition.
            if known.enriched:
                if partition not in {p for p, _ in known.enriched}:
                    continue
            elif (key_on := self._key_on(enriched_topic, known.key)) is not None:
                count = len(self._partitions(enriched_topic))
                if partition != key_partition(key_on, count):
                    continue
            candidates.append(key)
        rows: list[dict[str, Any]] = []
        for key in candidates:
            body = self.s3.get_object(Bucket=s3.raw_bucket, Key=key)["Body"].read()
            rows += _rows_of(body, key, event_id)
        how = (
            f"listed s3://{s3.raw_bucket}/{folder} ({listed} objects), "
            f"read the event_id column of {len(candidates)}"
        )
        if not rows:
            return _timed(Step(Stage.RAW_ZONE, State.ABSENT, how), started)
        where = dict(rows[0])
        if len(rows) > 1:
            where["copies"] = [(r["object"], r["row"]) for r in rows]
        for row in rows:
            _add(known.enriched, (row["kafka_partition"], row["kafka_offset"]))
            _add(known.raw, (row["lineage_source_partition"], row["lineage_source_offset"]))
        if known.at is None and isinstance(where.get("collector_received_at"), str):
            known.at = _utc(where["collector_received_at"])
        return _timed(Step(Stage.RAW_ZONE, State.FOUND, how, where), started)

    # -- the curated lake ----------------------------------------------------------------

    def _curated_step(self, event_id: str, day: date) -> Step:
        started = time.monotonic()
        if self._catalog is None:
            self._catalog = make_catalog(self.settings)
        catalog = self._catalog
        spent: dict[str, float] = {"catalog": time.monotonic() - started}
        step = self._curated_rows(event_id, day, catalog, spent)
        step.how += " (" + ", ".join(f"{k} {v:.2f}s" for k, v in spent.items()) + ")"
        return _timed(step, started)

    def _curated_rows(
        self, event_id: str, day: date, catalog: Any, spent: dict[str, float]
    ) -> Step:
        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.expressions import And, EqualTo

        started = time.monotonic()
        how = f"pyiceberg, row filter {PARTITION_COLUMN} = {day.isoformat()} and event_id"

        def rows(
            table: tuple[str, str], on: date, column: str, value: str, *fields: str
        ) -> list[dict[str, Any]]:
            """The rows of ``table``'s partition ``on`` whose ``column`` is ``value``.

            Only ``fields`` (all without) are decoded: the wide columns (payload, context,
            scores) of every row the filter reads would cost more than the filter itself.
            """
            began = time.monotonic()
            try:
                iceberg = catalog.load_table(table_identifier(table))
            except NoSuchTableError:
                return []
            finally:
                spent[table[1]] = spent.get(table[1], 0.0) + time.monotonic() - began
            scan = iceberg.scan(
                row_filter=And(
                    EqualTo(term=PARTITION_COLUMN, value=on.isoformat()),
                    EqualTo(term=column, value=value),
                ),
                selected_fields=(column, *fields) if fields else ("*",),
            )
            found = [_json_value(r) for r in scan.to_arrow().to_pylist()]
            spent[table[1]] = spent.get(table[1], 0.0) + time.monotonic() - began
            return found

        def copy_of(row: dict[str, Any]) -> dict[str, Any]:
            return {
                "kafka_partition": row.get("kafka_partition"),
                "kafka_offset": row.get("kafka_offset"),
                "collector_received_at": row.get("collector_received_at"),
            }

        valid = rows(VALIDATED_EVENTS, day, "event_id", event_id, *_COPY)
        quarantined = rows(
            QUARANTINED_EVENTS, day, "event_id", event_id, *_COPY, "quarantine_reasons"
        )
        where: dict[str, Any] = {"event_date": day.isoformat()}
        if not valid and not quarantined:
            return _timed(Step(Stage.CURATED, State.ABSENT, how, where), started)
        if quarantined:
            reasons = [
                f"{r.get('column')}.{r.get('check')}: {r.get('reason')}"
                for row in quarantined
                for r in row.get("quarantine_reasons") or []
            ]
            where["quarantined"] = [copy_of(r) for r in quarantined]
            where["failed_checks"] = reasons
        if not valid:
            why = "; ".join(where["failed_checks"]) or "quarantined"
            return _timed(Step(Stage.CURATED, State.QUARANTINED, how, where, why), started)
        where["validated"] = [copy_of(r) for r in valid]
        kept = rows(DEDUPLICATED_EVENTS, day, "event_id", event_id, *_COPY)
        kept_on = day
        if not kept:  # lost to a copy of the day before (the lookback)
            kept_on = day - timedelta(days=1)
            kept = rows(DEDUPLICATED_EVENTS, kept_on, "event_id", event_id, *_COPY)
        if not kept:
            why = "validated, not in deduplicated_events (not curated yet, or removed)"
            return _timed(Step(Stage.CURATED, State.ABSENT, how, where, why), started)
        winner = copy_of(kept[0])
        where["kept"] = {**winner, "event_date": kept_on.isoformat()}
        removed = [c for c in where["validated"] if c != winner or kept_on != day]
        reason: str | None = None
        if removed:
            where["removed_as_duplicate"] = removed
            reason = f"{len(removed)} copy(ies) removed as duplicate(s)"
        stg = rows(STG_EVENTS, kept_on, "event_id", event_id, "session_id", "user_key")
        if stg:
            where["stg_events"] = {
                "session_id": stg[0].get("session_id"),
                "user_key": stg[0].get("user_key"),
            }
            facts = rows(FCT_EVENTS, kept_on, "event_id", event_id)
            if facts:
                where["fct_events"] = facts[0]
            session = stg[0].get("session_id")
            if session:
                where["fct_sessions"] = rows(FCT_SESSIONS, kept_on, "session_id", session)
        else:
            where["stg_events"] = None
        return _timed(Step(Stage.CURATED, State.FOUND, how, where, reason), started)


# The columns that tell one copy of an event from another.
_COPY = ("kafka_partition", "kafka_offset", "collector_received_at")


_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
    }
)


def _retried(call: Callable[[], T], attempts: int = 10) -> T:
    """``call()``, again after a pause while Kafka answers a retriable error.

    A partition whose leader is being elected (a new topic, a broker restarting) answers
    ``NOT_LEADER_FOR_PARTITION`` for a moment: the trace waits it out, with the platform's
    one backoff, rather than failing.
    """
    backoff = RetrySettings(initial_s=0.2, max_s=2.0).backoff()
    for attempt in range(attempts):
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            transient = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _TRANSIENT
            )
            if attempt == attempts - 1 or not transient:
                raise
            time.sleep(backoff.next())
    raise AssertionError("unreachable")


def _decode(msg: Message) -> dict[str, Any] | None:
    try:
        data = loads(msg.value() or b"", DEFAULT_MAX_DEPTH)
    except JsonRefused:
        return None
    return data if isinstance(data, dict) else None


def _matches(msg: Message, event_id: str) -> bool:
    """The record is an event with ``event_id``, or a dead letter of one."""
    data = _decode(msg)
    if data is None:
        return False
    if data.get("event_id") == event_id:
        return True
    original = data.get("original")
    if isinstance(original, dict) and isinstance(original.get("data"), dict):
        return bool(original["data"].get("event_id") == event_id)
    return False


_ROW_COLUMNS = (
    "event_timestamp",
    "collector_received_at",
    "kafka_partition",
    "kafka_offset",
    "lineage_source_partition",
    "lineage_source_offset",
)


def _rows_of(body: bytes, key: str, event_id: str) -> Iterator[dict[str, Any]]:
    """The rows of ``event_id`` in the raw-zone object ``key`` (its bytes)."""
    parquet = pq.ParquetFile(io.BytesIO(body))
    ids = parquet.read(columns=["event_id"]).column("event_id")
    mask = pc.equal(ids, pa.scalar(event_id))
    positions = pc.indices_nonzero(mask).to_pylist()
    if not positions:
        return
    table = parquet.read(columns=list(_ROW_COLUMNS))
    for row in positions:
        values = {c: _json_value(table.column(c)[row].as_py()) for c in _ROW_COLUMNS}
        yield {"object": key, "row": row, **values}


# -- the verdict ----------------------------------------------------------------------------

_PATH = (Stage.RAW_TOPIC, Stage.ENRICHED_TOPIC, Stage.SEARCH, Stage.RAW_ZONE, Stage.CURATED)


def judge(steps: list[Step]) -> tuple[Outcome, Stage | None, str]:
    """The outcome of a trace, the stage where the event stopped, and why, in words.

    Complete: accepted, enriched, indexed, in the raw zone and curated (validated and kept).
    Partial: a stage dead-lettered or quarantined it (its end, and the answer), or a later
    stage of its path lacks it. Not found: no stage has it.
    """
    by = {s.stage: s for s in steps}
    seen = [s for s in steps if s.state in (State.FOUND, State.DEAD_LETTER, State.QUARANTINED)]
    if not seen:
        return Outcome.NOT_FOUND, None, "in no stage"
    for stage in (Stage.COLLECTOR_DLQ, Stage.ENRICHER_DLQ, Stage.LOADER_DLQ):
        if by[stage].state is State.DEAD_LETTER:
            return Outcome.PARTIAL, stage, f"dead-lettered: {by[stage].reason}"
    if by[Stage.SEARCH].state is State.DEAD_LETTER:
        return Outcome.PARTIAL, Stage.SEARCH, f"dead-lettered: {by[Stage.SEARCH].reason}"
    if by[Stage.CURATED].state is State.QUARANTINED:
        return Outcome.PARTIAL, Stage.CURATED, f"quarantined: {by[Stage.CURATED].reason}"
    missing = [s for s in _PATH if by[s].state is not State.FOUND]
    if missing:
        last = [s for s in _PATH if by[s].state is State.FOUND]
        after = f" after {last[-1]}" if last else ""
        names = ", ".join(str(s) for s in missing)
        return Outcome.PARTIAL, missing[0], f"not in {names}{after}"
    reason = by[Stage.CURATED].reason
    return Outcome.COMPLETE, None, "curated" + (f"; {reason}" if reason else "")


def trace(settings: PlatformSettings, event_id: str, hints: Hints | None = None) -> Trace:
    """Look ``event_id`` up in every stage (see the module's docstring for how)."""
    with Tracer(settings) as tracer:
        return tracer.trace(event_id, hints)
