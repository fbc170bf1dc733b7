"""Batch loader: the enriched topic to Parquet objects in the S3 raw zone.

A confluent-kafka consumer loop (short poll, ``close()`` in ``finally``). Events are buffered
per (topic, partition, event date, event hour) and flushed by count, bytes or age, or when the
total buffered bytes would pass a bound. Each flush writes the partition's plan marker, then
the data object, then its manifest, and only then commits, per partition, the lowest offset
still buffered. While S3 is down, consumption pauses and the flush is retried with capped
exponential backoff; nothing is committed past an unwritten event. See docs/batch-loader.md.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import Field, ValidationError

from contract.failures import ErrorDetail, FailedEvent, FailureType, OriginalPayload, Stage
from contract.raw_zone import (
    EVENT_SCHEMA,
    Manifest,
    PartitionKey,
    PlannedRange,
    flatten,
    manifest_key,
    marker_key,
    object_key,
    parquet_bytes,
    partition_key,
)
from contract.records import EnrichedEvent
from resources.kafka import make_kafka_consumer, make_kafka_producer
from resources.s3 import make_s3_client
from resources.settings import PlatformSettings
from runtime.metrics import WorkerMetrics, serve_metrics
from runtime.retry import Outage, RetrySettings
from runtime.worker import METRICS_PORTS, Rebalances, WorkerOptions, pause, resume

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

S3_ERRORS = (BotoCoreError, ClientError)


class BatchLoaderOptions(WorkerOptions):
    group_id: str = Field("tributary-batch-loader", description="Kafka consumer group.")
    metrics_port: int = Field(
        METRICS_PORTS["batch_loader"], ge=0, le=65535, description="Loopback port of /metrics."
    )
    retry: RetrySettings = RetrySettings(initial_s=0.5, max_s=30)
    topic: str | None = Field(None, description="Topic to load; default: topics.enriched.")
    dlq_topic: str | None = Field(
        None, description="Where undecodable records go; default: topics.loader_dlq."
    )
    flush_max_events: int = Field(10_000, ge=1, description="Flush a buffer at this many events.")
    flush_max_bytes: int = Field(
        64 * 2**20, ge=1, description="Flush a buffer at this many record bytes."
    )
    flush_max_age_s: float = Field(60.0, gt=0, description="Flush a buffer this old.")
    max_buffered_bytes: int = Field(
        256 * 2**20,
        ge=1,
        description="Bound on the record bytes held in all buffers; above it the largest "
        "buffer is flushed, or consumption waits.",
    )
    poll_timeout_s: float = Field(0.5, gt=0)
    consume_batch: int = Field(
        500, ge=1, description="Most records taken from the consumer per call."
    )
    commit_interval_s: float = Field(
        5.0, gt=0, description="How often to commit progress not tied to a flush."
    )


class BatchLoaderSettings(PlatformSettings):
    batch_loader: BatchLoaderOptions = BatchLoaderOptions()


@dataclass
class LoaderStats:
    """Counters a caller (or a test) may read while the loader runs."""

    consumed: int = 0
    events_written: int = 0
    objects_written: list[str] = field(default_factory=list)
    flush_failures: int = 0
    dead_letters: int = 0
    skipped_replayed: int = 0
    buffered_bytes: int = 0
    max_buffered_bytes: int = 0
    paused: bool = False
    committed: dict[int, int] = field(default_factory=dict)
    assigned: set[int] = field(default_factory=set)


@dataclass
class _Buffer:
    key: PartitionKey
    planned: PlannedRange | None
    opened: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    first: int = -1
    last: int = -1
    failures: int = 0
    retry_at: float = 0.0

    def add(self, row: dict[str, Any], offset: int, size: int) -> None:
        if self.first < 0:
            self.first = offset
        self.last = offset
        self.rows.append(row)
        self.size += size

    @property
    def first_offset(self) -> int:
        return self.planned.first_offset if self.planned else self.first

    @property
    def last_offset(self) -> int:
        return self.planned.last_offset if self.planned else self.last


class _Loader:
    def __init__(
        self,
        settings: BatchLoaderSettings,
        stats: LoaderStats,
        after_upload: Callable[[str], None] | None,
    ) -> None:
        self.opts = settings.batch_loader
        self.settings = settings
        self.topic = self.opts.topic or settings.topics.enriched
        self.dlq_topic = self.opts.dlq_topic or settings.topics.loader_dlq
        self.bucket = settings.s3.raw_bucket
        self.prefix = settings.s3.raw_prefix
        self.s3: S3Client = make_s3_client(settings.s3)
        self.stats = stats
        self.after_upload = after_upload
        self.open: dict[tuple[PartitionKey, int], _Buffer] = {}
        self.closing: list[_Buffer] = []
        self.position: dict[int, int] = {}
        self.committed: dict[int, int] = {}
        self.replay_floor: dict[int, int] = {}
        self.replay: dict[int, list[PlannedRange]] = {}
        self.marker: dict[int, list[PlannedRange]] = {}
        self.rewound: set[int] = set()
        # Partitions sought back during the current consume() batch: the batch's later
        # records of them are stale (Kafka delivers them again from the sought offset).
        self.seeked: set[int] = set()
        self.paused = False
        self.dlq_pending = False
        self.last_commit = time.monotonic()
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.stop = threading.Event()
        self.metrics = WorkerMetrics("batch-loader")
        self.metrics.buffered_bytes.set_function(lambda: self.stats.buffered_bytes)
        self._records_in = self.metrics.records_in.labels(self.topic)
        self.outage = Outage("S3", log, lambda: self.metrics.retries.labels("s3").inc())
        self._rng = random.Random()

    # -- rebalancing ------------------------------------------------------------------------

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            p = tp.partition
            offset = tp.offset if tp.offset != OFFSET_INVALID and tp.offset >= 0 else 0
            self.committed[p] = self.replay_floor[p] = offset
            ranges = self._read_marker(p)
            self.marker[p] = [r for r in ranges if r.last_offset >= offset]
            self.replay[p] = list(self.marker[p])
            self.stats.committed[p] = offset
            self.stats.assigned.add(p)
            log.debug("%s[%d] from %d, %d planned", self.topic, p, offset, len(ranges))
        # Assign here (not after the callback) so that a loader paused by an S3 outage can
        # pause the new partitions too.
        consumer.assign(partitions)
        if self.paused:
            consumer.pause(partitions)
            self.metrics.paused_partitions.set(len(consumer.assignment()))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {tp.partition for tp in partitions}
        for k in [k for k in self.open if k[0].partition in gone]:
            self._forget(self.open.pop(k))
        for buf in [b for b in self.closing if b.key.partition in gone]:
            self.closing.remove(buf)
            self._forget(buf)
        for state in (self.position, self.committed, self.replay, self.marker, self.replay_floor):
            for p in gone:
                state.pop(p, None)
        self.rewound -= gone
        self.stats.assigned -= gone
        if not self.closing:
            self.paused = self.stats.paused = False

    def _forget(self, buf: _Buffer) -> None:
        self._account(-buf.size)

    def _read_marker(self, partition: int) -> list[PlannedRange]:
        key = marker_key(self.prefix, self.topic, partition)
        backoff = self.opts.retry.backoff(self._rng)
        while True:
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                data = json.loads(body)
                self.outage.recovered()
                return [PlannedRange.from_json(self.topic, partition, r) for r in data["ranges"]]
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    self.outage.recovered()
                    return []
                err: Exception = e
            except BotoCoreError as e:
                err = e
            if self.stop.is_set():
                raise RuntimeError(f"stopped while reading {key}: {err}")
            delay = backoff.next()
            self.outage.failed(f"reading plan marker {key}: {err}", delay)
            self.metrics.beat()  # inside the assignment callback, still serving the group
            self.stop.wait(delay)

    # -- buffering --------------------------------------------------------------------------

    def _account(self, delta: int) -> None:
        self.stats.buffered_bytes += delta
        self.stats.max_buffered_bytes = max(
            self.stats.max_buffered_bytes, self.stats.buffered_bytes
        )

    def handle(self, msg: Message) -> None:
        p, offset, value = msg.partition(), msg.offset(), msg.value() or b""
        assert p is not None and offset is not None
        if self.paused:
            self._rewind(p, offset)
            return
        size = len(value)
        # Keep the bound: make room first, or leave the record in Kafka for later.
        while self.stats.buffered_bytes + size > self.opts.max_buffered_bytes and self.open:
            largest = max(
                (b for b in self.open.values() if b.planned is None),
                key=lambda b: b.size,
                default=None,
            )
            if largest is None:
                break
            self._close(largest)
            if not self._flush_due():
                break
        if (
            self.stats.buffered_bytes + size > self.opts.max_buffered_bytes
            and self.stats.buffered_bytes > 0
            and any(b.failures for b in self.closing)
        ):
            # S3 refuses the flush that would make room: wait, the record stays in Kafka.
            self._pause()
            self._rewind(p, offset)
            return
        self.stats.consumed += 1
        self._records_in.inc()
        self.position[p] = offset + 1
        try:
            event = EnrichedEvent.model_validate_json(value)
            ts = datetime.fromisoformat(event.event_timestamp)
            key = partition_key(self.topic, p, ts)
            _, ts_ms = msg.timestamp()
            row = flatten(event, self.topic, p, offset, ts_ms if ts_ms > 0 else None)
        except (ValidationError, ValueError) as e:
            self._dead_letter(msg, value, e)
            return
        plan = next(
            (
                r
                for r in self.replay.get(p, ())
                if r.key == key and r.first_offset <= offset <= r.last_offset
            ),
            None,
        )
        if plan is not None and plan.first_offset < self.replay_floor.get(p, 0):
            # Written and committed past before the restart: already in S3.
            self.stats.skipped_replayed += 1
            return
        if plan is not None:
            normal = self.open.get((key, -1))
            if normal is not None:
                self._close(normal)
            buf = self.open.setdefault(
                (key, plan.first_offset), _Buffer(key, plan, time.monotonic())
            )
        else:
            buf = self.open.setdefault((key, -1), _Buffer(key, None, time.monotonic()))
        buf.add(row, offset, size)
        self._account(size)
        if plan is not None:
            if offset >= plan.last_offset:
                self._close(buf)
        elif len(buf.rows) >= self.opts.flush_max_events or buf.size >= self.opts.flush_max_bytes:
            self._close(buf)
        # A replayed range whose last record is gone (compaction) closes once passed.
        for b in [
            b
            for b in self.open.values()
            if b.planned and b.key.partition == p and b.planned.last_offset < offset
        ]:
            self._close(b)

    def _rewind(self, p: int, offset: int) -> None:
        if p in self.rewound or self.consumer is None:
            return
        self.rewound.add(p)
        self.seeked.add(p)
        self.consumer.seek(TopicPartition(self.topic, p, offset))

    def _dead_letter(self, msg: Message, value: bytes, error: Exception) -> None:
        assert self.producer is not None
        failed = FailedEvent(
            failure_type=FailureType.LOADER_REJECTION,
            stage=Stage.BATCH_LOADER,
            errors=[ErrorDetail(field="/", reason=str(error)[:2000])],
            original=OriginalPayload.from_bytes(value, self.settings.max_json_depth),
            metadata={"topic": self.topic, "partition": msg.partition(), "offset": msg.offset()},
        )
        # Keyed like the record it stands for: user, session, device or event.
        self.producer.produce(
            self.dlq_topic, value=failed.model_dump_json().encode(), key=msg.key()
        )
        self.dlq_pending = True
        self.stats.dead_letters += 1
        self.metrics.records_out.labels(self.dlq_topic).inc()
        self.metrics.dead_letters.labels(FailureType.LOADER_REJECTION.value).inc()

    def _close(self, buf: _Buffer) -> None:
        """Freeze ``buf``: its range is final and it waits to be written."""
        ident = (buf.key, buf.planned.first_offset if buf.planned else -1)
        if self.open.get(ident) is buf:
            del self.open[ident]
            self.closing.append(buf)

    def close_aged(self) -> None:
        now = time.monotonic()
        for buf in list(self.open.values()):
            if buf.planned is None and now - buf.opened >= self.opts.flush_max_age_s:
                self._close(buf)

    # -- writing ----------------------------------------------------------------------------

    def _flush_due(self) -> bool:
        """Write closed buffers whose retry time came; False if one failed."""
        now = time.monotonic()
        for buf in sorted(self.closing, key=lambda b: b.retry_at):
            if buf.retry_at > now:
                continue
            if not self._write(buf):
                return False
        if not any(b.failures for b in self.closing):
            self._resume()
        return True

    def _write(self, buf: _Buffer) -> bool:
        key = object_key(self.prefix, buf.key, buf.first_offset, buf.last_offset)
        try:
            if buf.planned is None:
                self._write_marker(buf.key.partition, PlannedRange(buf.key, buf.first, buf.last))
            body = _parquet(buf.rows)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            at = datetime.now(UTC)
            times = [r["event_timestamp"] for r in buf.rows]
            doc = Manifest.of(
                key, buf.key, len(buf.rows), len(body), buf.first_offset, buf.last_offset,
                min(times), max(times), at,
            )  # fmt: skip
            self.s3.put_object(
                Bucket=self.bucket,
                Key=manifest_key(self.prefix, key, at),
                Body=doc.to_json(),
                ContentType="application/json",
            )
        except S3_ERRORS as e:
            delay = self.opts.retry.delay(buf.failures, self._rng.random)
            buf.failures += 1
            buf.retry_at = time.monotonic() + delay
            self.stats.flush_failures += 1
            self.outage.failed(f"writing {key}: {e}", delay)
            self._pause()
            return False
        self.outage.recovered()
        self.closing.remove(buf)
        self._account(-buf.size)
        self.stats.events_written += len(buf.rows)
        self.metrics.records_out.labels("s3").inc(len(buf.rows))
        self.stats.objects_written.append(key)
        log.info("wrote %s (%d events)", key, len(buf.rows))
        if self.after_upload is not None:
            self.after_upload(key)
        self.commit()
        return True

    def _write_marker(self, partition: int, new: PlannedRange) -> None:
        floor = self.committed.get(partition, 0)
        ranges = [r for r in self.marker.get(partition, []) if r.last_offset >= floor]
        if new not in ranges:
            ranges.append(new)
        body = {"topic": self.topic, "partition": partition, "committed": floor}
        body["ranges"] = [r.to_json() for r in ranges]
        self.s3.put_object(
            Bucket=self.bucket,
            Key=marker_key(self.prefix, self.topic, partition),
            Body=json.dumps(body).encode(),
            ContentType="application/json",
        )
        self.marker[partition] = ranges

    def commit(self) -> None:
        """Commit, per partition, the lowest offset still buffered (or the position)."""
        assert self.consumer is not None
        lowest = dict(self.position)
        for buf in [*self.open.values(), *self.closing]:
            p = buf.key.partition
            lowest[p] = min(lowest.get(p, buf.first), buf.first)
        offsets = [
            TopicPartition(self.topic, p, o)
            for p, o in sorted(lowest.items())
            if o > self.committed.get(p, -1)
        ]
        self.last_commit = time.monotonic()
        if not offsets:
            return
        if self.dlq_pending:
            assert self.producer is not None
            if self.producer.flush(30) > 0:
                log.warning("dead letters not yet delivered; commit postponed")
                return
            self.dlq_pending = False
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            log.warning("commit failed: %s", e)
            return
        for tp in offsets:
            self.committed[tp.partition] = tp.offset
            self.stats.committed[tp.partition] = tp.offset
        self.metrics.committed((tp.topic, tp.partition, tp.offset) for tp in offsets)

    def _pause(self) -> None:
        if self.paused or self.consumer is None:
            return
        self.paused = self.stats.paused = True
        pause(self.consumer, self.metrics, log, "S3 refuses the flush that would make room")

    def _resume(self) -> None:
        if not self.paused or self.consumer is None:
            return
        self.paused = self.stats.paused = False
        self.rewound.clear()
        resume(self.consumer, self.metrics, log)

    def flush_all(self) -> None:
        for buf in list(self.open.values()):
            self._close(buf)
        for buf in list(self.closing):
            buf.retry_at = 0
        self._flush_due()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run the loop until ``stop``, serving ``/metrics`` and ``/healthz`` meanwhile."""
        with serve_metrics(self.metrics, self.opts.metrics_port, self.opts.healthz_stale_s):
            self._run(stop)

    def _run(self, stop: threading.Event) -> None:
        self.stop = stop
        self.consumer = make_kafka_consumer(
            self.settings.kafka,
            self.opts.group_id,
            **{
                "enable.auto.commit": False,
                **self.opts.consumer_overrides(self.metrics, [self.topic]),
            },
        )
        self.producer = make_kafka_producer(self.settings.kafka)
        self.metrics.started(self.opts.instance_id)
        log.info(
            "consuming %s as %s (member %s)", self.topic, self.opts.group_id, self.opts.instance_id
        )
        try:
            Rebalances(log, self.metrics, self.on_assign, self.on_revoke).subscribe(
                self.consumer, [self.topic]
            )
            while not stop.is_set():
                self.metrics.beat()
                self._flush_due()
                timeout = self.opts.poll_timeout_s
                if self.paused and self.closing:
                    wait = min(b.retry_at for b in self.closing) - time.monotonic()
                    timeout = max(0.0, min(timeout, wait))
                # Up to a batch of what is there now (one call per record cost a tenth of
                # the loader's time); records are still handled one by one, in order.
                self.seeked.clear()
                for msg in self.consumer.consume(self.opts.consume_batch, timeout):
                    if msg.partition() in self.seeked:
                        continue  # rewound during this batch: Kafka delivers it again
                    if (err := msg.error()) is not None:
                        if err.fatal():
                            raise KafkaException(err)
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error: %s", err)
                    else:
                        self.handle(msg)
                self.close_aged()
                if time.monotonic() - self.last_commit >= self.opts.commit_interval_s:
                    self.commit()
            self.flush_all()
            self.commit()
        finally:
            self.metrics.stopped()
            self.consumer.close()
            self.producer.flush(10)


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    return parquet_bytes(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA))


def run(
    settings: BatchLoaderSettings,
    stop: threading.Event,
    stats: LoaderStats | None = None,
    *,
    after_upload: Callable[[str], None] | None = None,
) -> None:
    """Load the enriched topic into the raw zone until ``stop`` is set.

    ``stats`` (optional) is updated as the loader runs. ``after_upload`` is called with each
    data object's key after it was written and before its offsets are committed (a test hook).
    """
    _Loader(settings, stats or LoaderStats(), after_upload).run(stop)
