"""One typed, versioned format for the dead letters of every stage.

In the manner of Snowplow's failed events: every dead letter says what kind of failure it
is, which stage refused it, the errors (field and reason), the original bytes, and when.
Dead letters of all stages can therefore be indexed and queried together.
"""

from __future__ import annotations

import base64
import enum
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from contract.jsontext import DEFAULT_MAX_DEPTH, JsonRefused, loads

FAILED_EVENT_SCHEMA = "iglu:com.tributary.failures/failed_event/jsonschema/1-0-0"

# Kafka header counting how often a dead letter was re-published; replay stops at a limit.
REPLAY_COUNT_HEADER = "tributary-replay-count"


def replay_count_of(headers: Any) -> int:
    """The replay counter among a Kafka record's headers (0 when absent or unreadable)."""
    items = headers.items() if isinstance(headers, dict) else headers or []
    for key, value in items:
        if key == REPLAY_COUNT_HEADER and value is not None:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return int(text) if text.isdigit() else 0
    return 0


class FailureType(enum.StrEnum):
    SIZE_VIOLATION = "size_violation"
    """The event or request was larger than allowed."""
    MALFORMED = "malformed"
    """The bytes are not JSON (or not decodable at all)."""
    ENVELOPE_VIOLATION = "envelope_violation"
    """A top-level field is missing, of the wrong type, or out of range."""
    UNKNOWN_SCHEMA = "unknown_schema"
    """The event type names no registered schema."""
    SCHEMA_VIOLATION = "schema_violation"
    """The payload does not satisfy its event type's schema."""
    ENRICHMENT_FAILED = "enrichment_failed"
    """The enrichment API could not enrich the event before the deadline."""
    LOADER_REJECTION = "loader_rejection"
    """A store (the search index, the lake) refused the document."""


class Stage(enum.StrEnum):
    COLLECTOR = "collector"
    ENRICHER = "enricher"
    REALTIME_LOADER = "realtime_loader"
    BATCH_LOADER = "batch_loader"


class ErrorDetail(BaseModel):
    field: str = Field(description="JSON Pointer of the failing field ('/' for the whole event).")
    reason: str


class OriginalPayload(BaseModel):
    """The event exactly as it arrived: JSON when it parsed, base64 bytes otherwise."""

    encoding: Literal["json", "base64"]
    data: Any

    @classmethod
    def from_bytes(cls, raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> OriginalPayload:
        """The bytes as JSON if they parse, else as base64.

        JSON nested deeper than ``max_depth`` (``PlatformSettings.max_json_depth``) is kept
        as its bytes too: a dead letter always serialises and parses again.
        """
        try:
            return cls(encoding="json", data=loads(raw, max_depth))
        except JsonRefused:
            return cls(encoding="base64", data=base64.b64encode(raw).decode("ascii"))

    def to_bytes(self) -> bytes:
        if self.encoding == "base64":
            return base64.b64decode(self.data)
        return json.dumps(self.data, separators=(",", ":")).encode()


class FailedEvent(BaseModel):
    """A dead letter, as written to every dead-letter topic."""

    failure_schema: str = FAILED_EVENT_SCHEMA
    failure_type: FailureType
    stage: Stage
    errors: list[ErrorDetail]
    original: OriginalPayload
    event_id: str | None = None
    event_type: str | None = None
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    received_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    replay_count: int = 0
