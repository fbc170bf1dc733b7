"""The lineage graph as the Dagster webserver serves it (GraphQL), from HTTP ingestion to marts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from cli.dagster import DagsterServer
from resources.settings import PlatformSettings
from tests.chromium import ARTEFACTS, chromium_page

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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
    assert "kafka/events_raw_dlq" in nodes["opensearch/deadletters"]["deps"]
    for name in ("fct_events", "fct_sessions", "fct_order_lines", "dim_users", "dim_products"):
        assert "iceberg/staging/stg_events" in nodes[f"iceberg/marts/{name}"]["deps"]
    # What the stream writes is external; what Dagster computes is materializable.
    assert not nodes["kafka/events_raw"]["materializable"]
    assert not nodes["s3/raw_events"]["materializable"]
    assert not nodes["opensearch/events"]["materializable"]
    assert nodes["iceberg/marts/agg_daily_kpis"]["materializable"]


def test_the_lineage_page_shows_the_whole_platform(webserver: DagsterServer) -> None:
    """Headless Chromium opens the global lineage; the screenshot goes into docs/images."""
    shot = ARTEFACTS / "lineage" / "lineage.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with chromium_page(2000, 1700) as page:
        page.goto(f"{webserver.url}/asset-groups")
        page.wait_for_selector("text=Global asset lineage")
        page.wait_for_selector("text=streaming")
        # Groups start collapsed: expand them all (the UI's own shortcut), then reload so the
        # graph is laid out and fitted with every asset shown.
        page.keyboard.press("Alt+e")
        page.wait_for_selector("text=agg_daily_kpis")
        page.click("text=Hide navigation")
        page.reload()
        for name in (
            "events_raw",
            "raw_events",
            "validated_events",
            "agg_daily_kpis",
            "daily_kpis",
        ):
            page.wait_for_selector(f"text={name}")
        # One step out: the tall graph (streaming and search store above the lake) fits.
        for _ in range(2):
            page.locator("button:has([aria-label='zoom_out'])").click()
        page.wait_for_timeout(1500)  # the zoom's animation
        shown = page.locator("svg[class*='svgContainer']").evaluate("e => e.textContent")
        # Every asset of the code location is in view (the UI draws only those), a long name
        # shortened in the middle.
        assets = {path.split("/")[-1] for path in graph(webserver)}
        drawn = {name for name in assets if name[:6] in shown}
        assert drawn == assets, sorted(assets - drawn)
        page.screenshot(path=shot)
    assert shot.stat().st_size > 50_000
