"""The reconciliation's arithmetic: only this run's events count, whatever else the topics hold."""

from __future__ import annotations

from collections import Counter

import pytest

from streaming.reconcile import Reconciliation

pytestmark = pytest.mark.unit


def test_dead_letters_of_older_events_are_not_this_runs() -> None:
    # This run accepted a, b and c. The enricher also worked off an older backlog: its dead
    # letters (old-1, and a malformed record without an event id) and a loader rejection
    # (old-2) were written after the reconciler started but belong to no event of this run.
    result = Reconciliation(
        accepted=Counter({"a": 1, "b": 1, "c": 1}),
        enriched=Counter({"a": 1, "old-2": 1}),
        enriched_dead_letters=Counter({"b": 1, "old-1": 1}),
        enriched_dead_letter_types={"b": "schema_violation", "old-1": "malformed"},
        loader_dead_letters=Counter({"old-2": 1}),
        indexed_events=Counter({"a": 1}),
        indexed_dead_letters=Counter({"b": 1}),
        lake_rows=Counter({"a": 1}),
    )
    assert result.enriched_dead_letter_reasons == Counter({"schema_violation": 1})
    assert result.ours(result.loader_dead_letters) == 0
    assert result.ours(result.enriched_dead_letters) == 1
    assert result.problems() == ["1 accepted but neither enriched nor dead-lettered, e.g. c"]

    result.enriched_dead_letters["c"] += 1
    result.enriched_dead_letter_types["c"] = "enrichment_failed"
    result.indexed_dead_letters["c"] += 1
    result.loader_dead_letters["a"] += 1
    assert result.settled
    assert result.enriched_dead_letter_reasons == Counter(
        {"schema_violation": 1, "enrichment_failed": 1}
    )
    assert result.ours(result.loader_dead_letters) == 1
