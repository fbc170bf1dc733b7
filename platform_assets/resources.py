"""Dagster resources for each profile, built from the platform's one settings object.

Besides the connections: the raw zone reader and the Iceberg IO manager of the curated lake
(dagster-iceberg's polars IO manager on the profile's catalog, ``resources.lake``).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource
from dagster_iceberg.config import IcebergCatalogConfig
from dagster_iceberg.io_manager.polars import PolarsIcebergIOManager
from pydantic import Field, SecretStr
from pyiceberg.catalog import load_catalog

from platform_assets.curation.raw import empty_raw, scan_raw_zone
from resources.dagster_resources import KafkaResource, OpenSearchResource, TrinoResource
from resources.lake import CATALOG_NAME, catalog_properties, ensure_namespaces
from resources.s3 import make_s3_client
from resources.settings import PlatformSettings, Profile, S3Settings


def _secret(env_var: str, value: SecretStr | None) -> Any:
    """Pass a secret as ``dg.EnvVar`` when it comes from the environment (hidden in the UI)."""
    if env_var in os.environ:
        return dg.EnvVar(env_var)
    return value.get_secret_value() if value is not None else None


def resources_for(settings: PlatformSettings) -> dict[str, Any]:
    """Return the resources of the settings' profile."""
    common: dict[str, Any] = {
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            security_protocol=settings.kafka.security_protocol,
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_username=settings.kafka.sasl_username,
            sasl_password=_secret("TRIBUTARY_KAFKA__SASL_PASSWORD", settings.kafka.sasl_password),
        ),
        "opensearch": OpenSearchResource(
            url=settings.opensearch.url,
            username=settings.opensearch.username,
            password=_secret("TRIBUTARY_OPENSEARCH__PASSWORD", settings.opensearch.password),
            index_prefix=settings.opensearch.index_prefix,
        ),
        # The reporting views live in Trino in either profile: the embedded profile has no
        # server to keep them, so ``tributary query --engine duckdb`` makes them per query.
        "trino": TrinoResource(
            url=settings.trino.url,
            user=settings.trino.user,
            password=_secret("TRIBUTARY_TRINO__PASSWORD", settings.trino.password),
        ),
    }
    s3 = S3Resource(
        endpoint_url=settings.s3.endpoint_url,
        region_name=settings.s3.region,
        aws_access_key_id=settings.s3.access_key_id,
        aws_secret_access_key=_secret(
            "TRIBUTARY_S3__SECRET_ACCESS_KEY", settings.s3.secret_access_key
        ),
    )
    by_profile: dict[Profile, dict[str, Any]] = {
        Profile.LOCAL: {"s3": s3},
        Profile.STACK: {"s3": s3},
    }
    lake = _lake_resources(
        settings, _secret("TRIBUTARY_S3__SECRET_ACCESS_KEY", settings.s3.secret_access_key)
    )
    return {**common, **by_profile[settings.profile], **lake}


class RawZoneResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Reads the batch loader's Parquet objects of one event date from S3."""

    endpoint_url: str
    region: str = "us-east-1"
    access_key_id: str
    secret_access_key: str = Field(description="Pass a dg.EnvVar.")
    bucket: str
    prefix: str = "events/"

    def _s3(self) -> S3Settings:
        return S3Settings.model_validate(
            {
                "endpoint_url": self.endpoint_url,
                "region": self.region,
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
                "raw_bucket": self.bucket,
                "raw_prefix": self.prefix,
            }
        )

    def object_keys(self, day: str) -> list[str]:
        client = make_s3_client(self._s3())
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}event_date={day}/"
        ):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
        return sorted(keys)

    def read(self, day: str) -> tuple[pl.DataFrame, list[str]]:
        """Return the rows of ``day`` and the objects they came from."""
        keys = self.object_keys(day)
        if not keys:
            return empty_raw(), []
        options = {
            "aws_endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_region": self.region,
            "aws_allow_http": "true",
        }
        frame = scan_raw_zone([f"s3://{self.bucket}/{k}" for k in keys], options).collect()
        return frame, keys


class LakeIOManager(PolarsIcebergIOManager):
    """dagster-iceberg's polars IO manager, creating the lake's namespaces first."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        properties = self.config.properties if self.config else {}
        ensure_namespaces(load_catalog(self.name, **properties))


def _lake_resources(settings: PlatformSettings, secret: Any) -> dict[str, Any]:
    """The raw zone and the Iceberg IO manager for ``settings``' profile."""
    s3 = settings.s3
    return {
        "raw_zone": RawZoneResource(
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            access_key_id=s3.access_key_id,
            secret_access_key=secret,
            bucket=s3.raw_bucket,
            prefix=s3.raw_prefix,
        ),
        "io_manager": LakeIOManager(
            name=CATALOG_NAME,
            # No namespace here: each asset key's prefix names it (iceberg/<namespace>/<table>).
            config=IcebergCatalogConfig(properties=catalog_properties(settings)),
        ),
    }
