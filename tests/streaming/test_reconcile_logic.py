"""The reconciliation's pure logic: the producers' figures against the topics, the settle loop."""

from __future__ import annotations

from collections import Counter

import pytest

from streaming.reconcile import Reconciler, Reconciliation, producer_problems
from tests.streaming.reconcile_helpers import Told

pytestmark = pytest.mark.unit


def _topics(accepted: int, dead: dict[str, int]) -> Reconciliation:
    return Reconciliation(
        accepted=Counter({f"e{i}": 1 for i in range(accepted)}),
        collector_dead_letters=Counter(dead),
    )


def test_figures_that_agree_have_no_problem() -> None:
    producers = [Told(7, 5, Counter({"malformed": 2})), Told(4, 3, Counter({"unknown_schema": 1}))]
    assert producer_problems(producers, _topics(8, {"malformed": 2, "unknown_schema": 1})) == []


def test_an_acknowledged_event_missing_from_the_raw_topic() -> None:
    problems = producer_problems([Told(10, 10)], _topics(9, {"malformed": 1}))
    assert "the collector acknowledged 10, the raw topic holds 9" in problems


def test_dead_letters_of_other_reasons_than_the_producers_were_told() -> None:
    problems = producer_problems(
        [Told(10, 8, Counter({"malformed": 2}))], _topics(8, {"envelope_violation": 2})
    )
    assert problems == ["the collector's dead letters differ from what the producers were told"]


def test_an_event_neither_accepted_nor_dead_lettered() -> None:
    # The collector told of 9 accepted, 1 refused; 11 were sent (one answer was lost).
    problems = producer_problems(
        [Told(11, 9, Counter({"malformed": 1}))], _topics(9, {"malformed": 1})
    )
    assert problems == ["11 sent, but 10 accepted or dead-lettered"]


class _Scripted(Reconciler):
    """A reconciler whose rounds are given: the loop's logic without the servers."""

    def __init__(self, rounds: list[Reconciliation]) -> None:
        self.rounds = rounds
        self.collected = 0

    def collect(self) -> Reconciliation:
        self.collected += 1
        return self.rounds[min(self.collected, len(self.rounds)) - 1]


def _unsettled() -> Reconciliation:
    return Reconciliation(accepted=Counter({"e1": 1}))  # accepted, nowhere else yet


def _settled() -> Reconciliation:
    return Reconciliation(
        accepted=Counter({"e1": 1}),
        enriched=Counter({"e1": 1}),
        indexed_events=Counter({"e1": 1}),
        lake_rows=Counter({"e1": 1}),
    )


def test_settle_stops_at_the_first_settled_round() -> None:
    reconciler = _Scripted([_unsettled(), _unsettled(), _settled(), _unsettled()])
    settled = reconciler.settle(timeout=10, poll=0)
    assert settled.result.settled and settled.exited == []
    assert reconciler.collected == 3


def test_settle_stops_when_a_process_exited() -> None:
    reconciler = _Scripted([_unsettled()])
    calls = iter([[], ["enricher"]])
    settled = reconciler.settle(timeout=10, poll=0, exited=lambda: next(calls))
    assert settled.exited == ["enricher"] and not settled.result.settled
    assert reconciler.collected == 2


def test_settle_gives_up_after_the_timeout() -> None:
    reconciler = _Scripted([_unsettled()])
    settled = reconciler.settle(timeout=0.05, poll=0.01)
    assert not settled.result.settled and settled.seconds >= 0.05
    assert reconciler.collected > 1
