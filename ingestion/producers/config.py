"""Settings of the producers: where the collector is, how to batch, retry and spool.

Read from the environment like every other settings object of the platform, e.g.
``TRIBUTARY_PRODUCER__API_KEY`` or ``TRIBUTARY_PRODUCER__COLLECTOR_URL``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from resources.settings import PlatformSettings, local_folder
from runtime.retry import RetrySettings

# Producers retry sooner than the workers: a batch waits in the spool, not in a consumer.
DEFAULT_RETRY = RetrySettings(initial_s=0.2, max_s=10)


class ProducerOptions(BaseModel):
    collector_url: str = Field("http://127.0.0.1:8000", description="Collector HTTP base URL.")
    grpc_target: str = Field("127.0.0.1:50051", description="Collector gRPC host:port.")
    api_key: SecretStr | None = Field(None, description="Sent as 'Authorization: Bearer <key>'.")
    batch_size: int = Field(100, ge=1, le=1000, description="Events per request.")
    gzip: bool = Field(True, description="Compress request bodies.")
    timeout_s: float = Field(30, gt=0, description="Timeout of one request.")
    max_retries: int = Field(10, ge=0, description="Retries of one batch before giving up.")
    retry: RetrySettings = Field(
        DEFAULT_RETRY,
        description="Waits between retries of a batch (a server's Retry-After may be longer).",
    )
    spool_path: str = Field(
        default_factory=lambda: str(local_folder("spool") / "{name}.sqlite"),
        description="SQLite spool of unsent events; '{name}' is replaced by the producer's name.",
    )

    def spool_file(self, name: str) -> Path:
        """The spool file of the producer called ``name`` (e.g. ``clickstream``)."""
        return Path(self.spool_path.replace("{name}", name))


class ProducerSettings(PlatformSettings):
    producer: ProducerOptions = ProducerOptions()
