"""librdkafka's log lines through Python logging, once per state of their source."""

from __future__ import annotations

import logging

import pytest

from resources.kafka import OncePerState

pytestmark = pytest.mark.unit


def _record(
    text: str, level: int = logging.ERROR, client: str = "rdkafka#consumer-1"
) -> logging.LogRecord:
    # The shape confluent-kafka logs with: "%s [%s] %s" % (facility, client, text).
    return logging.LogRecord("k", level, __file__, 1, "%s [%s] %s", ("FAIL", client, text), None)


def _refused(ms: int, port: int = 1) -> str:
    return (
        f"[thrd:127.0.0.1:{port}/bootstrap]: 127.0.0.1:{port}/bootstrap: Connect to "
        f"ipv4#127.0.0.1:{port} failed: Connection refused (after {ms}ms in state CONNECT)"
    )


def test_a_repeated_failure_passes_once_at_warning() -> None:
    once = OncePerState()
    first = _record(_refused(0))
    assert once.filter(first)
    assert (first.levelno, first.levelname) == (logging.WARNING, "WARNING")
    assert not any(once.filter(_record(_refused(ms))) for ms in (3, 52, 1004))


def test_a_change_of_state_or_another_source_passes_again() -> None:
    once = OncePerState()
    assert once.filter(_record(_refused(0)))
    assert once.filter(_record(_refused(0, port=2)))  # another broker
    assert once.filter(_record(_refused(0), client="rdkafka#producer-2"))  # another client
    recovered = "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connected (#1)"
    assert once.filter(_record(recovered, logging.INFO))
    assert once.filter(_record(_refused(9)))  # down again after the recovery


def test_other_records_pass_untouched() -> None:
    record = logging.LogRecord("k", logging.ERROR, __file__, 1, "plain %s", ("x",), None)
    assert OncePerState().filter(record) and record.levelno == logging.ERROR
