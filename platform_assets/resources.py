"""Dagster resources for each profile, built from the platform's one settings object."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import SecretStr

from resources.dagster_resources import KafkaResource, OpenSearchResource
from resources.settings import PlatformSettings, Profile


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
    return {**common, **by_profile[settings.profile]}
