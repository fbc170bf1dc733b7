from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from platform_assets.curation.sessions import sessionise
from tests.curation.rows import T0, frame, row

pytestmark = pytest.mark.unit


def _sessions(rows: pl.DataFrame) -> list[str]:
    return sessionise(rows).events.get_column("session_id").to_list()


@pytest.mark.parametrize(
    ("gap_minutes", "same"), [(29, True), (30, True), (30.01, False), (31, False)]
)
def test_a_gap_of_more_than_30_minutes_starts_a_new_session(gap_minutes: float, same: bool) -> None:
    rows = frame([row(at=T0), row(at=T0 + timedelta(minutes=gap_minutes))])
    first, second = _sessions(rows)
    assert (first == second) is same


def test_session_ids_are_deterministic_and_order_independent() -> None:
    rows = frame(
        [row(at=T0 + timedelta(minutes=m), user_id="u-1") for m in (0, 10, 50, 55)]
        + [row(at=T0 + timedelta(minutes=m), user_id="u-2") for m in (5, 6)]
    )
    result = sessionise(rows)
    ids = dict(
        zip(rows.get_column("event_id"), result.events.get_column("session_id"), strict=True)
    )
    start_ms = int(T0.timestamp() * 1000)
    assert result.events.get_column("session_id").to_list() == [
        f"u:u-1#{start_ms}",
        f"u:u-1#{start_ms}",
        f"u:u-1#{start_ms + 50 * 60_000}",
        f"u:u-1#{start_ms + 50 * 60_000}",
        f"u:u-2#{start_ms + 5 * 60_000}",
        f"u:u-2#{start_ms + 5 * 60_000}",
    ]
    assert result.events.get_column("session_event_number").to_list() == [1, 2, 1, 2, 1, 2]
    assert result.stats.sessions == 3
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=1)
    again = sessionise(shuffled).events
    assert (
        dict(zip(again.get_column("event_id"), again.get_column("session_id"), strict=True)) == ids
    )


def test_the_actor_falls_back_from_user_to_device_to_anonymous_session_to_event() -> None:
    rows = frame(
        [
            row(user_id="u-1", device_id="d-1", session_id="s-1"),
            row(user_id=None, device_id="d-1", session_id="s-1"),
            row(user_id=None, device_id=None, session_id="s-1"),
            row(user_id=None, device_id=None, session_id=None, event_id="e-1"),
        ]
    )
    keys = sessionise(rows).events.get_column("user_key").to_list()
    assert keys == ["u:u-1", "d:d-1", "a:s-1", "e:e-1"]


def test_a_session_across_midnight_keeps_the_id_it_started_with() -> None:
    midnight = T0.replace(hour=0)
    yesterday = frame([row(at=midnight - timedelta(minutes=m)) for m in (40, 20)])
    today = frame([row(at=midnight + timedelta(minutes=5)), row(at=midnight + timedelta(hours=2))])
    started = int((midnight - timedelta(minutes=40)).timestamp() * 1000)
    result = sessionise(today, yesterday)
    assert result.events.get_column("session_id")[0] == f"u:u-1#{started}"
    assert result.events.get_column("session_event_number").to_list() == [3, 1]
    assert (result.stats.sessions, result.stats.sessions_continued) == (2, 1)
    # Without the lookback the same rows start a session of their own.
    assert sessionise(today).events.get_column("session_event_number").to_list() == [1, 1]


def test_bot_attributes_come_from_the_user_agent_or_the_model() -> None:
    rows = frame(
        [
            row(),
            row(bot=True),
            row(bot_probability=0.5),
            row(bot_probability=0.49, ua_device_class=None),
        ]
    )
    out = sessionise(rows).events
    assert out.get_column("is_bot").to_list() == [False, True, True, False]
    assert out.get_column("device_class").to_list() == ["desktop", "bot", "desktop", "other"]
