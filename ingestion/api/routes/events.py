"""``POST /v1/events``: one event or a JSON array of them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from contract.failures import FailureType
from ingestion.api.deps import CollectorDep, ContextDep
from ingestion.api.models import (
    EVENT_EXAMPLE,
    SECURITY,
    BodyRefused,
    ErrorResponse,
    IngestResponse,
)
from ingestion.api.responses import JSONBytes
from ingestion.core import metrics
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
    body = await _read_limited(request, collector.options.max_body_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # What a refusal keeps: the inflated body once gzip was undone, the bytes as sent before.
    kept = body
    try:
        if content_type != JSON_TYPE:
            raise BodyRejected(
                415,
                FailureType.MALFORMED,
                f"content type must be application/json, not '{content_type}'",
            )
        kept = collector.decode_body(body, request.headers.get("content-encoding"))
        items = collector.split_body(kept)
    except BodyRejected as rejected:
        return await _refuse(collector, kept, rejected, ctx)
    result = await collector.ingest(items, ctx)
    status = _status(result)
    metrics.REQUESTS.labels("rest", status).inc()
    content: dict[str, Any] = {
        "request_id": ctx.request_id,
        "accepted": result.accepted,
        "rejected": result.rejected,
    }
    if result.rejected:
        content["events"] = [o.as_dict() for o in result.outcomes]
    return JSONBytes(content, status_code=status)


async def _refuse(
    collector: Collector, body: bytes, rejected: BodyRejected, ctx: RequestContext
) -> JSONBytes:
    await collector.dead_letter_body(body, rejected, ctx)
    metrics.REQUESTS.labels("rest", rejected.status).inc()
    return JSONBytes(
        {
            "detail": rejected.reason,
            "request_id": ctx.request_id,
            "reason": str(rejected.failure_type),
        },
        status_code=rejected.status,
    )
