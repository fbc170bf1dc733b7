"""Settings of the enrichment API process: the platform's settings plus its own limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from resources.settings import PlatformSettings

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = PACKAGE_DIR / "models"
DEFAULT_GEO_DATABASE = PACKAGE_DIR / "data" / "geo-whois-asn-country-2.3.2026061719.npz"
DEFAULT_RATES = PACKAGE_DIR / "data" / "eur-reference-rates-2026.1.json"


class EnrichmentOptions(BaseModel):
    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8001, description="HTTP port.")
    workers: int = Field(1, ge=1, description="Server processes (each loads the model).")

    max_batch_events: int = Field(1000, ge=1, description="Most events in one request.")
    latency_budget_ms: float = Field(
        500, gt=0, description="Longest a batch may take; past it the answer is 503 (retry)."
    )
    retry_after_s: int = Field(1, ge=0, description="Retry-After sent with 503.")
    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="Folder of the model artefacts.")
    model_name: str = Field("bot_score", description="Which model of model_dir to serve.")
    model_version: str | None = Field(
        None, description="Version to serve; the newest in model_dir when unset."
    )
    geo_database: Path = Field(DEFAULT_GEO_DATABASE, description="IP-to-country table (.npz).")
    rates: Path = Field(DEFAULT_RATES, description="Static EUR reference-rate table (JSON).")


class EnrichmentSettings(PlatformSettings):
    """``TRIBUTARY_ENRICHMENT__PORT`` and so on; ``host``/``port``/``workers`` also at the top."""

    enrichment: EnrichmentOptions = EnrichmentOptions()

    @property
    def host(self) -> str:
        return self.enrichment.host

    @property
    def port(self) -> int:
        return self.enrichment.port

    @property
    def workers(self) -> int:
        return self.enrichment.workers
