"""The records that flow between the stages, after the envelope.

- Raw topic: the event's envelope as the producer sent it, plus a ``collector`` object
  (``CollectorMetadata``).
- Enriched topic: the raw record plus ``enrichment`` (``Enrichment``) and ``lineage``
  (``Lineage``). Loaders read these fields; the lake flattens them into columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CollectorMetadata(BaseModel):
    """What the collector stamped on an accepted event."""

    received_at: datetime
    collector_id: str
    request_id: str
    producer: str
    client_ip: str | None = None
    user_agent: str | None = None
    path: Literal["rest", "grpc"]


class UserAgentInfo(BaseModel):
    browser_family: str | None = None
    browser_version: str | None = None
    os_family: str | None = None
    os_version: str | None = None
    device_family: str | None = None
    device_class: Literal["desktop", "mobile", "tablet", "bot", "other"] = "other"
    is_bot: bool = False


class GeoInfo(BaseModel):
    country_code: str | None = Field(None, description="ISO 3166-1 alpha-2.")
    country_name: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    source: str = Field(description="Which database answered, and its version.")


class MoneyInfo(BaseModel):
    """A price or total of the payload, normalised to the reporting currency."""

    field: str = Field(description="JSON Pointer of the amount in the payload.")
    amount: float
    currency: str
    amount_eur: float
    rates_version: str = Field(description="Which rate table converted it.")


class Enrichment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_agent: UserAgentInfo | None = None
    geo: GeoInfo | None = None
    money: list[MoneyInfo] = Field(default_factory=list)
    scores: dict[str, float] = Field(
        default_factory=dict, description="Model outputs, e.g. bot_probability."
    )
    model_version: str | None = None


class Lineage(BaseModel):
    enricher_version: str
    schema_version: str = Field(description="The event type's SchemaVer that validated it.")
    model_version: str | None = None
    source_topic: str
    source_partition: int
    source_offset: int
    enriched_at: datetime
    pseudonym_key_version: str | None = Field(
        None,
        description="The key version that pseudonymised the record's personal fields "
        "(docs/privacy.md); absent when pseudonyms were off.",
    )


class EnrichedEvent(BaseModel):
    """One record of the enriched topic."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    event_type: str
    event_timestamp: str
    source: str
    payload: dict[str, Any]
    context: dict[str, Any] | None = None
    collector: CollectorMetadata
    enrichment: Enrichment
    lineage: Lineage
