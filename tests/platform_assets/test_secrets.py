"""No secret reaches Dagster's resource config, run config, repository snapshot or logs.

The definitions are built with the ``stack`` profile and secrets of their own for S3, Kafka,
OpenSearch, Trino and Superset; every view of them Dagster keeps or shows (the serialised
repository snapshot the webserver and the daemon read, each resource's config) must name the
secrets' variables only. A materialisation on the real servers, with their S3 secret, must
not log it either: neither Dagster's event log nor Python's logging.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster_shared.serdes import serialize_value
from pydantic import SecretStr

from platform_assets.assets.lake.curated import dim_date
from platform_assets.definitions import build_definitions
from platform_assets.resources import resources_for
from resources.lake import make_catalog
from resources.s3 import ensure_buckets
from resources.settings import PlatformSettings, Profile

SECRETS = {
    "TRIBUTARY_S3__SECRET_ACCESS_KEY": "s3-secret-6f1d3a",
    "TRIBUTARY_KAFKA__SASL_PASSWORD": "kafka-secret-0b7e21",
    "TRIBUTARY_SEARCH__OPENSEARCH__PASSWORD": "opensearch-secret-9c44d0",
    "TRIBUTARY_TRINO__PASSWORD": "trino-secret-51aa7e",
    "TRIBUTARY_SUPERSET__SECRET_KEY": "superset-secret-e2d90c",
    "TRIBUTARY_SUPERSET__ADMIN_PASSWORD": "superset-admin-7730fb",
}


def _resource_configs(resources: dict[str, object]) -> str:
    """Every resource's config as Dagster holds it before a run resolves it."""
    out = {}
    for name, resource in resources.items():
        assert isinstance(resource, dg.ConfigurableResource | dg.ConfigurableIOManagerFactory)
        out[name] = resource._get_non_default_public_field_values()
    return json.dumps(out, default=repr)


@pytest.fixture
def stack_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[PlatformSettings]:
    monkeypatch.setenv("TRIBUTARY_PROFILE", "stack")
    monkeypatch.setenv("TRIBUTARY_S3__ACCESS_KEY_ID", "team")
    monkeypatch.setenv("TRIBUTARY_KAFKA__SASL_USERNAME", "tributary")
    monkeypatch.setenv("TRIBUTARY_SEARCH__OPENSEARCH__USERNAME", "tributary")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    yield PlatformSettings()


@pytest.mark.unit
def test_no_secret_in_the_snapshot_or_any_resource_config(
    stack_settings: PlatformSettings,
) -> None:
    defs = build_definitions(stack_settings)
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    configs = _resource_configs(dict(defs.resources or {}))
    assert "TRIBUTARY_S3__SECRET_ACCESS_KEY" in configs  # the variable's name is what is there
    for secret in SECRETS.values():
        assert secret not in snapshot
        assert secret not in configs
    io_manager = (defs.resources or {})["io_manager"]
    assert io_manager.config is not None
    assert set(io_manager.config.properties) & {"credential", "s3.secret-access-key"} == set()


@pytest.mark.unit
def test_a_secret_from_settings_made_in_code_is_passed_by_name(
    stack_settings: PlatformSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret that is not in the environment (a dotenv file, settings made in code)."""
    monkeypatch.delenv("TRIBUTARY_S3__SECRET_ACCESS_KEY")
    settings = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(
                update={"secret_access_key": SecretStr("in-code-5e0f")}
            )
        }
    )
    configs = _resource_configs(resources_for(settings))
    assert "in-code-5e0f" not in configs
    # Dagster resolves the reference to the settings' value when the resource is used.
    raw_zone = resources_for(settings)["raw_zone"]
    assert raw_zone.secret_access_key.get_value() == "in-code-5e0f"


@pytest.mark.integration
def test_a_materialisation_logs_no_secret(
    s3: PlatformSettings, caplog: pytest.LogCaptureFixture
) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = s3.model_copy(
        update={
            # model_copy skips validation: the suite's servers run with the local secrets.
            "profile": Profile.STACK,
            "s3": s3.s3.model_copy(update={"warehouse_bucket": f"test-secrets-{tag}"}),
        }
    )
    secret = settings.s3.secret_access_key.get_secret_value()
    ensure_buckets(settings.s3)
    instance = dg.DagsterInstance.ephemeral()
    with caplog.at_level(logging.DEBUG):
        result = dg.materialize(
            [dim_date],
            resources=resources_for(settings),
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}},
        )
    assert result.success
    assert make_catalog(settings).load_table("marts.dim_date").scan().to_arrow().num_rows > 365
    events = instance.all_logs(result.run_id)
    assert len(events) > 5
    logged = serialize_value(events) + serialize_value(result.dagster_run) + caplog.text
    assert "TRIBUTARY_S3__SECRET_ACCESS_KEY" in serialize_value(
        RepositorySnap.from_def(
            dg.Definitions(
                assets=[dim_date], resources=resources_for(settings)
            ).get_repository_def()
        )
    )
    assert secret not in logged
