"""The real-time query path: events sent over HTTP, read back through Trino's OpenSearch catalog.

The five stream processes run on the real servers (``tests.pipeline_rig``), with indices of
their own; a thread asks Trino for the event ids of the loader's alias while the events
flow. Every enriched event must become visible in Trino within seconds of being sent, no
other, and the live reporting views must count exactly what the stages did.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from contract.search import DEADLETTERS, EVENTS, alias_name
from platform_assets.reporting.views import (
    LIVE_DEAD_LETTERS,
    LIVE_EVENTS_PER_MINUTE,
    LIVE_INGEST_LATENCY,
    ReportingView,
)
from resources.settings import PlatformSettings
from resources.trino import run_trino
from streaming.reconcile import Reconciler
from tests.pipeline_rig import Feed, settle, start_rig

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

EVENTS_SENT = 400
VISIBLE_WITHIN_S = 20


def test_events_sent_over_http_are_queryable_in_trino_within_seconds(
    kafka: PlatformSettings, trino: PlatformSettings, tmp_path: Path
) -> None:
    rig = start_rig(kafka, trino, tmp_path)
    prefix = rig.settings.search.index_prefix
    search = f"{trino.trino.opensearch_catalog}.default"
    events = f'{search}."{alias_name(prefix, EVENTS)}"'
    deadletters = f'{search}."{alias_name(prefix, DEADLETTERS)}"'
    seen: list[tuple[float, set[str]]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                rows = run_trino(trino.trino, f"select event_id from {events}").rows
            except Exception:  # the alias exists once the loader wrote its first document
                rows = []
            seen.append((time.monotonic(), {str(r[0]) for r in rows}))
            stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        with Reconciler(rig.settings) as reconciler:
            watcher.start()
            stats = Feed(rig, EVENTS_SENT, None, seed=11).start().join()
            sent_at = time.monotonic()
            result = settle(reconciler, rig, producers=[stats])
        assert result.settled, result.problems()
        time.sleep(1)
        stop.set()
        watcher.join(10)
    finally:
        stop.set()
        rig.pipeline.stop()

    enriched = set(result.enriched) & set(result.accepted)
    dead = set(result.enriched_dead_letters) & set(result.accepted)
    assert len(enriched) > EVENTS_SENT // 2 and dead, "the feed should yield both"
    complete = [t for t, ids in seen if ids >= enriched]
    assert complete, "Trino never showed every enriched event"
    assert complete[0] - sent_at < VISIBLE_WITHIN_S
    assert seen[-1][1] == enriched, "Trino shows events that were not enriched in this run"

    def view(v: ReportingView) -> list[tuple[object, ...]]:
        sql = v.render(marts="", events=events, deadletters=deadletters)
        return run_trino(trino.trino, sql).rows

    per_minute = view(LIVE_EVENTS_PER_MINUTE)
    assert sum(int(r[3]) for r in per_minute) == len(enriched)  # type: ignore[call-overload]
    assert {str(r[1]) for r in per_minute} <= {
        str(r[0]) for r in run_trino(trino.trino, f"select distinct event_type from {events}").rows
    }
    # The short name of iglu:com.tributary.shop/page_view/jsonschema/1-0-1 is page_view.
    for _, event_type, event_name, _ in per_minute:
        assert str(event_type).split("/")[1] == event_name, (event_type, event_name)
    letters = view(LIVE_DEAD_LETTERS)
    by_stage: dict[str, Counter[str]] = {}
    for _, stage, reason, count in letters:
        by_stage.setdefault(str(stage), Counter())[str(reason)] += int(count)  # type: ignore[call-overload]
    # The enricher's dead letters of this run, and every refusal of the collector.
    assert by_stage.pop("enricher") == result.enriched_dead_letter_reasons
    assert by_stage.pop("collector") == result.collector_dead_letters
    assert by_stage == {}
    latency = view(LIVE_INGEST_LATENCY)
    assert len(latency) == len(enriched)  # one row per event
    for _, event_name, latency_ms in latency:
        assert event_name and "iglu:" not in str(event_name)
        assert 0 <= latency_ms < VISIBLE_WITHIN_S * 1000  # type: ignore[operator]
