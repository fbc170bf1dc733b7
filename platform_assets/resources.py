"""Dagster resources for each profile, built from the platform's one settings object.

Besides the connections: the raw zone reader and the Iceberg IO manager of the curated lake
(dagster-iceberg's polars IO manager on the profile's catalog, ``resources.lake``).

No secret is ever a value of a resource's config: each reaches Dagster as a ``dg.EnvVar``
naming its settings variable, which Dagster resolves only when the resource is initialised
in the run. The snapshot the UI and the daemon see, the run config and the logs hold the
variable's name, never its value (``tests/platform_assets/test_secrets.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import polars as pl
from dagster_aws.s3 import S3Resource
from dagster_iceberg.config import IcebergCatalogConfig
from dagster_iceberg.io_manager.base import IcebergDbClient
from dagster_iceberg.io_manager.polars import PolarsIcebergIOManager
from pydantic import Field, SecretStr
from pyiceberg.catalog import Catalog, load_catalog

from platform_assets.curation.raw import empty_raw, scan_raw_zone
from resources.dagster_resources import (
    KafkaResource,
    SearchResource,
    TrinoResource,
    resolved,
)
from resources.lake import (
    CATALOG_NAME,
    ensure_namespaces,
    public_catalog_properties,
    with_secret,
)
from resources.s3 import make_s3_client, polars_storage_options
from resources.settings import PlatformSettings, Profile, S3Settings


def _secret(env_var: str, value: SecretStr) -> dg.EnvVar:
    """The settings' secret as ``dg.EnvVar(env_var)``, its settings variable.

    The settings' value is the one that counts: when it came from elsewhere (a dotenv file,
    or settings made in code), it is published under that name in this process's
    environment, where Dagster resolves it. Every process that runs assets loads the
    definitions, and so this, first.
    """
    secret = value.get_secret_value()
    if os.environ.get(env_var) != secret:
        os.environ[env_var] = secret
    return dg.EnvVar(env_var)


def _optional_secret(env_var: str, value: SecretStr | None) -> dg.EnvVar | None:
    return None if value is None else _secret(env_var, value)


def resources_for(settings: PlatformSettings) -> dict[str, Any]:
    """Return the resources of the settings' profile."""
    common: dict[str, Any] = {
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            security_protocol=settings.kafka.security_protocol,
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_username=settings.kafka.sasl_username,
            sasl_password=_optional_secret(
                "TRIBUTARY_KAFKA__SASL_PASSWORD", settings.kafka.sasl_password
            ),
        ),
        "search": SearchResource(
            engine=settings.search.engine.value,
            url=settings.search.connection.url,
            username=settings.search.connection.username,
            password=_optional_secret(
                f"TRIBUTARY_SEARCH__{settings.search.engine.value.upper()}__PASSWORD",
                settings.search.connection.password,
            ),
            ca_certs=str(ca) if (ca := settings.search.connection.ca_certs) else None,
            index_prefix=settings.search.index_prefix,
        ),
        # The reporting views live in Trino in either profile: the embedded profile has no
        # server to keep them, so ``tributary query --engine duckdb`` makes them per query.
        "trino": TrinoResource(
            url=settings.trino.url,
            user=settings.trino.user,
            password=_optional_secret("TRIBUTARY_TRINO__PASSWORD", settings.trino.password),
        ),
    }
    s3_secret = _secret("TRIBUTARY_S3__SECRET_ACCESS_KEY", settings.s3.secret_access_key)
    s3 = S3Resource(
        endpoint_url=settings.s3.endpoint_url,
        region_name=settings.s3.region,
        aws_access_key_id=settings.s3.access_key_id,
        aws_secret_access_key=s3_secret,
    )
    by_profile: dict[Profile, dict[str, Any]] = {
        Profile.LOCAL: {"s3": s3},
        Profile.STACK: {"s3": s3},
    }
    lake = _lake_resources(settings, s3_secret)
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
                "secret_access_key": self._secret(),
                "raw_bucket": self.bucket,
                "raw_prefix": self.prefix,
            }
        )

    def _secret(self) -> str:
        return resolved(self.secret_access_key) or ""

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
        options = polars_storage_options(self._s3())
        frame = scan_raw_zone([f"s3://{self.bucket}/{k}" for k in keys], options).collect()
        return frame, keys


class _LakeDbClient(IcebergDbClient):
    """dagster-iceberg's client, adding the S3 secret to the catalog's properties."""

    @staticmethod
    @contextmanager
    def connect(context: Any, table_slice: Any) -> Iterator[Catalog]:
        config = context.resource_config
        yield _catalog(config["name"], config["config"], config["secret_access_key"])


def _catalog(name: str, config: Any, secret: str | None) -> Catalog:
    properties = dict((config or {}).get("properties", {}))
    return load_catalog(name, **with_secret(properties, secret))


class LakeIOManager(PolarsIcebergIOManager):
    """dagster-iceberg's polars IO manager, creating the lake's namespaces first.

    ``config`` holds the catalog's public properties only; the S3 secret comes through
    ``secret_access_key`` (a ``dg.EnvVar``) and is added when a catalog is opened.
    """

    secret_access_key: str | None = Field(
        None, description="S3 secret of the REST catalog (pass a dg.EnvVar)."
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        config = self.config.model_dump() if self.config else None
        ensure_namespaces(_catalog(self.name, config, resolved(self.secret_access_key)))

    def create_io_manager(self, context: dg.InitResourceContext) -> Any:
        manager = super().create_io_manager(context)
        manager._db_client = _LakeDbClient()
        return manager


def _lake_resources(settings: PlatformSettings, secret: dg.EnvVar) -> dict[str, Any]:
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
            config=IcebergCatalogConfig(properties=public_catalog_properties(settings)),
            secret_access_key=secret,
        ),
    }
