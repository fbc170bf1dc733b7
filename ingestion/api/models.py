"""Response bodies of the collector's API, with the examples its OpenAPI page shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from contract.envelope import Envelope


class FieldErrorPublic(BaseModel):
    field: str = Field(description="JSON Pointer of the failing field.")
    reason: str


class EventStatusPublic(BaseModel):
    index: int = Field(description="Position of the event in the request.")
    event_id: str | None
    status: str = Field(description="accepted or rejected")
    reason: str | None = Field(None, description="Failure type, for a rejected event.")
    errors: list[FieldErrorPublic] | None = None


class IngestResponse(BaseModel):
    request_id: str
    accepted: int = Field(description="Events now durably in the raw topic.")
    rejected: int = Field(description="Events written to the dead-letter topic instead.")
    events: list[EventStatusPublic] | None = Field(
        None, description="Per-event status; present when any event was rejected."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "request_id": "0d6c6f0e-3f0e-4d9b-9a1e-8f1b7f0c2a10",
                    "accepted": 100,
                    "rejected": 0,
                },
                {
                    "request_id": "5a1b9d7e-6c1f-4c1b-8d0e-1f2a3b4c5d6e",
                    "accepted": 1,
                    "rejected": 1,
                    "events": [
                        {
                            "index": 0,
                            "event_id": "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11",
                            "status": "accepted",
                        },
                        {
                            "index": 1,
                            "event_id": "not-a-uuid",
                            "status": "rejected",
                            "reason": "envelope_violation",
                            "errors": [
                                {"field": "/event_id", "reason": "Input should be a valid UUID"}
                            ],
                        },
                    ],
                },
            ]
        }
    }


class BodyRefused(BaseModel):
    """A body refused as a whole; its bytes are kept in the dead-letter topic all the same."""

    detail: str = Field(description="Why, in words.")
    reason: str = Field(
        description="The dead letter's failure type: malformed, size_violation or "
        "envelope_violation."
    )
    request_id: str


class ErrorResponse(BaseModel):
    detail: str


class Readiness(BaseModel):
    status: str = Field(description="ready or unavailable")
    kafka: str = Field(description="reachable, or why not")
    topics: dict[str, bool] | None = Field(None, description="Whether each topic exists.")


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "A producer's API key."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def event_schemas(
    event_types: list[str], max_batch_events: int, limits: str
) -> dict[str, dict[str, Any]]:
    """The request body's schemas: the envelope, and a batch of such events.

    The envelope is ``contract.envelope.Envelope``'s, naming the registered event types.

    ``limits`` says in words what JSON Schema cannot: the time skew, the size and the depth.
    """
    event = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, dict[str, Any]] = event.pop("$defs")
    event["title"] = "Event"
    event["description"] = f"One event. {limits}"
    event["properties"]["event_type"] = {
        "type": "string",
        "enum": sorted(event_types),
        "description": "A registered schema's URI; the enricher checks the payload against it.",
    }
    schemas["Event"] = event
    schemas["EventBatch"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Event"},
        # An empty batch says nothing and is refused (400): a producer sending one has a bug.
        "minItems": 1,
        "maxItems": max_batch_events,
        "description": "A batch; each event is checked on its own (see 207).",
    }
    return schemas


EVENT_EXAMPLE = {
    "event_id": "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11",
    "event_type": "iglu:com.tributary.shop/page_view/jsonschema/1-0-0",
    "event_timestamp": "2026-11-28T10:15:00.123+01:00",
    "source": "web-shop",
    "payload": {"page_url": "https://shop.example.com/"},
    "context": {"user_id": "u-1", "session_id": "s-9"},
}
