"""The stack's provisioning of the search store: aliases ahead of any document, clear errors."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from contract.search import FAMILIES, alias_name
from resources.opensearch import make_opensearch_client
from resources.settings import (
    OpenSearchSettings,
    PlatformSettings,
    Profile,
    S3Settings,
    SupersetSettings,
)
from stack import provision
from stack.config import StackSettings
from stack.provision import ProvisionError, provision_search, provision_superset
from stack.services.opensearch import OpenSearchServer
from tests.streaming.realtime_helpers import drop_indices


@pytest.mark.integration
def test_the_opensearch_service_provisions_every_alias_once(opensearch: StackSettings) -> None:
    prefix = f"prov-{uuid.uuid4().hex[:10]}"
    settings = opensearch.model_copy(
        update={"opensearch": opensearch.opensearch.model_copy(update={"index_prefix": prefix})}
    )
    client = make_opensearch_client(settings.opensearch)
    try:
        first = OpenSearchServer(settings).provision()
        assert len(first) == len(FAMILIES) and all("created for its alias" in s for s in first)
        for family in FAMILIES:
            assert client.indices.exists_alias(name=alias_name(prefix, family))
        assert OpenSearchServer(settings).provision() == ["aliases up to date"]
    finally:
        drop_indices(client, prefix)
        client.close()


@pytest.mark.unit
def test_an_unreachable_search_store_is_one_clear_error() -> None:
    settings = StackSettings(opensearch=OpenSearchSettings(url="http://127.0.0.1:9"))
    with pytest.raises(ProvisionError, match=r"OpenSearch at http://127.0.0.1:9 is unreachable"):
        provision_search(settings)


@pytest.mark.unit
def test_an_unreachable_superset_is_one_clear_error() -> None:
    settings = StackSettings(superset=SupersetSettings(url="http://127.0.0.1:9"))
    with pytest.raises(ProvisionError, match=r"Superset at http://127.0.0.1:9 is unreachable"):
        provision_superset(settings)


@pytest.mark.unit
def test_dashboards_without_the_admin_password_name_the_variable() -> None:
    settings = StackSettings(
        profile=Profile.STACK,
        s3=S3Settings(access_key_id="compose-key", secret_access_key=SecretStr("compose-secret")),
        superset=SupersetSettings(url="http://127.0.0.1:9"),
    )
    with pytest.raises(ProvisionError, match="TRIBUTARY_SUPERSET__ADMIN_PASSWORD is not set"):
        provision_superset(settings)


@pytest.mark.unit
def test_the_dashboards_command_provisions_only_superset(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def superset(settings: PlatformSettings) -> dict[str, int]:
        calls.append(settings.superset.url)
        return {"dashboards": 2}

    def kafka(settings: PlatformSettings) -> None:
        raise AssertionError("the dashboards command provisioned Kafka")

    monkeypatch.setattr(provision, "provision_superset", superset)
    monkeypatch.setattr(provision, "provision_kafka", kafka)
    monkeypatch.setenv("TRIBUTARY_SUPERSET__URL", "http://superset:8088")
    provision.main(["dashboards"])
    assert calls == ["http://superset:8088"]
    with pytest.raises(SystemExit):
        provision.main(["nothing-of-the-kind"])
