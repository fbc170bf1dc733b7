from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cli.demo import DEMO_DAYS
from resources.search import ENGINE_TITLES
from resources.settings import PlatformSettings
from resources.superset import SupersetClient
from stack.dashboards import BundleAssets, load_bundle


@pytest.mark.integration
@pytest.mark.e2e
@pytest.mark.slow
def test_demo_accounts_for_every_event(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    search: PlatformSettings,
    superset: PlatformSettings,
) -> None:
    """The demo on each search engine (``TRIBUTARY_SEARCH__ENGINE``), on the session's servers."""
    clickstream, iot = 600, 200
    engine = search.search.engine
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "tributary"),
            "demo",
            "--events",
            str(clickstream),
            "--iot-events",
            str(iot),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        # The human output unwrapped, one row per line.
        env={**os.environ, "COLUMNS": "200", "TRIBUTARY_SEARCH__ENGINE": engine.value},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Where the state and the downloads live: said once, before the stream starts.
    said = result.stderr.splitlines()
    folders = [i for i, line in enumerate(said) if line.startswith("state folder: ")]
    stream = next(i for i, line in enumerate(said) if line.startswith("stream processes"))
    assert len(folders) == 1 and folders[0] < stream and "download cache: " in said[folders[0]]
    document = json.loads(result.stdout)  # stdout holds the JSON document and nothing else
    assert document["problems"] == [], document["problems"]
    assert document["verdict"] == "every event is accounted for"
    got, want = document["figures"], document["expected"]

    # What the producers sent is what the test asked for; what the collector told them is on
    # its topics, reason by reason.
    producers = document["producers"]
    assert [p["sent"] for p in producers.values()] == [clickstream, iot]
    assert got["sent"] == clickstream + iot
    told_rejected: Counter[str] = Counter()
    for figures in producers.values():
        told_rejected.update(figures["rejected"])
    assert got["accepted"] == sum(p["accepted"] for p in producers.values()) == want["accepted"]
    assert got["collector_dead_letters_by_reason"] == dict(told_rejected)
    assert got["collector_dead_letters"] > 0  # the demo breaks some envelopes on purpose
    assert got["accepted"] + got["collector_dead_letters"] == clickstream + iot
    # Every accepted event was enriched or dead-lettered, and each went where it belongs.
    enriched, dead = got["enriched"], got["enriched_dead_letters"]
    assert enriched > 0
    assert enriched + dead == got["accepted"]
    assert got["indexed_events"] == enriched
    assert got["indexed_dead_letters"] == dead
    # The collector's refusals reached the search store too, one document per dead letter.
    assert got["indexed_collector_dead_letters"] == got["collector_dead_letters"]
    assert want["indexed_collector_dead_letters"] == got["collector_dead_letters"]
    assert got["lake_rows"] == enriched
    assert got["loader_dead_letters"] == 0
    assert sum(got["enriched_dead_letters_by_reason"].values()) == dead

    # The event times were spread over the last DEMO_DAYS days (from midnight UTC), so the
    # lake has several event dates; the latency of every indexed event was measured.
    dates = [date.fromisoformat(d) for d in document["lake_dates"]]
    today = datetime.now(UTC).date()
    assert len(dates) >= 2 and min(dates) >= today - timedelta(days=DEMO_DAYS - 1), dates
    latency = document["latency"]
    assert latency["events"] == got["indexed_events"]
    assert latency["first_events_p50_s"] >= 0 and latency["p50_s"] <= latency["max_s"]
    assert "Latency from the collector to the search index" in result.stderr

    # Then the curated lake was materialised for every event date the batch loader wrote,
    # every check green, and the KPIs read back through Trino's reporting views.
    kpis = document["kpis"]
    assert {day["date"] for day in kpis} == set(document["lake_dates"]), kpis
    demo_sessions = set()
    for day in kpis:
        assert day["checks"] > 0 and day["checks_passed"] == day["checks"], day
        assert isinstance(day["sessions"], int) and day["sessions"] > 0, day
        assert isinstance(day["orders"], int) and day["orders"] >= 0, day
        demo_sessions.add(day["sessions"])
    # The human output went to stderr, unchanged.
    human = result.stderr
    assert "Reconciliation by event_id" in human and "every event is accounted for" in human
    assert "read through trino" in human
    assert "http://127.0.0.1:3000" in human
    assert f"Trino: {superset.trino.url}" in human
    # It ends with the dashboards' addresses and how to log in.
    from stack.dashboards import dashboard_urls

    urls = dashboard_urls(superset)
    assert urls, "the bundle names no dashboard"
    lines = human.splitlines()
    tail = "\n".join(lines[-(len(urls) + 1) :])
    assert f"log in as '{superset.superset.admin_username}'" in tail
    bundle = BundleAssets.read()
    live = {bundle.dashboards[slug] for slug in bundle.live}
    assert live, "the bundle has no live dashboard"
    for title, url in urls.items():
        if title in live and not search.search.read_by_trino:
            # Trino reads the live indices from OpenSearch only: said, not linked.
            assert f"{title}: skipped: its live views read the real-time indices" in tail
            assert url not in tail
        else:
            assert f"{title}: {url}" in tail
    assert f"indexed in {ENGINE_TITLES[engine]}: events" in human

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
