"""The stack's provisioning of the search store: aliases ahead of any document, clear errors."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from contract.search import FAMILIES, alias_name
from resources.search import make_search_store
from resources.settings import (
    PlatformSettings,
    Profile,
    S3Settings,
    SupersetSettings,
)
from stack import provision
from stack.config import StackSettings
from stack.provision import ProvisionError, provision_search, provision_superset
from stack.services.elasticsearch import ElasticsearchServer
from stack.services.opensearch import OpenSearchServer
from tests.streaming.realtime_helpers import drop_indices

SERVERS = {"opensearch": OpenSearchServer, "elasticsearch": ElasticsearchServer}


@pytest.mark.integration
def test_each_search_service_provisions_every_alias_once(search: PlatformSettings) -> None:
    """The stack's service of each engine provisions itself, whichever engine is in use."""
    prefix = f"prov-{uuid.uuid4().hex[:10]}"
    engine = search.search.engine
    other = next(e for e in SERVERS if e != engine)
    # In use: the other engine; provisioned: this one, by its own service.
    settings = StackSettings.model_validate(
        {**search.model_dump(), "search": {**search.search.model_dump(), "engine": other}}
    )
    settings.search.index_prefix = prefix
    with make_search_store(search.search.model_copy(update={"index_prefix": prefix})) as store:
        try:
            first = SERVERS[engine](settings).provision()
            assert len(first) == len(FAMILIES)
            assert all("created for its alias" in s for s in first)
            for family in FAMILIES:
                assert store.alias_exists(alias_name(prefix, family))
            assert SERVERS[engine](settings).provision() == ["aliases up to date"]
        finally:
            drop_indices(store, prefix)


@pytest.mark.unit
@pytest.mark.parametrize(
    "engine,title", [("opensearch", "OpenSearch"), ("elasticsearch", "Elasticsearch")]
)
def test_an_unreachable_search_store_is_one_clear_error(engine: str, title: str) -> None:
    settings = StackSettings.model_validate(
        {"search": {"engine": engine, engine: {"url": "http://127.0.0.1:9"}}}
    )
    with pytest.raises(ProvisionError, match=rf"{title} at http://127.0.0.1:9 is unavailable"):
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
