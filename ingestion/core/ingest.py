"""The one ingestion core that REST and gRPC both call.

For each event: check the envelope against the contract, stamp the collector's metadata, and
write it to the raw topic (valid) or the collector dead-letter topic (invalid, with the
reasons and the original). The caller is answered only after Kafka's delivery reports
confirmed every message of the request: an acknowledged event is durably in Kafka.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from contract.envelope import accepted_key, check_envelope, event_identity, event_key
from contract.failures import ErrorDetail, FailedEvent, FailureType, OriginalPayload, Stage
from contract.jsontext import JsonRefused, loads_events
from contract.registry import FieldError, SchemaRegistry
from ingestion.core import metrics
from ingestion.core.config import CollectorSettings
from ingestion.core.delivery import Deliveries, KafkaBridge

Path = Literal["rest", "grpc"]


@dataclass(frozen=True)
class RequestContext:
    """Who sent a request, and how; becomes each event's ``collector`` metadata."""

    producer: str
    client_ip: str | None
    user_agent: str | None
    request_id: str
    path: Path
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def metadata(self, collector_id: str) -> dict[str, Any]:
        return {
            "received_at": self.received_at.isoformat().replace("+00:00", "Z"),
            "collector_id": collector_id,
            "request_id": self.request_id,
            "producer": self.producer,
            "client_ip": self.client_ip,
            "user_agent": self.user_agent,
            "path": self.path,
        }


@dataclass(slots=True)
class Outcome:
    index: int
    event_id: str | None
    accepted: bool
    failure_type: FailureType | None = None
    errors: tuple[FieldError, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "event_id": self.event_id,
            "status": "accepted" if self.accepted else "rejected",
        }
        if not self.accepted:
            out["reason"] = str(self.failure_type)
            out["errors"] = [e.as_dict() for e in self.errors]
        return out


@dataclass
class IngestResult:
    outcomes: list[Outcome]

    @property
    def accepted(self) -> int:
        return sum(1 for o in self.outcomes if o.accepted)

    @property
    def rejected(self) -> int:
        return len(self.outcomes) - self.accepted


