"""The enricher: raw events in, enriched events or dead letters out, exactly once.

Each loop turn consumes a batch of the raw topic, validates every payload against its event
type's schema, asks the enrichment API for the valid ones (in one call), and writes the results
and the batch's consumer offsets in ONE Kafka transaction (``send_offsets_to_transaction``).
Readers use ``read_committed``, so a crash at any point either shows the whole batch once or
none of it, and the batch is redone from the last committed offsets: no event is duplicated or
dropped.

The loop is pipelined while the stream fills whole batches (``pipeline``): once a full batch N
is enriched, the enricher takes batch N+1 from what the consumer has already buffered,
validates it and hands its enrichment call to a worker thread, and only then commits
transaction N, so the API works on N+1 while Kafka commits N. After a batch that was not full,
N is committed first (nothing would be gained by waiting for N+1 before the commit).
Transaction N still carries only N's outputs and offsets; if it aborts, the consumer is
rewound to N's first offsets and the already-fetched N+1 is dropped with it, so both are
redone. If a rebalance revokes the partitions while a batch is in hand, that batch is dropped
uncommitted: whoever owns its partitions now redoes it from the committed offsets. The Kafka
consumer and producer are used from the loop's thread only; the worker makes just the first
call of each batch.

A transient outage of the enrichment API does not flood the dead-letter topic: the enricher
pauses its partitions and retries the same batch with capped backoff (behind a circuit
breaker), and only events that stay unenrichable past a deadline are dead-lettered with
``enrichment_failed``, from where ``tributary dlq replay`` can send them round again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from pydantic import Field

from contract.enrichment import MODEL_VERSION_HEADER, NDJSON
from contract.envelope import event_identity
from contract.failures import (
    ErrorDetail,
    FailedEvent,
    FailureType,
    OriginalPayload,
    Stage,
    replay_count_of,
)
from contract.jsontext import DEFAULT_MAX_DEPTH, JsonRefused, check_depth
from contract.registry import SchemaKey, SchemaRegistry
from privacy.pseudonyms import Pseudonymiser, check_fields
from resources.kafka import make_kafka_consumer, make_kafka_producer
from resources.settings import PlatformSettings
from runtime.metrics import WorkerMetrics, serve_metrics
from runtime.retry import Outage, RetrySettings
from runtime.worker import METRICS_PORTS, Rebalances, WorkerOptions, pause, resume

log = logging.getLogger(__name__)

ENRICHER_VERSION = "1.0.0"


class EnricherOptions(WorkerOptions):
    group_id: str = Field("tributary-enricher", description="Consumer group of the raw topic.")
    transactional_id: str | None = Field(
        None,
        description="Kafka transactional.id of this instance; default `<group_id>.<instance_id>`. "
        "Stable across restarts, so a restarted instance fences its crashed predecessor and "
        "aborts the transaction it left open at once (not after transaction.timeout.ms).",
    )
    metrics_port: int = Field(
        METRICS_PORTS["enricher"], ge=0, le=65535, description="Loopback port of /metrics."
    )
    retry: RetrySettings = RetrySettings(initial_s=0.2, max_s=10)
    transaction_timeout_ms: int = Field(
        10_000,
        ge=1000,
        description="transaction.timeout.ms: how long a crashed instance's open transaction "
        "holds back read_committed readers before the broker aborts it (Kafka Streams uses "
        "10 s for exactly-once too). A transaction spans one batch's produce and commit only.",
    )
    enrichment_url: str = Field("http://127.0.0.1:8001", description="The enrichment API.")
    enrichment_enabled: bool = Field(True, description="Off: validate and pass through.")
    pipeline: bool = Field(
        True,
        description="While the stream fills whole batches, take the next batch from what is "
        "already buffered (no wait) and start its enrichment call before this batch's "
        "transaction commits. A batch that was not full is committed before the next fetch, "
        "so at lower rates no commit waits for a fetch. Off: always one batch after the other.",
    )
    batch_size: int = Field(500, ge=1, description="Events per transaction.")
    batch_wait_s: float = Field(
        0.1,
        gt=0,
        description="Longest wait to fill a batch, i.e. at most one transaction per this "
        "interval when the stream is not saturating batches (Kafka Streams commits every "
        "100 ms under exactly-once too).",
    )
    request_timeout_s: float = Field(5, gt=0, description="Timeout of one enrichment call.")
    breaker_failures: int = Field(5, ge=1, description="Failures that open the circuit.")
    breaker_reset_s: float = Field(10, gt=0, description="Open circuit's wait before a trial.")
    dead_letter_after_s: float = Field(
        300, gt=0, description="How long a batch may wait for enrichment before dead letters."
    )

    @property
    def txn_id(self) -> str:
        """The transactional.id in use."""
        return self.transactional_id or f"{self.group_id}.{self.instance_id}"


class EnricherSettings(PlatformSettings):
    enricher: EnricherOptions = EnricherOptions()


class EnrichmentUnavailable(Exception):
    """The enrichment API failed transiently (timeout, connection, 5xx, open circuit)."""


class CircuitBreaker:
    """A circuit breaker in front of the enrichment API.

    Closed: calls pass. Open after N consecutive failures: calls fail fast until a reset
    timeout, then one trial call (half-open) closes or re-opens it.
    """

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.reset_s = reset_s
        self.clock = clock
        self.consecutive = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None

    def failure(self) -> None:
        self.consecutive += 1
        if self.consecutive >= self.failures or self.opened_at is not None:
            self.opened_at = self.clock()


class EnrichmentClient:
    def __init__(self, options: EnricherOptions) -> None:
        self.options = options
        self.http = httpx.Client(base_url=options.enrichment_url, timeout=options.request_timeout_s)
        self.breaker = CircuitBreaker(options.breaker_failures, options.breaker_reset_s)

    def enrich(self, values: Sequence[bytes]) -> tuple[list[bytes], str | None]:
        """Return one enrichment (JSON bytes) per raw record and the model version.

        The raw records go as they are (the API ignores what it does not read), and the
        answer comes as NDJSON, one enrichment per line in request order, so neither side
        re-encodes an event: the enricher splices each line into its record (``enriched``).
        Raises ``EnrichmentUnavailable`` when the API is unavailable.
        """
        if not self.breaker.allow():
            raise EnrichmentUnavailable("circuit open")
        body = b'{"events":[' + b",".join(values) + b"]}"
        try:
            resp = self.http.post(
                "/v1/enrich",
                content=body,
                headers={"content-type": "application/json", "accept": NDJSON},
            )
        except httpx.HTTPError as exc:
            self.breaker.failure()
            raise EnrichmentUnavailable(f"enrichment API unreachable: {exc}") from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            self.breaker.failure()
            raise EnrichmentUnavailable(f"enrichment API answered {resp.status_code}")
        resp.raise_for_status()
        self.breaker.success()
        if not resp.headers.get("content-type", "").startswith(NDJSON):
            raise EnrichmentUnavailable("enrichment API answered without NDJSON")
        lines = resp.content.split(b"\n") if resp.content else []
        if len(lines) != len(values):
            raise EnrichmentUnavailable("enrichment API answered for a different batch")
        return lines, resp.headers.get(MODEL_VERSION_HEADER)

    def close(self) -> None:
        self.http.close()


class RawRecord(msgspec.Struct):
    """What the loop reads of a raw record; the rest stays in its bytes, unparsed.

    Decoding these fields only (msgspec still checks the whole text is JSON) took a third of
    the time of decoding the record into dicts, the loop's largest cost.
    """

    event_type: Any = None
    payload: Any = None
    # Present only in a record that should not have them; see ``enriched``.
    enrichment: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    lineage: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


read_raw_record = msgspec.json.Decoder(RawRecord).decode


def enriched(value: bytes, raw: RawRecord, enrichment: bytes, lineage: dict[str, Any]) -> bytes:
    """The enriched record: the raw record with its ``enrichment`` and ``lineage`` added.

    Spliced into the raw JSON object rather than re-encoded (the raw bytes decoded as a JSON
    object, so they end with its closing brace). A record that already carries either key
    is re-encoded instead, so the output never holds a key twice.
    """
    if raw.enrichment is not msgspec.UNSET or raw.lineage is not msgspec.UNSET:
        record = orjson.loads(value)
        return orjson.dumps({**record, "enrichment": orjson.loads(enrichment), "lineage": lineage})
    return b"".join(
        (
            value.rstrip()[:-1],
            b',"enrichment":',
            enrichment,
            b',"lineage":',
            orjson.dumps(lineage),
            b"}",
        )
    )


def pseudonymised(value: bytes, pseudonyms: Pseudonymiser) -> bytes:
    """The raw record ``value`` (a JSON object) with its personal fields pseudonymised."""
    record = orjson.loads(value)
    pseudonyms.record(record)
    return orjson.dumps(record)


@dataclass
class BatchOutcome:
    """What one batch turned into.

    With ``pseudonyms``, every dead letter and its key are pseudonymised on their way in.
    """

    enriched: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    dead: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    pseudonyms: Pseudonymiser | None = None

    def dead_letter(self, key: bytes | None, failed: FailedEvent) -> None:
        if self.pseudonyms is not None:
            failed = self.pseudonyms.failed_event(failed)
            key = self.pseudonyms.kafka_key(key)
        self.dead.append((key, failed.model_dump_json().encode()))
        self.reasons[failed.failure_type] = self.reasons.get(failed.failure_type, 0) + 1


def _failed(
    msg: Message, failure_type: FailureType, errors: list[ErrorDetail], max_depth: int
) -> FailedEvent:
    original = OriginalPayload.from_bytes(msg.value() or b"", max_depth)
    record = original.data if isinstance(original.data, dict) else None
    # A record on the raw topic may come from anywhere: keep only what is well formed.
    event_id, event_type = event_identity(record)
    stamp = record.get("collector") if record else None
    received = _timestamp(stamp.get("received_at")) if isinstance(stamp, dict) else None
    replays = replay_count_of(msg.headers())
    return FailedEvent(
        failure_type=failure_type,
        stage=Stage.ENRICHER,
        errors=errors,
        original=original,
        event_id=event_id,
        event_type=event_type,
        received_at=received,
        replay_count=replays,
        metadata={
            "source_topic": msg.topic(),
            "source_partition": msg.partition(),
            "source_offset": msg.offset(),
            "enricher_version": ENRICHER_VERSION,
        },
    )


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


Valid = tuple[Message, RawRecord, SchemaKey]


def validate(
    messages: Sequence[Message],
    registry: SchemaRegistry,
    max_depth: int = DEFAULT_MAX_DEPTH,
    pseudonyms: Pseudonymiser | None = None,
) -> tuple[list[Valid], BatchOutcome]:
    """Split a batch into records whose payload passed its schema, and dead letters.

    ``max_depth``: ``PlatformSettings.max_json_depth``; a deeper record is malformed.
    ``pseudonyms``: the dead letters' pseudonymiser (``BatchOutcome.pseudonyms``).
    """
    valid = []
    outcome = BatchOutcome(pseudonyms=pseudonyms)
    for msg in messages:
        value = msg.value() or b""
        try:
            check_depth(value, max_depth)
            record = read_raw_record(value)
        except (JsonRefused, msgspec.DecodeError) as exc:  # too deep, not JSON, not an object
            detail = [ErrorDetail(field="/", reason=str(exc))]
            outcome.dead_letter(msg.key(), _failed(msg, FailureType.MALFORMED, detail, max_depth))
            continue
        event_type = record.event_type
        compiled = registry.lookup(event_type) if isinstance(event_type, str) else None
        if compiled is None:
            reason = f"no schema for {event_type!r}"
            outcome.dead_letter(
                msg.key(),
                _failed(
                    msg,
                    FailureType.UNKNOWN_SCHEMA,
                    [ErrorDetail(field="/event_type", reason=reason)],
                    max_depth,
                ),
            )
            continue
        errors = compiled.errors(record.payload, prefix="/payload")
        if errors:
            outcome.dead_letter(
                msg.key(),
                _failed(
                    msg,
                    FailureType.SCHEMA_VIOLATION,
                    [ErrorDetail(field=e.field, reason=e.reason) for e in errors],
                    max_depth,
                ),
            )
            continue
        valid.append((msg, record, compiled.key))
    return valid, outcome


def _values(valid: Sequence[Valid]) -> list[bytes]:
    return [msg.value() or b"" for msg, _, _ in valid]


@dataclass
class Batch:
    """A consumed, validated batch on its way through the loop."""

    messages: list[Message]
    valid: list[Valid]
    outcome: BatchOutcome
    revocations: int  # the enricher's count of revocations when the batch was consumed
    began: float = field(default_factory=time.monotonic)
    size: int = 0  # record bytes
    first_call: Future[tuple[list[bytes], str | None]] | None = None


class Enricher:
    """One enricher instance: a transactional consume-transform-produce loop."""

    def __init__(
        self,
        settings: EnricherSettings,
        stop: threading.Event,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.options = settings.enricher
        self.stop = stop
        self.registry = registry or SchemaRegistry.from_directory()
        self.client = EnrichmentClient(self.options) if self.options.enrichment_enabled else None
        check_fields(settings.privacy.pseudonyms, self.registry)
        self.pseudonyms = Pseudonymiser.from_settings(settings.privacy.pseudonyms)
        self.metrics = WorkerMetrics("enricher")
        if self.client is not None:
            self.metrics.watch_breaker(lambda: self.client.breaker.state if self.client else "")
        self.outage = Outage(
            "enrichment API", log, lambda: self.metrics.retries.labels("enrichment-api").inc()
        )
        self.rebalances = Rebalances(log, self.metrics, on_revoke=self._on_revoke)
        # One worker: the HTTP client is used by one thread at a time (see _enrich).
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrich")
        self.consumer: Consumer = make_kafka_consumer(
            settings.kafka,
            self.options.group_id,
            **{
                "enable.auto.commit": False,
                "max.poll.interval.ms": 600_000,
                # Eager rebalancing (librdkafka's default assignors): a revocation takes every
                # partition, which is what dropping the batches in hand relies on (_on_revoke).
                "partition.assignment.strategy": "range,roundrobin",
                **self.options.consumer_overrides(self.metrics, [settings.topics.raw]),
            },
        )
        self.producer: Producer = make_kafka_producer(
            settings.kafka,
            **{
                "transactional.id": self.options.txn_id,
                "transaction.timeout.ms": self.options.transaction_timeout_ms,
                "linger.ms": 5,
                # A transaction begun right after a commit is refused (CONCURRENT_TRANSACTIONS)
                # until the broker has written the markers; librdkafka retries after 100 ms by
                # default, the Java client after 20 ms (KAFKA-5477).
                "retry.backoff.ms": 20,
            },
        )
        self.stats: dict[str, int] = {
            "consumed": 0,
            "enriched": 0,
            "dead": 0,
            "aborted": 0,
            "dropped": 0,
        }
        self.revocations = 0
        self._rng = random.Random()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Run the loop until ``stop``, serving ``/metrics`` and ``/healthz`` meanwhile."""
        with serve_metrics(self.metrics, self.options.metrics_port, self.options.healthz_stale_s):
            self._run()

    def _run(self) -> None:
        self._init_transactions()
        log.info(
            "consuming %s as %s (member %s, transactional id %s)",
            self.settings.topics.raw,
            self.options.group_id,
            self.options.instance_id,
            self.options.txn_id,
        )
        self.rebalances.subscribe(self.consumer, [self.settings.topics.raw])
        self.metrics.started(self.options.instance_id)
        try:
            batch: Batch | None = None
            while not self.stop.is_set():
                self.metrics.beat()
                self.metrics.buffered_bytes.set(batch.size if batch is not None else 0)
                if batch is None:
                    batch = self._fetch()
                    continue
                outcome = self._transform(batch)
                # Pipelining: start the next batch's enrichment before committing this one,
                # while batches fill up (so the next one is already buffered: no wait).
                saturated = len(batch.messages) >= self.options.batch_size
                following = (
                    self._fetch(wait_s=0)
                    if self.options.pipeline and saturated and not self.stop.is_set()
                    else None
                )
                if batch.revocations != self.revocations:
                    # Its partitions were revoked while it was in hand (during a fetch or a
                    # retry wait): drop it; their new owner redoes it from the committed
                    # offsets. ``following`` was consumed under the new assignment.
                    log.info("partitions revoked: %d events dropped", len(batch.messages))
                    self.stats["dropped"] += len(batch.messages)
                elif outcome is not None and not self._commit(batch.messages, outcome):
                    self._rewind([batch, following])
                    following = None
                batch = following
        finally:
            self.metrics.stopped()
            self.worker.shutdown(wait=True, cancel_futures=True)
            self.consumer.close()
            if self.client is not None:
                self.client.close()

    def _init_transactions(self) -> None:
        """Register the transactional id (fencing any zombie), retrying while Kafka settles."""
        for attempt in range(10):
            try:
                self.producer.init_transactions(30)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or attempt == 9 or self.stop.is_set():
                    raise
                log.warning("init_transactions: %s; retrying", exc)

    def _on_revoke(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        """Called inside ``consume``/``poll`` (after the log line): batches in hand are void."""
        self.revocations += 1

    @staticmethod
    def _is_error(msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return False
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err)
        return True

    def _fetch(self, wait_s: float | None = None) -> Batch | None:
        """Consume and validate a batch and start its first enrichment call on the worker.

        ``wait_s``: how long to wait for the batch to fill (``batch_wait_s`` by default).
        """
        wait = self.options.batch_wait_s if wait_s is None else wait_s
        messages = [
            m for m in self.consumer.consume(self.options.batch_size, wait) if not self._is_error(m)
        ]
        if not messages:
            return None
        for topic, n in Counter(m.topic() or "" for m in messages).items():
            self.metrics.records_in.labels(topic).inc(n)
        valid, outcome = validate(
            messages, self.registry, self.settings.max_json_depth, self.pseudonyms
        )
        # Counted after consuming: librdkafka drops from a consume() the messages of
        # partitions revoked during it, so this batch belongs to the current assignment.
        batch = Batch(messages, valid, outcome, self.revocations)
        batch.size = sum(len(m.value() or b"") for m in messages)
        if self.client is not None and valid:
            batch.first_call = self.worker.submit(self.client.enrich, _values(valid))
        return batch

    def _transform(self, batch: Batch) -> BatchOutcome | None:
        """Enrich the batch and add its outputs; None if a revocation voided it meanwhile."""
        answer = self._enrich(batch)
        if answer is None:
            return None
        enrichments, model_version = answer
        outcome = batch.outcome
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        for (msg, raw, key), enrichment in zip(batch.valid, enrichments, strict=True):
            if enrichment is None:
                continue
            lineage = {
                "enricher_version": ENRICHER_VERSION,
                "schema_version": str(key.version),
                "model_version": model_version,
                "source_topic": msg.topic(),
                "source_partition": msg.partition(),
                "source_offset": msg.offset(),
                "enriched_at": now,
            }
            value, key_bytes = msg.value() or b"", msg.key() or b""
            if self.pseudonyms is not None:
                # After the enrichment API has read the originals (geo from the real IP).
                value = pseudonymised(value, self.pseudonyms)
                key_bytes = self.pseudonyms.kafka_key(key_bytes) or b""
                lineage["pseudonym_key_version"] = self.pseudonyms.version
            value = enriched(value, raw, enrichment, lineage)
            outcome.enriched.append((key_bytes, value))
        return outcome

    def _enrich(self, batch: Batch) -> tuple[Sequence[bytes | None], str | None] | None:
        """Enrich the batch, retrying through outages; past the deadline, dead-letter it.

        The first attempt is the call :meth:`_fetch` started on the worker; retries run here,
        on the loop's thread, once it has finished. The worker runs calls in order and a
        batch's retries follow its own first call, so the client is never used by two
        threads at once. Returns None if a revocation voided the batch while it waited.
        """
        values = _values(batch.valid)
        if not values:
            return [], None
        if self.client is None:
            return [b"{}"] * len(values), None
        backoff = self.options.retry.backoff(self._rng)
        paused = False
        call = batch.first_call
        try:
            while True:
                try:
                    if call is not None:
                        enrichments, version = call.result()
                    else:
                        enrichments, version = self.client.enrich(values)
                    self.outage.recovered()
                    return enrichments, version
                except (EnrichmentUnavailable, httpx.HTTPStatusError) as exc:
                    call = None
                    waited = time.monotonic() - batch.began
                    if waited >= self.options.dead_letter_after_s or self.stop.is_set():
                        reason = f"enrichment unavailable for {waited:.0f}s: {exc}"
                        for msg, _, _ in batch.valid:
                            batch.outcome.dead_letter(
                                msg.key(),
                                _failed(
                                    msg,
                                    FailureType.ENRICHMENT_FAILED,
                                    [ErrorDetail(field="/", reason=reason)],
                                    self.settings.max_json_depth,
                                ),
                            )
                        return [None] * len(values), None
                    delay = backoff.next()
                    self.outage.failed(exc, delay)
                    if not paused:
                        # Back-pressure: stop fetching while this batch waits, but keep
                        # polling so the group does not consider this member dead.
                        pause(self.consumer, self.metrics, log, "the batch in hand waits for "
                              "the enrichment API")  # fmt: skip
                        paused = True
                    deadline = time.monotonic() + max(delay, 0.05)
                    while time.monotonic() < deadline and not self.stop.is_set():
                        self.metrics.beat()
                        polled = self.consumer.poll(min(0.1, max(0.0, deadline - time.monotonic())))
                        if polled is not None and polled.error() is None:
                            # Only a partition assigned by a rebalance just now (so unpaused)
                            # yields a message here: hand it back to its next batch.
                            self.consumer.seek(
                                TopicPartition(
                                    polled.topic() or "",
                                    polled.partition() or 0,
                                    polled.offset() or 0,
                                )
                            )
                        if batch.revocations != self.revocations:
                            return None
        finally:
            if paused:
                resume(self.consumer, self.metrics, log)

    def _commit(self, messages: list[Message], outcome: BatchOutcome) -> bool:
        """Write the batch's outputs and offsets in one transaction; False if it aborted."""
        offsets: dict[tuple[str, int], int] = {}
        for m in messages:
            tp = (m.topic() or "", m.partition() or 0)
            offsets[tp] = max(offsets.get(tp, -1), (m.offset() or 0) + 1)
        topics = self.settings.topics
        try:
            self.producer.begin_transaction()
            for key, value in outcome.enriched:
                self.producer.produce(topics.enriched, value=value, key=key)
            for dkey, value in outcome.dead:
                self.producer.produce(topics.enriched_dlq, value=value, key=dkey)
            self.producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                self.consumer.consumer_group_metadata(),
                30,
            )
            self.producer.commit_transaction(60)
        except KafkaException as exc:
            error = exc.args[0]
            if error.txn_requires_abort():
                log.warning("transaction aborted (%s); the batch will be redone", error)
                self.producer.abort_transaction(30)
                self.stats["aborted"] += 1
                return False
            raise
        self.stats["consumed"] += len(messages)
        self.stats["enriched"] += len(outcome.enriched)
        self.stats["dead"] += len(outcome.dead)
        self.metrics.committed((t, p, o) for (t, p), o in offsets.items())
        self.metrics.records_out.labels(topics.enriched).inc(len(outcome.enriched))
        self.metrics.records_out.labels(topics.enriched_dlq).inc(len(outcome.dead))
        for reason, n in outcome.reasons.items():
            self.metrics.dead_letters.labels(reason).inc(n)
        return True

    def _rewind(self, batches: Sequence[Batch | None]) -> None:
        """Drop uncommitted batches: seek each of their partitions back to its first offset."""
        starts: dict[tuple[str, int], int] = {}
        for batch in batches:
            for m in batch.messages if batch is not None else []:
                tp = (m.topic() or "", m.partition() or 0)
                offset = m.offset() or 0
                starts[tp] = min(starts.get(tp, offset), offset)
        for (t, p), start in starts.items():
            self.consumer.seek(TopicPartition(t, p, start))


def run(settings: EnricherSettings, stop: threading.Event) -> Enricher:
    enricher = Enricher(settings, stop)
    enricher.run()
    return enricher
