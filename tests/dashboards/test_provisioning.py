"""Provisioning the bundle into a real Superset: in place, never duplicated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from resources.settings import PlatformSettings
from resources.superset import SupersetClient
from stack.dashboards import BUNDLE, BundleAssets, dashboard_urls, provision_dashboards

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RESOURCES = {
    "database": "database_name",
    "dataset": "table_name",
    "chart": "slice_name",
    "dashboard": "dashboard_title",
}


def inventory(client: SupersetClient) -> dict[str, dict[int, str]]:
    """Every asset of the instance: id → name, by kind."""
    return {
        kind: {row["id"]: row[name] for row in client.list_all(kind, ["id", name])}
        for kind, name in RESOURCES.items()
    }


def test_provisioning_twice_changes_nothing(superset: PlatformSettings) -> None:
    bundle = BundleAssets.read()
    with SupersetClient(superset.superset) as client:
        before = inventory(client)
        provision_dashboards(superset)
        after = inventory(client)
    assert after == before, "a second provisioning created or renamed assets"
    # The bundle's assets are there, each once (a fresh Superset holds nothing else).
    for kind, plural in (("chart", "charts"), ("dashboard", "dashboards")):
        names = list(after[kind].values())
        assert len(names) >= len(bundle.uuids[plural])
        assert len(set(names)) == len(names), f"duplicated {plural}: {names}"
    assert set(bundle.dashboards.values()) <= set(after["dashboard"].values())


def test_a_changed_chart_title_is_updated_in_place(
    superset: PlatformSettings, tmp_path: Path
) -> None:
    changed = tmp_path / "bundle"
    shutil.copytree(BUNDLE, changed)
    chart_file = changed / "charts" / "daily_sessions.yaml"
    chart = yaml.safe_load(chart_file.read_text())
    old_title, new_title = chart["slice_name"], f"{chart['slice_name']} (renamed)"
    chart["slice_name"] = new_title
    chart_file.write_text(yaml.safe_dump(chart, sort_keys=False))
    with SupersetClient(superset.superset) as client:
        before = inventory(client)
        [chart_id] = [i for i, name in before["chart"].items() if name == old_title]
        try:
            provision_dashboards(superset, changed)
            after = inventory(client)
        finally:
            provision_dashboards(superset)
        restored = inventory(client)
    assert after["chart"][chart_id] == new_title, "the same chart (same id) carries the title"
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}
    assert old_title not in after["chart"].values()
    assert restored == before


def test_each_dashboard_address_is_served(superset: PlatformSettings) -> None:
    with SupersetClient(superset.superset) as client:
        for title, url in dashboard_urls(superset).items():
            slug = url.rstrip("/").rsplit("/", 1)[1]
            answer = client.request("GET", f"/api/v1/dashboard/{slug}")
            assert answer["result"]["dashboard_title"] == title
