"""The Iceberg catalog of the curated lake (Dagster-free), for each profile.

- ``local``: pyiceberg's SQL catalog in SQLite, tables as files under ``lake.local_root``.
- ``stack``: the Iceberg REST catalog that SeaweedFS serves, tables in the warehouse, which
  must be an S3 *table bucket* (``resources.s3.ensure_buckets`` creates it so).
"""

from __future__ import annotations

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.catalog.sql import SqlCatalog

from resources.settings import PlatformSettings, Profile

CATALOG_NAME = "tributary"


def make_catalog(settings: PlatformSettings) -> Catalog:
    if settings.profile is Profile.LOCAL:
        root = settings.lake.local_root.resolve()
        (root / "warehouse").mkdir(parents=True, exist_ok=True)
        return SqlCatalog(
            CATALOG_NAME,
            uri=f"sqlite:///{root / 'catalog.db'}",
            warehouse=(root / "warehouse").as_uri(),
        )
    s3 = settings.s3
    secret = s3.secret_access_key.get_secret_value()
    return RestCatalog(
        CATALOG_NAME,
        uri=s3.iceberg_catalog_uri,
        credential=f"{s3.access_key_id}:{secret}",
        warehouse=f"s3://{s3.warehouse_bucket}/",
        **{
            "oauth2-server-uri": f"{s3.iceberg_catalog_uri.rstrip('/')}/v1/oauth/tokens",
            "s3.endpoint": s3.endpoint_url,
            "s3.access-key-id": s3.access_key_id,
            "s3.secret-access-key": secret,
            "s3.region": s3.region,
            "s3.path-style-access": "true",
        },
    )
