"""Settings of the collector process: the platform's connections plus its own limits."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from typing import Self

from pydantic import BaseModel, Field, model_validator

from contract.envelope import EnvelopeRules
from resources.settings import PlatformSettings, Profile

WRITE_SCOPE = "events:write"


class ApiKey(BaseModel):
    """One producer's key, stored as the SHA-256 of the key (never the key itself)."""

    producer: str = Field(min_length=1, max_length=128)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[str] = Field(default_factory=lambda: [WRITE_SCOPE])


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class CollectorOptions(BaseModel):
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8000, description="HTTP port.")
    grpc_port: int = Field(50051, description="gRPC port (0 disables gRPC).")
    workers: int = Field(2, ge=1, description="Server processes (each with its own producer).")
    instance_id: str = Field(default_factory=_instance_id, description="Stamped on events.")

    max_body_bytes: int = Field(5 * 1024 * 1024, description="Largest request body (decoded).")
    max_batch_events: int = Field(1000, ge=1, description="Most events in one request.")
    max_event_bytes: int = Field(64 * 1024, description="Largest single event.")
    max_past_skew_s: float = Field(7 * 24 * 3600, description="Oldest accepted event time.")
    max_future_skew_s: float = Field(600, description="Furthest accepted future event time.")

    api_keys: list[ApiKey] = Field(default_factory=list, description="Producers' hashed keys.")
    auth_disabled: bool = Field(False, description="Accept requests without a key (local only).")
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list, description="Proxies whose X-Forwarded-For is believed."
    )

    delivery_timeout_s: float = Field(
        15, gt=0, description="How long an event may wait for Kafka before the request fails."
    )
    queue_max_messages: int = Field(200_000, description="Producer queue bound (then 503).")
    linger_ms: int = Field(
        5, ge=0, description="How long the producer gathers a batch: throughput against latency."
    )
    retry_after_s: int = Field(2, description="Retry-After sent with 503.")

    def envelope_rules(self) -> EnvelopeRules:
        return EnvelopeRules(
            max_event_bytes=self.max_event_bytes,
            max_past_skew=timedelta(seconds=self.max_past_skew_s),
            max_future_skew=timedelta(seconds=self.max_future_skew_s),
        )


class CollectorSettings(PlatformSettings):
    collector: CollectorOptions = CollectorOptions()

    @model_validator(mode="after")
    def _auth_off_only_locally(self) -> Self:
        if self.collector.auth_disabled and self.profile is not Profile.LOCAL:
            raise ValueError(
                "TRIBUTARY_COLLECTOR__AUTH_DISABLED is allowed only with TRIBUTARY_PROFILE=local"
            )
        return self
