"""The verdict of a trace from its stages' findings (pure logic)."""

from __future__ import annotations

import pytest

from privacy.trace import Outcome, Stage, State, Step, Trace, judge

pytestmark = pytest.mark.unit


def steps(**states: State) -> list[Step]:
    return [Step(s, states.get(str(s), State.ABSENT), "test", reason="why") for s in Stage]


def test_in_no_stage_is_not_found() -> None:
    assert judge(steps()) == (Outcome.NOT_FOUND, None, "in no stage")
    assert judge(steps(raw_zone=State.NOT_LOOKED_UP))[0] is Outcome.NOT_FOUND


def test_every_stage_of_its_path_is_complete() -> None:
    found = {s: State.FOUND for s in ("raw_topic", "enriched_topic", "search", "raw_zone")}
    outcome, stopped, _ = judge(steps(**found, curated=State.FOUND))
    assert (outcome, stopped) == (Outcome.COMPLETE, None)


@pytest.mark.parametrize(
    ("states", "stopped"),
    [
        ({"collector_dlq": State.DEAD_LETTER, "search": State.DEAD_LETTER}, Stage.COLLECTOR_DLQ),
        ({"raw_topic": State.FOUND, "enricher_dlq": State.DEAD_LETTER}, Stage.ENRICHER_DLQ),
        ({"search": State.DEAD_LETTER}, Stage.SEARCH),
        (
            {
                "raw_topic": State.FOUND,
                "enriched_topic": State.FOUND,
                "search": State.FOUND,
                "raw_zone": State.FOUND,
                "curated": State.QUARANTINED,
            },
            Stage.CURATED,
        ),
        ({"raw_topic": State.FOUND, "enriched_topic": State.FOUND}, Stage.SEARCH),
        # Past the topics' retention, or a trace without the date: a later stage is missing.
        ({"search": State.FOUND, "raw_zone": State.FOUND, "curated": State.FOUND}, Stage.RAW_TOPIC),
        (
            {
                "raw_topic": State.FOUND,
                "enriched_topic": State.FOUND,
                "search": State.FOUND,
                "raw_zone": State.NOT_LOOKED_UP,
                "curated": State.NOT_LOOKED_UP,
            },
            Stage.RAW_ZONE,
        ),
    ],
)
def test_a_stop_or_a_gap_is_partial_and_names_the_stage(
    states: dict[str, State], stopped: Stage
) -> None:
    outcome, at, why = judge(steps(**states))
    assert (outcome, at) == (Outcome.PARTIAL, stopped)
    assert why


def test_the_lines_are_one_per_stage_then_the_outcome() -> None:
    trace = Trace("e-1", steps(search=State.FOUND), Outcome.PARTIAL, Stage.RAW_TOPIC, "gap", 0.1)
    lines = trace.lines()
    assert len(lines) == len(Stage) + 1
    assert lines[-1] == "partial: gap"
    assert [line.split()[0] for line in lines[:-1]] == [str(s) for s in Stage]
    assert trace.as_dict()["stages"][4]["state"] == "found"


def test_a_partition_without_its_leader_for_a_moment_is_waited_out() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from privacy.trace import _retried

    calls = []

    def offsets() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return "offsets"

    assert _retried(offsets) == "offsets" and len(calls) == 3

    def refused() -> str:
        calls.append(1)
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    calls.clear()
    with pytest.raises(KafkaException):
        _retried(refused)
    assert len(calls) == 1  # not transient: no retry
