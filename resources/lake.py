"""The Iceberg catalog of the curated lake (Dagster-free).

``settings.lake_catalog`` chooses it (``TRIBUTARY_LAKE__CATALOG``, else the profile's):

- ``sql`` (``local``): pyiceberg's SQL catalog in SQLite, tables under ``lake.local_root``.
- ``rest`` (``stack``): the Iceberg REST catalog that SeaweedFS serves, tables in the
  warehouse, which must be an S3 *table bucket* (``resources.s3.ensure_buckets`` creates it
  so). Trino reads this one.

:func:`catalog_properties` is the one description of the catalog; the Dagster IO manager
(dagster-iceberg) and :func:`make_catalog` both take it.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.catalog import Catalog, load_catalog

from resources.settings import LakeCatalog, PlatformSettings

CATALOG_NAME = "tributary"
# Namespaces of the curated lake: staging tables and quarantine, then the reporting marts.
NAMESPACES = ("staging", "marts")


def catalog_properties(
    settings: PlatformSettings, catalog: LakeCatalog | None = None
) -> dict[str, Any]:
    """The properties pyiceberg takes for the lake's catalog (default: the settings')."""
    if (catalog or settings.lake_catalog) is LakeCatalog.SQL:
        root = settings.lake.local_root.resolve()
        (root / "warehouse").mkdir(parents=True, exist_ok=True)
        return {
            "type": "sql",
            "uri": f"sqlite:///{root / 'catalog.db'}",
            "warehouse": (root / "warehouse").as_uri(),
        }
    s3 = settings.s3
    secret = s3.secret_access_key.get_secret_value()
    return {
        "type": "rest",
        "uri": s3.iceberg_catalog_uri,
        "oauth2-server-uri": f"{s3.iceberg_catalog_uri.rstrip('/')}/v1/oauth/tokens",
        "credential": f"{s3.access_key_id}:{secret}",
        "warehouse": f"s3://{s3.warehouse_bucket}/",
        "s3.endpoint": s3.endpoint_url,
        "s3.access-key-id": s3.access_key_id,
        "s3.secret-access-key": secret,
        "s3.region": s3.region,
        "s3.path-style-access": "true",
    }


def make_catalog(settings: PlatformSettings) -> Catalog:
    return load_catalog(CATALOG_NAME, **catalog_properties(settings))


def ensure_namespaces(catalog: Catalog) -> list[str]:
    """Create the lake's namespaces if missing (the IO manager does not); return those made."""
    existing = {ns[0] for ns in catalog.list_namespaces()}
    created = [ns for ns in NAMESPACES if ns not in existing]
    for ns in created:
        catalog.create_namespace(ns)
    return created
