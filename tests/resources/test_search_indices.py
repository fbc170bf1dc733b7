"""The search indices on both real engines: templates, the aliases provisioned ahead, retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from contract.search import DEADLETTERS, EVENTS, FAMILIES, alias_name, index_name
from resources.search import SearchStore
from resources.search_indices import (
    IndexLayout,
    apply_retention,
    ensure_templates,
    provision_indices,
)
from tests.streaming.realtime_helpers import drop_indices

DAY = date(2026, 11, 28)


@pytest.fixture()
def prefix(store: SearchStore) -> Iterator[str]:
    prefix = f"idx-{uuid.uuid4().hex[:10]}"
    yield prefix
    drop_indices(store, prefix)


@pytest.mark.unit
def test_one_template_per_family_with_its_pattern_alias_and_settings() -> None:
    templates = IndexLayout("p", shards=2, replicas=0).templates()
    assert set(templates) == {"p-events", "p-deadletters"}
    for family in FAMILIES:
        body = templates[f"p-{family}"]
        assert body["index_patterns"] == [f"p-{family}-*"]
        assert body["template"]["aliases"] == {alias_name("p", family): {}}
        settings = body["template"]["settings"]["index"]
        assert settings["number_of_shards"] == 2 and settings["number_of_replicas"] == 0
    events, dead = (templates[f"p-{f}"]["template"]["mappings"] for f in (EVENTS, DEADLETTERS))
    assert events["properties"]["location"] == {"type": "geo_point"}
    assert dead["properties"]["original"] == {"type": "object", "enabled": False}


@pytest.mark.integration
def test_provisioning_makes_every_alias_resolve_before_any_document(
    store: SearchStore, prefix: str
) -> None:
    layout = IndexLayout(prefix)
    made = provision_indices(store, layout, DAY)
    assert made == [index_name(prefix, family, DAY) for family in FAMILIES]
    for family in FAMILIES:
        alias = alias_name(prefix, family)
        assert store.alias_exists(alias)
        assert list(store.mapping(alias)) == [index_name(prefix, family, DAY)]
        assert store.count(alias) == 0
        # Made from the family's template: its mapping, with the hints Trino reads.
        mapping = store.mapping(alias)[index_name(prefix, family, DAY)]
        template = layout.templates()[f"{prefix}-{family}"]["template"]["mappings"]
        assert mapping["_meta"] == template["_meta"]
        assert set(mapping["properties"]) == set(template["properties"])
    # Twice changes nothing.
    assert provision_indices(store, layout, DAY + timedelta(days=1)) == []
    assert store.indices(index_name(prefix, EVENTS, DAY + timedelta(days=1))) == []


@pytest.mark.integration
def test_provisioning_keeps_the_loader_s_templates(store: SearchStore, prefix: str) -> None:
    ensure_templates(store, IndexLayout(prefix, refresh_interval="5s"))
    provision_indices(store, IndexLayout(prefix), DAY)
    todays = index_name(prefix, EVENTS, DAY)
    index = store.index_settings(todays)[todays]
    assert index["refresh_interval"] == "5s", "provisioning replaced the loader's template"


@pytest.mark.integration
def test_retention_deletes_old_indices_and_keeps_new(store: SearchStore, prefix: str) -> None:
    today = DAY
    old_event = index_name(prefix, EVENTS, today - timedelta(days=31))
    edge_event = index_name(prefix, EVENTS, today - timedelta(days=30))
    new_event = index_name(prefix, EVENTS, today)
    old_dead = index_name(prefix, DEADLETTERS, today - timedelta(days=91))
    kept_dead = index_name(prefix, DEADLETTERS, today - timedelta(days=60))
    unrelated = f"{prefix}-events-archive"
    for name in (old_event, edge_event, new_event, old_dead, kept_dead, unrelated):
        store.create_index(name, {"settings": {"number_of_replicas": 0}})
    deleted = apply_retention(store, prefix, {EVENTS: 30, DEADLETTERS: 90}, today)
    assert sorted(deleted) == sorted([old_event, old_dead])
    for name in (edge_event, new_event, kept_dead, unrelated):
        assert store.indices(name) == [name], name
    for name in (old_event, old_dead):
        assert store.indices(name) == [], name
    assert apply_retention(store, prefix, {EVENTS: 30, DEADLETTERS: 90}, today) == []
