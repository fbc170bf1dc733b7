"""Dagster resources for each profile, built from the platform's one settings object."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from resources.dagster_resources import KafkaResource, OpenSearchResource
from resources.settings import PlatformSettings, Profile


def _secret(env_var: str, value: str) -> Any:
    """Pass a secret as ``dg.EnvVar`` when it comes from the environment (hidden in the UI)."""
    return dg.EnvVar(env_var) if env_var in os.environ else value


def resources_for(settings: PlatformSettings) -> dict[str, Any]:
    """Return the resources of the settings' profile."""
    common: dict[str, Any] = {
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            security_protocol=settings.kafka.security_protocol,
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_username=settings.kafka.sasl_username,
            sasl_password=_secret(
                "TRIBUTARY_KAFKA__SASL_PASSWORD",
                settings.kafka.sasl_password.get_secret_value()
                if settings.kafka.sasl_password
                else "",
            )
            or None,
        ),
        "opensearch": OpenSearchResource(
            url=settings.opensearch.url,
            username=settings.opensearch.username,
            password=_secret(
                "TRIBUTARY_OPENSEARCH__PASSWORD",
                settings.opensearch.password.get_secret_value()
                if settings.opensearch.password
                else "",
            )
            or None,
            index_prefix=settings.opensearch.index_prefix,
        ),
    }
    s3 = S3Resource(
        endpoint_url=settings.s3.endpoint_url,
        region_name=settings.s3.region,
        aws_access_key_id=settings.s3.access_key_id,
        aws_secret_access_key=_secret(
            "TRIBUTARY_S3__SECRET_ACCESS_KEY", settings.s3.secret_access_key.get_secret_value()
        ),
    )
    by_profile: dict[Profile, dict[str, Any]] = {
        Profile.LOCAL: {"s3": s3},
        Profile.STACK: {"s3": s3},
    }
    return {**common, **by_profile[settings.profile]}
