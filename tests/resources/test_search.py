"""The search-store seam on both real engines: documents, errors, delete, the Dagster resource."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest

from resources.dagster_resources import SearchResource
from resources.search import (
    NotFound,
    SearchRejected,
    SearchStore,
    SearchUnavailable,
    index_body,
)
from resources.settings import PlatformSettings, SearchEngine, SearchSettings

MAPPING = {
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "event_id": {"type": "keyword"},
            "event_timestamp": {"type": "date"},
            "location": {"type": "geo_point"},
        },
    },
    "settings": {"number_of_replicas": 0},
}


def _bulk(docs: Sequence[Mapping[str, Any]], index: str) -> bytes:
    return index_body((index, str(doc["event_id"]), doc) for doc in docs)


@pytest.fixture()
def index(store: SearchStore) -> Iterator[str]:
    name = f"seam-{uuid.uuid4().hex}"
    assert store.create_index(name, MAPPING)
    yield name
    store.delete_index(name)


@pytest.mark.integration
def test_the_store_speaks_to_the_engine_it_names(
    store: SearchStore, search: PlatformSettings
) -> None:
    assert store.engine is search.search.engine
    assert store.url == search.search.connection.url
    assert store.health() in ("green", "yellow")
    # Each engine's own client library is behind the seam.
    module = type(store.client).__module__.split(".")[0]
    assert module == {"opensearch": "opensearchpy", "elasticsearch": "elasticsearch"}[store.engine]


@pytest.mark.integration
def test_bulk_overwrites_by_id_and_reports_each_item(store: SearchStore, index: str) -> None:
    docs: list[dict[str, Any]] = [
        {
            "event_id": str(uuid.uuid4()),
            "event_timestamp": "2026-06-01T12:00:00Z",
            "location": {"lat": 48.85, "lon": 2.35},
        },
        {
            "event_id": str(uuid.uuid4()),
            "event_timestamp": "2026-06-01T13:00:00Z",
            "location": {"lat": 52.52, "lon": 13.40},
        },
    ]
    items = store.bulk(_bulk(docs, index))
    assert [i.status for i in items] == [201, 201] and all(i.ok for i in items)
    # The same _id again overwrites (200), and a field the strict mapping refuses is a
    # per-item 400 with the engine's reason, not an exception.
    bad = {"event_id": "x", "unknown": 1}
    items = store.bulk(_bulk([docs[0], bad], index))
    assert items[0].status == 200 and items[0].ok
    assert items[1].status == 400 and not items[1].ok and not items[1].transient
    assert items[1].error is not None and "strict_dynamic_mapping_exception" in items[1].error
    store.refresh(index)
    assert store.count(index) == 2
    hits = store.search(
        index,
        {"query": {"geo_distance": {"distance": "50km", "location": {"lat": 48.8, "lon": 2.3}}}},
    )["hits"]["hits"]
    assert [h["_id"] for h in hits] == [docs[0]["event_id"]]
    assert store.get(index, docs[1]["event_id"]) == docs[1]
    assert store.get(index, "nope") is None
    answer = store.search(index, {"size": 0, "aggs": {"n": {"value_count": {"field": "event_id"}}}})
    assert answer["aggregations"]["n"]["value"] == 2


@pytest.mark.integration
def test_errors_come_out_normalised(store: SearchStore, index: str) -> None:
    assert store.create_index(index) is False  # exists already: not an error
    with pytest.raises(NotFound):
        store.put_meta(f"missing-{uuid.uuid4().hex}", {"a": 1})
    with pytest.raises(SearchRejected) as refused:
        store.search(index, {"query": {"no_such_query": {}}})
    assert refused.value.status == 400
    assert store.delete_index(f"missing-{uuid.uuid4().hex}") is False
    # A pattern nothing matches reads as empty.
    assert store.count(f"missing-{uuid.uuid4().hex}-*") == 0
    assert store.indices(f"missing-{uuid.uuid4().hex}-*") == []


@pytest.mark.integration
def test_delete_where_removes_only_what_matches(store: SearchStore, index: str) -> None:
    docs = [
        {"event_id": f"{who}-{i}", "event_timestamp": "2026-06-01T12:00:00Z"}
        for who in ("keep", "drop")
        for i in range(1_500)  # more than one page of the scan
    ]
    assert all(i.ok for i in store.bulk(_bulk(docs, index)))
    assert store.delete_where(index, {"prefix": {"event_id": "drop-"}}) == 1_500
    assert store.count(index) == 1_500
    assert store.count(index, {"prefix": {"event_id": "drop-"}}) == 0
    assert store.delete_where(index, {"prefix": {"event_id": "drop-"}}) == 0


@pytest.mark.integration
def test_the_dagster_resource_reaches_the_same_server(search: PlatformSettings) -> None:
    conn = search.search.connection
    resource = SearchResource(
        engine=search.search.engine.value,
        url=conn.url,
        username=None,
        password=None,
        ca_certs=None,
        index_prefix="tributary",
    )
    with resource.get_store() as store:
        assert store.engine is search.search.engine
        assert store.health() in ("green", "yellow")


@pytest.mark.unit
@pytest.mark.parametrize("engine", list(SearchEngine))
def test_an_unreachable_store_is_unavailable_not_a_client_error(engine: SearchEngine) -> None:
    settings = SearchSettings.model_validate(
        {"engine": engine, engine.value: {"url": "http://127.0.0.1:9"}}
    )
    store = SearchStore(settings)
    with pytest.raises(SearchUnavailable, match="unreachable"):
        store.count("anything")
    assert store.health() is None


@pytest.mark.unit
def test_the_old_opensearch_names_still_configure_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [
        n for n in os.environ if n.startswith(("TRIBUTARY_SEARCH", "TRIBUTARY_OPENSEARCH"))
    ]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRIBUTARY_OPENSEARCH__URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("TRIBUTARY_OPENSEARCH__INDEX_PREFIX", "old")
    monkeypatch.setenv("TRIBUTARY_SEARCH__OPENSEARCH__USERNAME", "new")
    settings = PlatformSettings()
    assert settings.search.engine is SearchEngine.OPENSEARCH
    assert settings.search.connection.url == "http://127.0.0.1:9999"
    assert settings.search.connection.username == "new"
    assert settings.search.index_prefix == "old"
    # The new names win over the old ones.
    monkeypatch.setenv("TRIBUTARY_SEARCH__OPENSEARCH__URL", "http://127.0.0.1:9200")
    monkeypatch.setenv("TRIBUTARY_SEARCH__ENGINE", "elasticsearch")
    settings = PlatformSettings()
    assert settings.search.opensearch.url == "http://127.0.0.1:9200"
    assert settings.search.connection.url == "http://127.0.0.1:9201"
    assert settings.search.engine is SearchEngine.ELASTICSEARCH
    assert not settings.search.read_by_trino


@pytest.mark.integration
def test_the_minimal_elasticsearch_still_lacks_what_the_seam_works_around(
    elasticsearch: PlatformSettings,
) -> None:
    """When this fails, the stack's Elasticsearch serves it: see docs/stack.md's workarounds."""
    url = elasticsearch.search.elasticsearch.url
    # No GET /: health is read from /_cluster/health, and Trino's connector cannot read it.
    assert httpx.get(f"{url}/", timeout=10).status_code == 405
    # No _delete_by_query: delete_where pages ids and bulk-deletes instead.
    answer = httpx.post(
        f"{url}/{uuid.uuid4().hex}/_delete_by_query",
        json={"query": {"match_none": {}}},
        timeout=10,
    )
    assert answer.status_code in (400, 404, 405) and "index_not_found" not in answer.text
    # No SQL endpoint (Superset's Elasticsearch driver needs one).
    sql = httpx.post(f"{url}/_sql", json={"query": "select 1"}, timeout=10)
    assert sql.status_code == 405


@pytest.mark.unit
def test_only_the_seam_imports_a_search_client() -> None:
    """Every caller goes through SearchStore: no other module of the platform imports a client."""
    import ast
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]["packages"]
    clients = {"opensearchpy", "elasticsearch", "elastic_transport"}
    importers = set()
    for package in packages:
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(n.split(".")[0] in clients for n in names):
                    importers.add(path.relative_to(root).as_posix())
    assert importers == {"resources/search.py"}
