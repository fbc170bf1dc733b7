"""OpenSearch: an index, a document and a search round trip on the real server."""

from __future__ import annotations

import uuid

import pytest

from resources.dagster_resources import OpenSearchResource
from resources.opensearch import make_opensearch_client
from resources.settings import PlatformSettings

pytestmark = pytest.mark.integration


def test_index_and_search_round_trip(opensearch: PlatformSettings) -> None:
    client = make_opensearch_client(opensearch.opensearch)
    index = f"test-{uuid.uuid4().hex}"
    client.indices.create(
        index=index,
        body={
            "mappings": {
                "properties": {
                    "event_id": {"type": "keyword"},
                    "event_timestamp": {"type": "date"},
                    "location": {"type": "geo_point"},
                }
            }
        },
    )
    try:
        docs = [
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
        for doc in docs:
            client.index(index=index, id=doc["event_id"], body=doc)
        # Indexing the same _id again overwrites: the count stays at two.
        client.index(index=index, id=docs[0]["event_id"], body=docs[0], refresh=True)
        assert client.count(index=index)["count"] == 2
        hits = client.search(
            index=index,
            body={
                "query": {
                    "geo_distance": {"distance": "50km", "location": {"lat": 48.8, "lon": 2.3}}
                }
            },
        )["hits"]["hits"]
        assert [h["_id"] for h in hits] == [docs[0]["event_id"]]
    finally:
        client.indices.delete(index=index)


def test_dagster_resource_reaches_the_same_server(opensearch: PlatformSettings) -> None:
    resource = OpenSearchResource(
        url=opensearch.opensearch.url, username=None, password=None, index_prefix="tributary"
    )
    health = resource.get_client().cluster.health()
    assert health["status"] in ("green", "yellow")
