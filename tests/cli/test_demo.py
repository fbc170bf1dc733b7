from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import PlatformSettings
from resources.superset import SupersetClient
from stack.dashboards import load_bundle


@pytest.mark.integration
@pytest.mark.e2e
@pytest.mark.slow
def test_demo_accounts_for_every_event(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    opensearch: PlatformSettings,
    superset: PlatformSettings,
) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "tributary"),
            "demo",
            "--events",
            "600",
            "--iot-events",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},  # tables unwrapped, one row per line
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every event is accounted for" in result.stdout
    assert "Reconciliation" in result.stdout
    lines = result.stdout.splitlines()

    def row(label: str) -> list[str]:
        line = next(line for line in lines if label in line)
        return [cell.strip() for cell in line.split("│")[1:-1]]

    assert row("sent by the producers")[1] == "800"
    enriched = int(row("enriched → ")[1])
    assert enriched > 0
    # Every enriched event reached OpenSearch and the lake; the table says so in figures.
    assert row("indexed in OpenSearch: events")[1:] == [str(enriched), f"{enriched} (enriched)"]
    assert row("rows in the lake")[1:] == [str(enriched), f"{enriched} (enriched)"]
    # Then the curated lake was materialised for the demo's dates, every check green.
    curated = [line for line in lines if " passed" in line and line.startswith("│ 20")]
    assert curated, result.stdout
    demo_sessions = set()
    for line in curated:
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        demo_sessions.add(int(cells[2]))
        passed, total = cells[1].split()[0].split("/")
        assert passed == total and int(total) > 0, line
        # The KPIs were read back through Trino's reporting views: figures, not blanks.
        assert int(cells[2]) > 0 and int(cells[4]) >= 0, line
    assert "read through trino" in result.stdout
    assert "http://127.0.0.1:3000" in result.stdout
    assert f"Trino: {superset.trino.url}" in result.stdout
    # It ends with the dashboards' addresses and how to log in.
    from stack.dashboards import dashboard_urls

    urls = dashboard_urls(superset)
    assert urls, "the bundle names no dashboard"
    tail = "\n".join(lines[-(len(urls) + 1) :])
    assert f"log in as '{superset.superset.admin_username}'" in tail
    for title, url in urls.items():
        assert f"{title}: {url}" in tail

    # A dashboard opened now shows the demo's data: its daily sessions chart has the demo's
    # days, with the sessions the summary printed.
    with SupersetClient(superset.superset) as client:
        ids = {str(row["uuid"]): row["id"] for row in client.list_all("chart", ["id", "uuid"])}
        chart = load_bundle()["charts/daily_sessions.yaml"]
        [answer] = client.chart_data(ids[str(chart["uuid"])])
    assert answer["status"] == "success", answer.get("error")
    _time, *series = answer["colnames"]
    shown = {int(row[name]) for row in answer["data"] for name in series if row[name] is not None}
    assert demo_sessions <= shown, (demo_sessions, answer["data"])