class BodyRejected(Exception):
    """The request as a whole is refused (after its bytes were dead-lettered)."""

    def __init__(self, status: int, failure_type: FailureType, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.failure_type = failure_type
        self.reason = reason


@dataclass(slots=True)
class Item:
    """One event as received: decoded JSON, or the bytes that failed to decode and why."""

    data: Any = None
    size: int = 0
    raw: bytes | None = None  # set only when the bytes were not JSON (or too deep)
    refused: str = "not valid JSON"


class Collector:
    def __init__(
        self, settings: CollectorSettings, registry: SchemaRegistry, bridge: KafkaBridge
    ) -> None:
        self.settings = settings
        self.options = settings.collector
        self.rules = settings.collector.envelope_rules()
        self.registry = registry
        self.bridge = bridge
        self.max_depth = settings.max_json_depth
        self.raw_topic = settings.topics.raw
        self.event_types = frozenset(key.uri for key in registry)
        self.dlq_topic = settings.topics.collector_dlq

    # -- whole bodies (REST) -------------------------------------------------------------

    def decode_body(self, body: bytes, content_encoding: str | None) -> bytes:
        """Undo gzip, refusing bodies that would inflate past the limit."""
        if not content_encoding or content_encoding.lower() == "identity":
            return body
        if content_encoding.lower() != "gzip":
            raise BodyRejected(
                415, FailureType.MALFORMED, f"unsupported encoding {content_encoding}"
            )
        inflater = zlib.decompressobj(wbits=31)
        try:
            out = inflater.decompress(body, self.options.max_body_bytes + 1)
        except zlib.error as exc:
            raise BodyRejected(
                400, FailureType.MALFORMED, f"body is not valid gzip: {exc}"
            ) from exc
        if len(out) > self.options.max_body_bytes or inflater.unconsumed_tail:
            raise BodyRejected(
                413,
                FailureType.SIZE_VIOLATION,
                f"body inflates past the limit of {self.options.max_body_bytes} bytes",
            )
        return out

    def split_body(self, body: bytes) -> list[Item]:
        """Turn a body (one event or an array of events) into items, or refuse it whole."""
        if len(body) > self.options.max_body_bytes:
            raise BodyRejected(
                413,
                FailureType.SIZE_VIOLATION,
                f"body is {len(body)} bytes, the limit is {self.options.max_body_bytes}",
            )
        try:
            data = loads_events(body, self.max_depth)
        except JsonRefused as exc:
            raise BodyRejected(400, FailureType.MALFORMED, f"body is {exc.reason}") from exc
        if isinstance(data, list):
            if not data:
                raise BodyRejected(400, FailureType.ENVELOPE_VIOLATION, "the batch is empty")
            if len(data) > self.options.max_batch_events:
                raise BodyRejected(
                    413,
                    FailureType.SIZE_VIOLATION,
                    f"the batch has {len(data)} events, the limit is "
                    f"{self.options.max_batch_events}",
                )
            if len(body) <= self.options.max_event_bytes:
                # No event can be larger than the whole body: skip measuring each one.
                return [Item(e, len(body)) for e in data]
            return [Item(e, len(orjson.dumps(e))) for e in data]
        return [Item(data, len(body))]

    async def dead_letter_body(
        self, body: bytes, rejected: BodyRejected, ctx: RequestContext
    ) -> None:
        """Keep a refused body (truncated past the event size limit) in the dead-letter topic."""
        kept = body[: self.options.max_event_bytes]
        failed = FailedEvent(
            failure_type=rejected.failure_type,
            stage=Stage.COLLECTOR,
            errors=[ErrorDetail(field="/", reason=rejected.reason)],
            original=OriginalPayload.from_bytes(kept, self.max_depth),
            received_at=ctx.received_at,
            metadata={
                **ctx.metadata(self.options.instance_id),
                "body_bytes": len(body),
                "truncated": len(kept) < len(body),
            },
        )
        deliveries = Deliveries(asyncio.get_running_loop())
        self.bridge.produce(
            deliveries,
            self.dlq_topic,
            failed.model_dump_json().encode(),
            key=self._request_key(ctx),
        )
        deliveries.seal()
        await deliveries.wait(self.options.delivery_timeout_s)
        metrics.rejected(ctx.path, rejected.failure_type).inc()

    # -- events ----------------------------------------------------------------------------

    async def ingest(self, items: list[Item], ctx: RequestContext) -> IngestResult:
        """Route every item to the raw or dead-letter topic and await Kafka's confirmation."""
        meta = ctx.metadata(self.options.instance_id)
        deliveries = Deliveries(asyncio.get_running_loop())
        outcomes = []
        # The fast path: an event the plain check accepts goes straight to the raw topic;
        # any other is checked (and explained) by check_envelope in _route.
        event_types = self.event_types
        earliest = ctx.received_at - self.rules.max_past_skew
        latest = ctx.received_at + self.rules.max_future_skew
        max_bytes = self.rules.max_event_bytes
        produce, raw_topic, dumps = self.bridge.produce, self.raw_topic, orjson.dumps
        try:
            for index, item in enumerate(items):
                data = item.data
                key = (
                    accepted_key(data, event_types, earliest, latest)
                    if item.raw is None and item.size <= max_bytes
                    else None
                )
                if key is None:
                    outcomes.append(self._route(index, item, meta, ctx, deliveries))
                    continue
                produce(deliveries, raw_topic, dumps({**data, "collector": meta}), key=key)
                outcomes.append(Outcome(index, data["event_id"], True))
        finally:
            deliveries.seal()
        metrics.DELIVERY.observe(await deliveries.wait(self.options.delivery_timeout_s))
        result = IngestResult(outcomes)
        if result.accepted:
            metrics.accepted(ctx.path).inc(result.accepted)
        for o in outcomes:
            if not o.accepted:
                metrics.rejected(ctx.path, o.failure_type).inc()
        return result

    def _route(
        self,
        index: int,
        item: Item,
        meta: dict[str, Any],
        ctx: RequestContext,
        deliveries: Deliveries,
    ) -> Outcome:
        if item.raw is not None:
            failure_type = FailureType.MALFORMED
            errors: list[FieldError] = [FieldError("/", f"the event is {item.refused}")]
            if len(item.raw) > self.options.max_event_bytes:
                failure_type = FailureType.SIZE_VIOLATION
                errors = [
                    FieldError(
                        "/",
                        f"event is {len(item.raw)} bytes, the limit is "
                        f"{self.options.max_event_bytes}",
                    )
                ]
            original = OriginalPayload.from_bytes(
                item.raw[: self.options.max_event_bytes], self.max_depth
            )
            return self._reject(
                index, None, None, None, failure_type, errors, original, ctx, deliveries
            )

        check = check_envelope(
            item.data, self.registry, self.rules, size_bytes=item.size, now=ctx.received_at
        )
        if check.envelope is not None:
            record = {**item.data, "collector": meta}
            self.bridge.produce(
                deliveries,
                self.raw_topic,
                orjson.dumps(record),
                key=check.envelope.partition_key(),
            )
            return Outcome(index, item.data["event_id"], True)

        data = item.data
        event_id, event_type = event_identity(data)
        too_big = check.failure_type is FailureType.SIZE_VIOLATION
        original = (
            OriginalPayload.from_bytes(
                orjson.dumps(data)[: self.options.max_event_bytes], self.max_depth
            )
            if too_big
            else OriginalPayload(encoding="json", data=data)
        )
        assert check.failure_type is not None
        return self._reject(
            index,
            event_id,
            event_type,
            event_key(data),
            check.failure_type,
            check.errors,
            original,
            ctx,
            deliveries,
        )

    def _reject(
        self,
        index: int,
        event_id: str | None,
        event_type: str | None,
        key: str | None,
        failure_type: FailureType,
        errors: list[FieldError],
        original: OriginalPayload,
        ctx: RequestContext,
        deliveries: Deliveries,
    ) -> Outcome:
        """Dead-letter one event, keyed as the raw topic would key it (else by its request)."""
        failed = FailedEvent(
            failure_type=failure_type,
            stage=Stage.COLLECTOR,
            errors=[ErrorDetail(field=e.field, reason=e.reason) for e in errors],
            original=original,
            event_id=event_id,
            event_type=event_type,
            received_at=ctx.received_at,
            metadata=ctx.metadata(self.options.instance_id),
        )
        self.bridge.produce(
            deliveries,
            self.dlq_topic,
            failed.model_dump_json().encode(),
            key=key or self._request_key(ctx),
        )
        return Outcome(index, event_id, False, failure_type, tuple(errors))

    @staticmethod
    def _request_key(ctx: RequestContext) -> str:
        """The key of a dead letter that names no event (user, session, device or event id)."""
        return f"request_id:{ctx.request_id}"
