"""The demo's JSON document, built from a hand-made reconciliation (pure logic)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import typer

from cli.demo import (
    ACCOUNTED,
    FIRST_ARRIVALS,
    NOT_ACCOUNTED,
    IngestTime,
    event_window,
    latency_lines,
    latency_summary,
    reconciliation_document,
)
from cli.errors import ExitCode
from streaming.reconcile import Reconciliation
from tests.streaming.reconcile_helpers import Told

pytestmark = pytest.mark.unit


def _through(n: int, dead: int) -> Reconciliation:
    """``n`` accepted events, the first ``dead`` dead-lettered by the enricher, the rest
    enriched, indexed and in the lake; one collector dead letter."""
    ids = [f"e{i}" for i in range(n)]
    enriched, failed = ids[dead:], ids[:dead]
    return Reconciliation(
        accepted=Counter(ids),
        collector_dead_letters=Counter({"malformed": 1}),
        collector_dead_letter_ids={"r0"},
        enriched=Counter([*enriched, "older"]),  # "older": a backlog event, not this run's
        enriched_dead_letters=Counter(failed),
        enriched_dead_letter_types=dict.fromkeys(failed, "schema_violation"),
        indexed_events=Counter(enriched),
        indexed_dead_letters=Counter(failed),
        indexed_collector_dead_letters=Counter({"r0": 1}),
        lake_rows=Counter(enriched),
        lake_objects=2,
        lake_dates={"2026-11-28"},
    )


def test_a_run_that_adds_up() -> None:
    producers = {"a": Told(6, 5, Counter({"malformed": 1})), "b": Told(0, 0)}
    document = reconciliation_document(producers, _through(5, 2))
    assert document["figures"] == {
        "sent": 6,
        "accepted": 5,
        "collector_dead_letters": 1,
        "collector_dead_letters_by_reason": {"malformed": 1},
        "enriched": 3,
        "enriched_dead_letters": 2,
        "enriched_dead_letters_by_reason": {"schema_violation": 2},
        "indexed_events": 3,
        "indexed_dead_letters": 2,
        "indexed_collector_dead_letters": 1,
        "loader_dead_letters": 0,
        "lake_rows": 3,
        "lake_objects": 2,
    }
    assert document["expected"] == {
        "accepted": 5,
        "collector_dead_letters": 1,
        "collector_dead_letters_by_reason": {"malformed": 1},
        "enriched_plus_dead_letters": 5,
        "indexed_events": 3,
        "indexed_dead_letters": 2,
        "indexed_collector_dead_letters": 1,
        "loader_dead_letters": 0,
        "lake_rows": 3,
    }
    assert document["producers"]["a"] == {"sent": 6, "accepted": 5, "rejected": {"malformed": 1}}
    assert (document["problems"], document["verdict"]) == ([], ACCOUNTED)
    assert json.loads(json.dumps(document)) == document  # plain JSON


def test_a_run_that_does_not_add_up_says_where() -> None:
    result = _through(5, 2)
    del result.lake_rows["e4"]
    document = reconciliation_document({"a": Told(7, 6, Counter({"malformed": 1}))}, result)
    assert document["verdict"] == NOT_ACCOUNTED
    assert document["figures"]["lake_rows"] == 2 and document["expected"]["lake_rows"] == 3
    assert any("not in the lake" in p and "e4" in p for p in document["problems"])
    assert "the collector acknowledged 6, the raw topic holds 5" in document["problems"]


def test_a_collector_dead_letter_missing_from_the_index_is_a_problem() -> None:
    result = _through(5, 2)
    result.indexed_collector_dead_letters.clear()
    producers = {"a": Told(6, 5, Counter({"malformed": 1}))}
    document = reconciliation_document(producers, result)
    assert document["verdict"] == NOT_ACCOUNTED
    assert document["figures"]["indexed_collector_dead_letters"] == 0
    assert document["expected"]["indexed_collector_dead_letters"] == 1
    assert document["problems"] == ["1 collector dead letters not indexed, e.g. r0"]
    result.indexed_collector_dead_letters.update({"r0": 2})
    document = reconciliation_document(producers, result)
    assert document["problems"] == ["1 collector dead letters indexed twice, e.g. r0"]


def _times(*pairs: tuple[float, float]) -> list[IngestTime]:
    """Ingest times from (seconds after a start received, seconds after it indexed)."""
    t0 = datetime(2026, 11, 28, 10, tzinfo=UTC)
    return [IngestTime(t0 + timedelta(seconds=r), t0 + timedelta(seconds=i)) for r, i in pairs]


def test_the_latency_summary_tells_a_backlog_from_the_stream() -> None:
    # 1,000 events received over 10 s, each waiting longer than the one before (a backlog),
    # the last indexed 40 s after the first arrived; the first ones went through in 0.3 s.
    times = _times(*((n / 100, n / 100 + 0.3 + n * 0.03) for n in range(1000)))
    summary = latency_summary(times)
    assert summary["events"] == 1000
    assert summary["p50_s"] == round(0.3 + 499 * 0.03, 3)
    assert summary["p95_s"] == round(0.3 + 949 * 0.03, 3)
    assert summary["max_s"] == round(0.3 + 999 * 0.03, 3)
    assert (summary["received_over_s"], summary["received_per_s"]) == (10.0, 100)
    assert (summary["indexed_within_s"], summary["indexed_per_s"]) == (40.3, 25)
    assert summary["first_events"] == FIRST_ARRIVALS
    assert summary["first_events_p50_s"] == round(0.3 + 99 * 0.03, 3)
    lines = latency_lines(summary)
    assert lines[0].startswith("Latency from the collector to the search index")
    assert "p50 15.3 s, p95 28.8 s, max 30.3 s" in lines[0]
    assert "measure the demo's own backlog draining" in lines[1]
    assert "within 10 s (100/s)" in lines[1] and "40.3 s after the first arrived (25/s)" in lines[1]
    assert lines[2].strip().startswith(f"For comparison, the first {FIRST_ARRIVALS} events")
    assert lines[2].endswith("p50 3.3 s.")
    assert json.loads(json.dumps(summary)) == summary


def test_a_stream_that_keeps_up_is_not_called_a_backlog() -> None:
    # 1,000 events over 10 s, each indexed 0.3 s after it came.
    summary = latency_summary(_times(*((n / 100, n / 100 + 0.3) for n in range(1000))))
    assert summary["p50_s"] == summary["max_s"] == 0.3
    lines = latency_lines(summary)
    assert "The stream kept up" in lines[1] and "backlog draining" not in " ".join(lines)


def test_no_latency_without_indexed_events() -> None:
    assert latency_summary([]) == {} and latency_lines({}) == []
    one = latency_summary(_times((0, 0.5)))
    assert one["p50_s"] == one["max_s"] == 0.5 and one["received_per_s"] is None
    assert len(latency_lines(one)) == 2  # no rates to compare: no backlog to speak of


def test_the_event_window_starts_at_midnight_and_stays_within_the_collectors_limit() -> None:
    now = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert event_window(3, now, 7 * 86400) == (datetime(2026, 11, 26, tzinfo=UTC), now)
    assert event_window(1, now, 7 * 86400) == (datetime(2026, 11, 28, tzinfo=UTC), now)
    assert event_window(7, now, 7 * 86400)[0] == datetime(2026, 11, 22, tzinfo=UTC)
    with pytest.raises(typer.Exit) as refused:
        event_window(8, now, 7 * 86400)
    assert refused.value.exit_code == ExitCode.USAGE
