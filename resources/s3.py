"""S3 client factory (Dagster-free); Dagster assets use ``dagster_aws.s3.S3Resource``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from resources.settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def make_s3_client(settings: S3Settings) -> S3Client:
    """Return a boto3 S3 client for the configured endpoint (path-style addressing)."""
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key.get_secret_value(),
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def ensure_buckets(settings: S3Settings) -> list[str]:
    """Create the platform's buckets if missing; return the ones created.

    The raw zone is a plain bucket. The warehouse is an S3 *table bucket* (the S3 Tables API),
    because SeaweedFS's Iceberg REST catalog serves only table buckets: on a plain bucket it
    answers ``attribute not found: s3tables.metadata``.
    """
    client = make_s3_client(settings)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    created = []
    if settings.raw_bucket not in existing:
        client.create_bucket(Bucket=settings.raw_bucket)
        created.append(settings.raw_bucket)
    tables = boto3.client(
        "s3tables",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key.get_secret_value(),
    )
    table_buckets = {b["name"] for b in tables.list_table_buckets().get("tableBuckets", [])}
    if settings.warehouse_bucket not in table_buckets:
        if settings.warehouse_bucket in existing:
            raise RuntimeError(
                f"bucket {settings.warehouse_bucket} exists as a plain bucket; the Iceberg "
                "catalog needs a table bucket: delete it (it holds no tables) or choose another "
                "name with TRIBUTARY_S3__WAREHOUSE_BUCKET"
            )
        tables.create_table_bucket(name=settings.warehouse_bucket)
        created.append(settings.warehouse_bucket)
    return created


def polars_storage_options(settings: S3Settings) -> dict[str, str]:
    """The ``storage_options`` with which polars (object_store) reads these S3 settings."""
    return {
        "aws_endpoint_url": settings.endpoint_url,
        "aws_access_key_id": settings.access_key_id,
        "aws_secret_access_key": settings.secret_access_key.get_secret_value(),
        "aws_region": settings.region,
        "aws_allow_http": "true",
    }
