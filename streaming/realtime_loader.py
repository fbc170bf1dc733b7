"""The real-time loader: enriched events and the dead letters from Kafka into the search store.

One consumer group reads the enriched topic, the enricher's dead-letter topic and the
collector's (``read_committed``), in batches; the dead letters of both stages share the
dead-letter indices, told apart by their ``stage``. Each batch is written with one bulk request
to daily indices (:mod:`contract.search`), with the document ``_id`` derived from the record
(:func:`deadletter_id`), so a replay overwrites and never duplicates. The store is OpenSearch
or Elasticsearch (:mod:`resources.search`). Offsets are committed only after the batch is in
the store and the documents it refused are on the loader dead-letter topic:

1. consume a batch (up to ``batch_size`` records, or what came within ``max_wait_s``);
2. bulk-index it; on connection errors, 429 or 5xx pause the partitions and retry the same
   batch (or the items still failing) with capped backoff, indefinitely;
3. produce every document the store refused for good (mapping conflicts, ...) to the loader
   dead-letter topic as a ``loader_rejection`` failed event, and flush;
4. commit, per partition, the highest offset of the batch plus one.

A crash anywhere before step 4 re-reads the batch from the last commit: at-least-once
delivery, made exactly-once in the index by the deterministic ``_id``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import Field, ValidationError

from contract.failures import (
    ErrorDetail,
    FailedEvent,
    FailureType,
    OriginalPayload,
    Stage,
)
from contract.records import EnrichedEvent
from contract.search import DEADLETTERS, EVENTS, record_id
from privacy.pseudonyms import Pseudonymiser
from resources.kafka import make_kafka_consumer, make_kafka_producer
from resources.search import SearchStore, SearchUnavailable, index_body, make_search_store
from resources.search_indices import IndexLayout, apply_retention, ensure_templates
from resources.settings import PlatformSettings
from runtime.metrics import WorkerMetrics, serve_metrics
from runtime.retry import Outage, RetrySettings
from runtime.worker import METRICS_PORTS, Rebalances, WorkerOptions, pause, resume

log = logging.getLogger(__name__)


class RealtimeLoaderOptions(WorkerOptions):
    group_id: str = Field("tributary-realtime-loader", description="Kafka consumer group.")
    metrics_port: int = Field(
        METRICS_PORTS["realtime_loader"], ge=0, le=65535, description="Loopback port of /metrics."
    )
    retry: RetrySettings = RetrySettings(initial_s=0.5, max_s=30)
    batch_size: int = Field(500, ge=1, description="Most records per bulk request.")
    max_wait_s: float = Field(
        0.1,
        gt=0,
        description="Longest time a batch waits to fill: what batching adds to a quiet "
        "stream's latency (and how long a stop request waits).",
    )
    poll_timeout_s: float = Field(
        0.5, gt=0, description="Poll timeout while a retry waits; bounds a stop request's wait."
    )
    retention_days: int = Field(30, ge=1, description="Days an events index is kept.")
    deadletter_retention_days: int = Field(
        30, ge=1, description="Days a dead-letter index is kept."
    )
    retention_interval_s: float = Field(
        3600, gt=0, description="How often the loader deletes indices past retention."
    )
    dlq_flush_timeout_s: float = Field(
        30.0, gt=0, description="How long one flush of the loader dead letters may take."
    )
    index_shards: int = Field(1, ge=1, description="Primary shards of each daily index.")
    index_replicas: int = Field(0, ge=0, description="Replicas (0 on a single local node).")
    total_fields_limit: int = Field(2000, ge=100, description="index.mapping.total_fields.limit.")
    index_refresh_interval: str = Field(
        "500ms",
        pattern=r"^\d+(ms|s|m)$",
        description="index.refresh_interval: how soon an indexed document is searchable. "
        "Half of OpenSearch's 1 s: the real-time store is about freshness. At 2,000 events/s "
        "on two cores the extra refreshes cost 6-15% of a core and took the p50 from bulk "
        "request to searchable from ~0.8 s to ~0.5 s. Raise it for heavy indexing.",
    )


class RealtimeLoaderSettings(PlatformSettings):
    """The platform's settings plus the loader's own (``TRIBUTARY_REALTIME_LOADER__*``)."""

    realtime_loader: RealtimeLoaderOptions = RealtimeLoaderOptions()


class LoaderError(RuntimeError):
    """The loader cannot go on without risking loss (e.g. its dead letters were not acked)."""


class _Stopped(Exception):
    """Stop was requested while waiting for the search store; the batch stays uncommitted."""


@dataclass
class LoaderStats:
    batches: int = 0
    indexed: int = 0
    deadletters_indexed: int = 0
    rejected: int = 0
    retries: int = 0
    retention_deleted: list[str] = field(default_factory=list)


@dataclass
class _Doc:
    """One record of a batch, as the bulk action it becomes (or the reason it cannot)."""

    msg: Message
    index: str | None = None
    doc_id: str | None = None
    source: dict[str, Any] | None = None
    event_id: str | None = None
    event_type: str | None = None
    error: str | None = None  # set when the record or the store refused it for good


def _msg_coords(msg: Message) -> tuple[str, int, int]:
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def deadletter_id(
    failed: FailedEvent, topic: str, partition: int, offset: int, collector_dlq: str
) -> str:
    """The ``_id`` of a dead letter's document: the same whenever its record is read again.

    The enricher's dead letters are of accepted events, whose ``event_id`` the collector
    checked: that id, so a resend of the same event overwrites its document (a dead letter
    without one: its record's coordinates). The collector's dead letters are of what it
    refused, whose ``event_id`` (if any) is unchecked producer input: missing, malformed, too
    long for an ``_id``, shared by several refused events, or the id of an event accepted
    later. Each of its records is one document, named by the record's coordinates.
    """
    if topic == collector_dlq or not failed.event_id:
        return record_id(topic, partition, offset)
    return failed.event_id


def _utc_day(value: str | datetime) -> date:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def event_document(event: EnrichedEvent) -> dict[str, Any]:
    """Return the search document of an enriched event (the record plus ``location``)."""
    doc = event.model_dump(mode="json")
    geo = event.enrichment.geo
    if geo is not None and geo.latitude is not None and geo.longitude is not None:
        doc["location"] = {"lat": geo.latitude, "lon": geo.longitude}
    return doc


def _loader_fields(msg: Message, pseudonyms: Pseudonymiser | None) -> dict[str, Any]:
    topic, partition, offset = _msg_coords(msg)
    key = msg.key()
    if pseudonyms is not None:  # the collector's keys are in clear; the enricher's are not
        key = pseudonyms.kafka_key(key)
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        # The record's key (``user_id:<id>``, ...): how an erasure finds a person's dead
        # letters, whose original is kept but not indexed.
        "key": key.decode("utf-8", "replace") if isinstance(key, bytes) else key,
        "indexed_at": datetime.now(UTC).isoformat(),
    }


def bulk_body(docs: list[_Doc]) -> bytes:
    """The bulk request's NDJSON of ``docs`` (their index, ``_id`` and source)."""
    return index_body((d.index or "", d.doc_id or "", d.source or {}) for d in docs)


class RealtimeLoader:
    """The consumer loop; :func:`run` is its entry point."""

    def __init__(
        self,
        settings: RealtimeLoaderSettings,
        stop: threading.Event,
        store: SearchStore | None = None,
    ) -> None:
        self.settings = settings
        self.options = settings.realtime_loader
        self.stop = stop
        self._own_store = store is None
        self.store = store or make_search_store(settings.search)
        self.layout = IndexLayout(
            prefix=settings.search.index_prefix,
            shards=self.options.index_shards,
            replicas=self.options.index_replicas,
            total_fields_limit=self.options.total_fields_limit,
            refresh_interval=self.options.index_refresh_interval,
        )
        topics = settings.topics
        self.topics = [topics.enriched, topics.enriched_dlq, topics.collector_dlq]
        # The collector's dead letters keep their originals (the collector does not
        # pseudonymise); with pseudonyms on, their indexed copy is pseudonymised here.
        self.pseudonyms = Pseudonymiser.from_settings(settings.privacy.pseudonyms)
        self.stats = LoaderStats()
        self.metrics = WorkerMetrics("realtime-loader")
        self.outage = Outage(self.store.title, log, self._retried)
        self.busy = Outage(f"{self.store.title} bulk items", log, self._retried)
        self._paused = False
        self._next_retention = 0.0

    def _retried(self) -> None:
        self.stats.retries += 1
        self.metrics.retries.labels(self.store.engine.value).inc()

    # -- the search store, with retries while it is unavailable ------------------------------

    def _retrying(
        self, what: str, call: Any, consumer: Consumer | None = None, resume: bool = True
    ) -> Any:
        """Call ``call()`` until it succeeds, a permanent error, or stop; pause meanwhile.

        ``resume=False`` leaves the partitions paused (the caller resumes them when done).

        An outage is logged once when it begins and once when it ends (``Outage``), not per
        attempt; the client library's own per-request warnings are quiet (``runtime.process``).
        """
        backoff = self.options.retry.backoff()
        while True:
            try:
                result = call()
            except SearchUnavailable as exc:
                if self.stop.is_set():
                    raise _Stopped from exc
                delay = backoff.next()
                self.outage.failed(f"{what}: {exc}", delay)
                self._pause(consumer)
                self._wait(delay, consumer)
                continue
            self.outage.recovered()
            if resume:
                self._resume(consumer)
            return result

    def _pause(self, consumer: Consumer | None) -> None:
        if consumer is None or self._paused:
            return
        pause(consumer, self.metrics, log, f"{self.store.title} cannot take the batch in hand")
        self._paused = True

    def _resume(self, consumer: Consumer | None) -> None:
        if consumer is None or not self._paused:
            return
        resume(consumer, self.metrics, log)
        self._paused = False

    def _wait(self, delay: float, consumer: Consumer | None) -> None:
        """Sleep ``delay`` while keeping the group membership (poll with paused partitions)."""
        deadline = time.monotonic() + delay
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.metrics.beat()
            if consumer is None:
                self.stop.wait(min(0.5, deadline - time.monotonic()))
                continue
            # Never a negative timeout: confluent-kafka takes it as "wait forever".
            remaining = max(0.0, deadline - time.monotonic())
            msg = consumer.poll(min(self.options.poll_timeout_s, remaining))
            if msg is not None and msg.error() is None:
                # A partition assigned during the pause delivered a record: put it back.
                topic, partition, offset = _msg_coords(msg)
                consumer.seek(TopicPartition(topic, partition, offset))
                consumer.pause([TopicPartition(topic, partition)])
        if consumer is not None and self._paused:
            # Partitions assigned by a rebalance during the pause start unpaused.
            assignment = consumer.assignment()
            consumer.pause(assignment)
            self.metrics.paused_partitions.set(len(assignment))

    def _maybe_retention(self, consumer: Consumer | None) -> None:
        now = time.monotonic()
        if now < self._next_retention:
            return
        deleted = self._retrying(
            "retention",
            lambda: apply_retention(
                self.store,
                self.layout.prefix,
                {
                    EVENTS: self.options.retention_days,
                    DEADLETTERS: self.options.deadletter_retention_days,
                },
                datetime.now(UTC).date(),
            ),
            consumer,
        )
        self.stats.retention_deleted += deleted
        self._next_retention = now + self.options.retention_interval_s

    # -- the batch -----------------------------------------------------------------------

    def _prepare(self, msg: Message) -> _Doc:
        topic, partition, offset = _msg_coords(msg)
        doc = _Doc(msg=msg)
        raw = msg.value() or b""
        try:
            if topic == self.settings.topics.enriched:
                event = EnrichedEvent.model_validate_json(raw)
                doc.event_id, doc.event_type = event.event_id, event.event_type
                doc.index = self.layout.events_index(_utc_day(event.event_timestamp))
                doc.doc_id = event.event_id
                doc.source = event_document(event)
            else:
                failed = FailedEvent.model_validate_json(raw)
                if self.pseudonyms is not None and topic == self.settings.topics.collector_dlq:
                    failed = self.pseudonyms.failed_event(failed)
                doc.event_id, doc.event_type = failed.event_id, failed.event_type
                doc.index = self.layout.deadletters_index(_utc_day(failed.failed_at))
                doc.doc_id = deadletter_id(
                    failed, topic, partition, offset, self.settings.topics.collector_dlq
                )
                doc.source = failed.model_dump(mode="json")
        except (ValidationError, ValueError) as exc:
            doc.error = f"invalid record on {topic}: {exc}".strip()[:4000]
            return doc
        doc.source["loader"] = _loader_fields(msg, self.pseudonyms)
        return doc

    def _bulk(self, docs: list[_Doc], consumer: Consumer) -> None:
        """Index ``docs`` (those without an error); mark those the store refused for good."""
        pending = [d for d in docs if d.error is None]
        backoff = self.options.retry.backoff()
        while pending:
            body = bulk_body(pending)
            items = self._retrying(
                "bulk", lambda body=body: self.store.bulk(body), consumer, resume=False
            )
            retry: list[_Doc] = []
            for d, item in zip(pending, items, strict=True):
                if item.ok:
                    continue
                if item.transient:
                    retry.append(d)
                else:
                    d.error = f"{self.store.title} {item.status} {item.error}"
            if retry:
                if self.stop.is_set():
                    raise _Stopped
                delay = backoff.next()
                self.busy.failed(f"{len(retry)} refused with 429 or 5xx", delay)
                self._pause(consumer)
                self._wait(delay, consumer)
            pending = retry
        self.busy.recovered()
        self._resume(consumer)

    def _dead_letter(self, docs: list[_Doc], producer: Producer) -> None:
        """Produce the refused records to the loader DLQ and wait until Kafka acked each."""
        refused = [d for d in docs if d.error is not None]
        if not refused:
            return
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(str(err))

        for d in refused:
            topic, partition, offset = _msg_coords(d.msg)
            assert d.error is not None
            failed = FailedEvent(
                failure_type=FailureType.LOADER_REJECTION,
                stage=Stage.REALTIME_LOADER,
                errors=[ErrorDetail(field="/", reason=d.error)],
                original=OriginalPayload.from_bytes(
                    d.msg.value() or b"", self.settings.max_json_depth
                ),
                event_id=d.event_id,
                event_type=d.event_type,
                metadata={
                    "topic": topic,
                    "partition": partition,
                    "offset": offset,
                    "index": d.index,
                },
            )
            while True:
                try:
                    producer.produce(
                        self.settings.topics.loader_dlq,
                        value=failed.model_dump_json().encode(),
                        key=d.msg.key(),  # the record's own key: user, session, device or event
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    producer.poll(0.5)
            log.warning("rejected %s/%d@%d: %s", topic, partition, offset, d.error)
        remaining = producer.flush(self.options.dlq_flush_timeout_s)
        if remaining or failures:
            raise LoaderError(
                f"loader dead letters not acknowledged ({remaining} pending, errors: "
                f"{failures[:3]}); offsets not committed"
            )
        self.stats.rejected += len(refused)

    def _commit(self, docs: list[_Doc], consumer: Consumer) -> None:
        upto: dict[tuple[str, int], int] = {}
        for d in docs:
            topic, partition, offset = _msg_coords(d.msg)
            upto[(topic, partition)] = max(upto.get((topic, partition), -1), offset + 1)
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(upto.items())]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # E.g. the partitions were revoked meanwhile: their new owner re-reads the batch,
            # which overwrites the same documents.
            log.warning("commit failed (%s); the batch will be re-read", exc)
            return
        self.metrics.committed((tp.topic, tp.partition, tp.offset) for tp in offsets)

    def process(self, batch: list[Message], consumer: Consumer, producer: Producer) -> None:
        """Index one batch, dead-letter its refusals, then commit its offsets."""
        docs = [self._prepare(m) for m in batch]
        self._bulk(docs, consumer)
        self._dead_letter(docs, producer)
        self._commit(docs, consumer)
        ok = [d for d in docs if d.error is None]
        self.metrics.records_out.labels(self.store.engine.value).inc(len(ok))
        refused = len(docs) - len(ok)
        if refused:
            self.metrics.records_out.labels(self.settings.topics.loader_dlq).inc(refused)
            self.metrics.dead_letters.labels(FailureType.LOADER_REJECTION.value).inc(refused)
        self.stats.batches += 1
        self.stats.indexed += sum(1 for d in ok if d.msg.topic() == self.settings.topics.enriched)
        self.stats.deadletters_indexed += sum(
            1 for d in ok if d.msg.topic() != self.settings.topics.enriched
        )

    def _poll_batch(self, consumer: Consumer) -> list[Message]:
        """What arrives within ``max_wait_s``, up to ``batch_size`` records.

        librdkafka's ``consume`` returns as soon as the batch is full, else at the timeout: a
        busy stream gets full batches at once, a quiet one waits at most ``max_wait_s``.
        """
        batch: list[Message] = []
        for msg in consumer.consume(self.options.batch_size, timeout=self.options.max_wait_s):
            err = msg.error()
            if err is None:
                batch.append(msg)
            elif err.fatal():
                raise KafkaException(err)
            else:
                log.warning("consumer: %s", err)
        self.metrics.beat()
        for topic, n in Counter(m.topic() or "" for m in batch).items():
            self.metrics.records_in.labels(topic).inc(n)
        return batch

    def run(self) -> None:
        """Run the loop until ``stop``, serving ``/metrics`` and ``/healthz`` meanwhile."""
        with serve_metrics(self.metrics, self.options.metrics_port, self.options.healthz_stale_s):
            self._run()

    def _run(self) -> None:
        self.metrics.started(self.options.instance_id)
        try:
            self._retrying("templates", lambda: ensure_templates(self.store, self.layout))
        except _Stopped:
            self.metrics.stopped()
            return
        consumer = make_kafka_consumer(
            self.settings.kafka,
            self.options.group_id,
            **{
                "enable.auto.commit": False,
                **self.options.consumer_overrides(self.metrics, self.topics),
            },
        )
        producer = make_kafka_producer(self.settings.kafka)
        try:
            Rebalances(log, self.metrics).subscribe(consumer, self.topics)
            log.info(
                "consuming %s as %s (member %s)",
                ", ".join(self.topics),
                self.options.group_id,
                self.options.instance_id,
            )
            while not self.stop.is_set():
                self._maybe_retention(consumer)
                self.metrics.buffered_bytes.set(0)
                batch = self._poll_batch(consumer)
                if batch:
                    self.metrics.buffered_bytes.set(sum(len(m.value() or b"") for m in batch))
                    self.process(batch, consumer, producer)
        except _Stopped:
            log.info(
                "stopped while %s was unavailable; the batch stays uncommitted", self.store.title
            )
        finally:
            self.metrics.stopped()
            consumer.close()
            producer.flush(self.options.dlq_flush_timeout_s)
            if self._own_store:
                self.store.close()
            log.info("realtime loader stopped: %s", self.stats)


def run(settings: RealtimeLoaderSettings, stop: threading.Event) -> None:
    """Run the real-time loader until ``stop`` is set."""
    RealtimeLoader(settings, stop).run()


__all__ = [
    "LoaderError",
    "LoaderStats",
    "RealtimeLoader",
    "RealtimeLoaderOptions",
    "RealtimeLoaderSettings",
    "deadletter_id",
    "event_document",
    "record_id",
    "run",
]
