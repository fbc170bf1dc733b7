"""The lineage graph as the Dagster webserver serves it (GraphQL), from HTTP ingestion to marts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from resources.settings import PlatformSettings
from stack.dagster import DagsterServer

pytestmark = pytest.mark.integration

QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } isMaterializable } }"


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterServer]:
    with DagsterServer(tmp_path_factory.mktemp("dagster-home"), PlatformSettings()) as server:
        yield server


def graph(server: DagsterServer) -> dict[str, dict[str, Any]]:
    return {
        "/".join(n["assetKey"]["path"]): {
            "deps": {"/".join(d["path"]) for d in n["dependencyKeys"]},
            "materializable": n["isMaterializable"],
        }
        for n in server.graphql(QUERY)["assetNodes"]
    }


def test_one_flow_from_ingestion_to_the_marts(webserver: DagsterServer) -> None:
    nodes = graph(webserver)
    chain = [
        "kafka/events_raw",
        "kafka/events_enriched",
        "s3/raw_events",
        "iceberg/staging/validated_events",
        "iceberg/staging/deduplicated_events",
        "iceberg/staging/stg_events",
        "iceberg/marts/agg_daily_kpis",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert upstream in nodes[downstream]["deps"], (downstream, nodes[downstream]["deps"])
    assert "kafka/events_enriched" in nodes["opensearch/events"]["deps"]
    assert "kafka/events_enriched_dlq" in nodes["opensearch/deadletters"]["deps"]
    for name in ("fct_events", "fct_sessions", "fct_order_lines", "dim_users", "dim_products"):
        assert "iceberg/staging/stg_events" in nodes[f"iceberg/marts/{name}"]["deps"]
    # What the stream writes is external; what Dagster computes is materializable.
    assert not nodes["kafka/events_raw"]["materializable"]
    assert not nodes["s3/raw_events"]["materializable"]
    assert not nodes["opensearch/events"]["materializable"]
    assert nodes["iceberg/marts/agg_daily_kpis"]["materializable"]
