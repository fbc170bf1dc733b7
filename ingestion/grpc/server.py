"""The gRPC transport: the same core, validation, metadata, auth and routing as REST."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc

from contract.failures import FailureType
from contract.jsontext import JsonRefused, loads
from ingestion.core.auth import ANONYMOUS, KeyStore, Principal
from ingestion.core.config import CollectorSettings
from ingestion.core.delivery import KafkaUnavailable
from ingestion.core.ingest import (
    BodyRejected,
    Collector,
    IngestResult,
    Item,
    Outcome,
    RequestContext,
)
from ingestion.grpc import collector_pb2 as pb
from ingestion.grpc import collector_pb2_grpc as pb_grpc

Ctx = grpc.aio.ServicerContext[pb.SendEventsRequest, pb.SendEventsResponse]


def _peer_ip(peer: str) -> str | None:
    # "ipv4:127.0.0.1:52144" or "ipv6:[::1]:52144"
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


def _status(o: Outcome) -> pb.EventStatus:
    return pb.EventStatus(
        index=o.index,
        event_id=o.event_id or "",
        accepted=o.accepted,
        reason=str(o.failure_type) if o.failure_type else "",
        errors=[pb.FieldError(field=e.field, reason=e.reason) for e in o.errors],
    )


class CollectorService(pb_grpc.CollectorServicer):
    def __init__(self, collector: Collector, settings: CollectorSettings, keys: KeyStore) -> None:
        self.collector = collector
        self.settings = settings
        self.keys = keys

    async def _principal(self, context: Ctx) -> Principal:
        if self.settings.collector.auth_disabled:
            return ANONYMOUS
        metadata = dict(context.invocation_metadata() or ())
        header = str(metadata.get("authorization", ""))
        scheme, _, token = header.partition(" ")
        presented = (
            token.strip() if scheme.lower() == "bearer" else str(metadata.get("x-api-key", ""))
        )
        principal = self.keys.authenticate(presented)
        if principal is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API key")
        assert principal is not None
        if not principal.can_write:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"producer '{principal.producer}' may not send"
            )
        return principal

    def _context(self, context: Ctx, principal: Principal) -> RequestContext:
        metadata = dict(context.invocation_metadata() or ())
        request_id = str(metadata.get("x-request-id") or uuid.uuid4())[:128]
        return RequestContext(
            producer=principal.producer,
            client_ip=_peer_ip(context.peer()),
            user_agent=str(metadata.get("user-agent")) if "user-agent" in metadata else None,
            request_id=request_id,
            path="grpc",
        )

    def _items(self, events: list[bytes]) -> list[Item]:
        limit = self.settings.collector.max_event_bytes
        items = []
        for raw in events:
            if len(raw) > limit:
                items.append(Item(raw=raw))
                continue
            try:
                items.append(Item(loads(raw, self.collector.max_depth), len(raw)))
            except JsonRefused as exc:
                items.append(Item(raw=raw, refused=exc.reason))
        return items

    async def _ingest(self, events: list[bytes], ctx: RequestContext, context: Ctx) -> IngestResult:
        options = self.settings.collector
        if not events:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the batch is empty")
        if len(events) > options.max_batch_events:
            rejected = BodyRejected(
                413,
                FailureType.SIZE_VIOLATION,
                f"the batch has {len(events)} events, the limit is {options.max_batch_events}",
            )
            await self.collector.dead_letter_body(b"[" + b",".join(events) + b"]", rejected, ctx)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, rejected.reason)
        try:
            return await self.collector.ingest(self._items(events), ctx)
        except KafkaUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"events not accepted: {exc}")
            raise  # unreachable: abort raises

    def _response(self, ctx: RequestContext, outcomes: list[Outcome]) -> pb.SendEventsResponse:
        result = IngestResult(outcomes)
        return pb.SendEventsResponse(
            request_id=ctx.request_id,
            accepted=result.accepted,
            rejected=result.rejected,
            events=[_status(o) for o in outcomes] if result.rejected else [],
        )

    async def SendEvents(
        self, request: pb.SendEventsRequest, context: Ctx
    ) -> pb.SendEventsResponse:
        principal = await self._principal(context)
        ctx = self._context(context, principal)
        result = await self._ingest(list(request.events), ctx, context)
        return self._response(ctx, result.outcomes)

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[pb.SendEventsRequest],
        context: Ctx,
    ) -> pb.SendEventsResponse:
        principal = await self._principal(context)
        ctx = self._context(context, principal)
        outcomes: list[Outcome] = []
        async for request in request_iterator:
            result = await self._ingest(list(request.events), ctx, context)
            offset = len(outcomes)
            outcomes += [
                Outcome(o.index + offset, o.event_id, o.accepted, o.failure_type, o.errors)
                for o in result.outcomes
            ]
        return self._response(ctx, outcomes)


async def start_grpc_server(
    collector: Collector, settings: CollectorSettings, keys: KeyStore
) -> grpc.aio.Server:
    options = settings.collector
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", options.max_body_bytes),
            # Several collector processes share the port, as they share the HTTP one.
            ("grpc.so_reuseport", 1),
        ]
    )
    service = CollectorService(collector, settings, keys)
    pb_grpc.add_CollectorServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"{options.host}:{options.grpc_port}")
    await server.start()
    return server
