"""``POST /v1/events``: one event or a JSON array of them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from starlette.types import Receive, Scope, Send

from contract.failures import FailureType
from ingestion.api.deps import CollectorDep, ContextDep, context_for, principal_for
from ingestion.api.models import (
    EVENT_EXAMPLE,
    SECURITY,
    BodyRefused,
    ErrorResponse,
    IngestResponse,
)
from ingestion.api.responses import JSONBytes
from ingestion.core import metrics
from ingestion.core.config import CollectorSettings
from ingestion.core.delivery import KafkaUnavailable
from ingestion.core.ingest import BodyRejected, Collector, IngestResult, RequestContext

router = APIRouter()

# Only JSON: text/plain would serve a browser's preflight-free request, but a key in a header
# makes every browser request preflighted anyway, and the collector answers no CORS.
JSON_TYPE = "application/json"


async def _read_limited(request: Request, limit: int) -> bytes:
    """Read at most ``limit + 1`` bytes: enough to know a body is too large, no more."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def _status(result: IngestResult) -> int:
    if result.rejected == 0:
        return 202
    return 207 if result.accepted else 400


@router.post(
    "/v1/events",
    status_code=202,
    response_model=IngestResponse,
    summary="Send one event or a batch",
    description=(
        "Accepts one event (a JSON object) or a batch (a JSON array), optionally "
        "`Content-Encoding: gzip`. Answers only after Kafka confirmed every event: 202 when all "
        "were accepted, 207 when some were rejected, 400 when all were. Rejected events are "
        "kept in the dead-letter topic with their reasons."
    ),
    responses={
        202: {"description": "Every event was accepted."},
        207: {
            "model": IngestResponse,
            "description": "Some events were rejected; each event's status says which and why.",
        },
        400: {
            "model": IngestResponse | BodyRefused,
            "description": "Every event was rejected (per-event statuses), or the body was "
            "refused whole: not JSON, nested too deep, not gzip, or an empty batch.",
        },
        401: {
            "model": ErrorResponse,
            "description": "Missing or invalid API key.",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        },
        403: {"model": ErrorResponse, "description": "The key may not send events."},
        413: {"model": BodyRefused, "description": "Body, batch or inflated body too large."},
        415: {
            "model": BodyRefused,
            "description": "Not application/json, or an unknown Content-Encoding.",
        },
        503: {
            "model": ErrorResponse,
            "description": "Kafka unavailable or too slow to confirm; retry after a while.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    },
    openapi_extra={
        "security": SECURITY,
        "requestBody": {
            "required": True,
            "content": {
                JSON_TYPE: {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/Event"},
                            {"$ref": "#/components/schemas/EventBatch"},
                        ]
                    },
                    "examples": {
                        "one": {"summary": "One event", "value": EVENT_EXAMPLE},
                        "batch": {"summary": "A batch", "value": [EVENT_EXAMPLE]},
                    },
                }
            },
        },
    },
)
async def post_events(request: Request, collector: CollectorDep, ctx: ContextDep) -> JSONBytes:
    # Served by events_endpoint before the application; this route documents it (and answers
    # the same way when reached through the application, as the tests of both check).
    body = await _read_limited(request, collector.options.max_body_bytes)
    status, content = await answer(
        collector,
        ctx,
        body,
        request.headers.get("content-type"),
        request.headers.get("content-encoding"),
    )
    return JSONBytes(content, status_code=status)


async def answer(
    collector: Collector,
    ctx: RequestContext,
    body: bytes,
    content_type_header: str | None,
    content_encoding: str | None,
) -> tuple[int, dict[str, Any]]:
    """The status and answer of ``POST /v1/events`` for a body read up to the limit.

    Raises:
        KafkaUnavailable: Kafka did not confirm every message of the request.
    """
    content_type = (content_type_header or "").split(";")[0].strip().lower()
    # What a refusal keeps: the inflated body once gzip was undone, the bytes as sent before.
    kept = body
    try:
        if content_type != JSON_TYPE:
            raise BodyRejected(
                415,
                FailureType.MALFORMED,
                f"content type must be application/json, not '{content_type}'",
            )
        kept = collector.decode_body(body, content_encoding)
        items = collector.split_body(kept)
    except BodyRejected as rejected:
        return await _refuse(collector, kept, rejected, ctx)
    result = await collector.ingest(items, ctx)
    status = _status(result)
    metrics.requests("rest", status).inc()
    content: dict[str, Any] = {
        "request_id": ctx.request_id,
        "accepted": result.accepted,
        "rejected": result.rejected,
    }
    if result.rejected:
        content["events"] = [o.as_dict() for o in result.outcomes]
    return status, content


async def _refuse(
    collector: Collector, body: bytes, rejected: BodyRejected, ctx: RequestContext
) -> tuple[int, dict[str, Any]]:
    await collector.dead_letter_body(body, rejected, ctx)
    metrics.requests("rest", rejected.status).inc()
    return rejected.status, {
        "detail": rejected.reason,
        "request_id": ctx.request_id,
        "reason": str(rejected.failure_type),
    }


def unavailable(exc: KafkaUnavailable, settings: CollectorSettings) -> JSONBytes:
    """The 503 of a request whose events Kafka did not confirm."""
    metrics.requests("rest", 503).inc()
    return JSONBytes(
        {"detail": f"events not accepted: {exc}; retry later"},
        status_code=503,
        headers={"Retry-After": str(settings.collector.retry_after_s)},
    )


def http_error(exc: HTTPException) -> JSONBytes:
    """The answer to a request refused before its body is read (401, 403, 404, ...)."""
    metrics.requests("rest", exc.status_code).inc()
    return JSONBytes({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# The request headers events_endpoint reads (ASGI gives their names in lower case).
_HEADERS = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"content-type",
        b"content-encoding",
        b"x-forwarded-for",
        b"user-agent",
        b"x-request-id",
    }
)


EVENTS_PATH = "/v1/events"


async def events_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/events`` as a bare ASGI handler, called before the FastAPI application.

    The same steps as the route above, in the same order (the key, then the body, then
    ``answer``), and the same answers as the application's exception handlers, without
    FastAPI's telemetry check, middleware, routing, dependency solving and request objects:
    for one event per request they cost more than the collector's own work. The
    application (``CollectorApp``) sends only this method on this path here; its route for
    the path is what the OpenAPI document describes.
    """
    state = scope["app"].state
    collector: Collector = state.collector
    settings: CollectorSettings = state.settings
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS and name not in headers:
            headers[name] = value.decode("latin-1")
    try:
        principal = principal_for(
            settings, state.keys, headers.get(b"authorization"), headers.get(b"x-api-key")
        )
    except HTTPException as exc:
        await http_error(exc)(scope, receive, send)
        return
    client = scope.get("client")
    ctx = context_for(
        settings,
        principal,
        client[0] if client else None,
        headers.get(b"x-forwarded-for"),
        headers.get(b"user-agent"),
        headers.get(b"x-request-id"),
    )
    limit = collector.options.max_body_bytes
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return  # the client is gone before its body arrived: no one to answer
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    try:
        status, content = await answer(
            collector,
            ctx,
            body,
            headers.get(b"content-type"),
            headers.get(b"content-encoding"),
        )
    except KafkaUnavailable as exc:
        await unavailable(exc, settings)(scope, receive, send)
        return
    payload = orjson.dumps(content)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(payload)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
