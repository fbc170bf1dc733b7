"""The demo's JSON document, built from a hand-made reconciliation (pure logic)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cli.demo import ACCOUNTED, NOT_ACCOUNTED, reconciliation_document
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
        enriched=Counter([*enriched, "older"]),  # "older": a backlog event, not this run's
        enriched_dead_letters=Counter(failed),
        enriched_dead_letter_types=dict.fromkeys(failed, "schema_violation"),
        indexed_events=Counter(enriched),
        indexed_dead_letters=Counter(failed),
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
