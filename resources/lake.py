"""The Iceberg catalog of the curated lake (Dagster-free).

``settings.lake_catalog`` chooses it (``TRIBUTARY_LAKE__CATALOG``, else the profile's):

- ``sql`` (``local``): pyiceberg's SQL catalog in SQLite, tables under ``lake.local_root``.
- ``rest`` (``stack``): the Iceberg REST catalog that SeaweedFS serves, tables in the
  warehouse, which must be an S3 *table bucket* (``resources.s3.ensure_buckets`` creates it
  so). Trino reads this one.

:func:`catalog_properties` is the one description of the catalog; the Dagster IO manager
(dagster-iceberg), Trino's catalog and :func:`make_catalog` all take it. Its secrets (the S3
secret, also inside the REST catalog's OAuth2 ``credential``) are added by :func:`with_secret`
to :func:`public_catalog_properties`, the properties without them: those are all that Dagster's
resource config ever holds, and the IO manager adds the secret from a ``dg.EnvVar`` at run time.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.catalog import Catalog, load_catalog

from resources.settings import LakeCatalog, PlatformSettings

CATALOG_NAME = "tributary"
# Namespaces of the curated lake: staging tables and quarantine, then the reporting marts.
NAMESPACES = ("staging", "marts")

# The curated tables that hold one event's rows, as (namespace, table), and the column every
# daily-partitioned table is partitioned by (the event's UTC date).
VALIDATED_EVENTS = ("staging", "validated_events")
QUARANTINED_EVENTS = ("staging", "quarantined_events")
DEDUPLICATED_EVENTS = ("staging", "deduplicated_events")
STG_EVENTS = ("staging", "stg_events")
FCT_EVENTS = ("marts", "fct_events")
FCT_SESSIONS = ("marts", "fct_sessions")
PARTITION_COLUMN = "event_date"


def table_identifier(table: tuple[str, str]) -> str:
    """``namespace.table``, as pyiceberg's catalogs name a table."""
    return ".".join(table)


def public_catalog_properties(
    settings: PlatformSettings, catalog: LakeCatalog | None = None
) -> dict[str, Any]:
    """The catalog's properties without its secrets (default catalog: the settings')."""
    if (catalog or settings.lake_catalog) is LakeCatalog.SQL:
        root = settings.lake.local_root.resolve()
        (root / "warehouse").mkdir(parents=True, exist_ok=True)
        return {
            "type": "sql",
            "uri": f"sqlite:///{root / 'catalog.db'}",
            "warehouse": (root / "warehouse").as_uri(),
        }
    s3 = settings.s3
    return {
        "type": "rest",
        "uri": s3.iceberg_catalog_uri,
        "oauth2-server-uri": f"{s3.iceberg_catalog_uri.rstrip('/')}/v1/oauth/tokens",
        "warehouse": f"s3://{s3.warehouse_bucket}/",
        "s3.endpoint": s3.endpoint_url,
        "s3.access-key-id": s3.access_key_id,
        "s3.region": s3.region,
        "s3.path-style-access": "true",
    }


def with_secret(properties: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """``properties`` with the S3 secret added where the catalog needs it (REST only)."""
    if properties.get("type") != "rest":
        return dict(properties)
    if not secret:
        raise ValueError("the REST catalog needs the S3 secret (TRIBUTARY_S3__SECRET_ACCESS_KEY)")
    return {
        **properties,
        "credential": f"{properties['s3.access-key-id']}:{secret}",
        "s3.secret-access-key": secret,
    }


def catalog_properties(
    settings: PlatformSettings, catalog: LakeCatalog | None = None
) -> dict[str, Any]:
    """The properties pyiceberg takes for the lake's catalog, secrets included."""
    return with_secret(
        public_catalog_properties(settings, catalog),
        settings.s3.secret_access_key.get_secret_value(),
    )


def make_catalog(settings: PlatformSettings) -> Catalog:
    return load_catalog(CATALOG_NAME, **catalog_properties(settings))


def ensure_namespaces(catalog: Catalog) -> list[str]:
    """Create the lake's namespaces if missing (the IO manager does not); return those made."""
    existing = {ns[0] for ns in catalog.list_namespaces()}
    created = [ns for ns in NAMESPACES if ns not in existing]
    for ns in created:
        catalog.create_namespace(ns)
    return created
