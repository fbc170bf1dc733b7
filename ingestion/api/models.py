"""Response bodies of the collector's API, with the examples its OpenAPI page shows."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class ErrorResponse(BaseModel):
    detail: str
    request_id: str | None = None
    reason: str | None = Field(None, description="Failure type when the body was dead-lettered.")


EVENT_EXAMPLE = {
    "event_id": "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11",
    "event_type": "iglu:com.tributary.shop/page_view/jsonschema/1-0-0",
    "event_timestamp": "2026-11-28T10:15:00.123+01:00",
    "source": "web-shop",
    "payload": {"page_url": "https://shop.example.com/"},
    "context": {"user_id": "u-1", "session_id": "s-9"},
}
