"""The event-by-event generators spread over a window of event time (as the demo uses them)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

import pytest

from simulator.events import ClickstreamSource, IoTSource

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 26, tzinfo=UTC)
UNTIL = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
SPAN = UNTIL - START


def _times(events: list[Any]) -> list[datetime]:
    return [datetime.fromisoformat(e["event_timestamp"]) for e in events if isinstance(e, dict)]


def _clickstream(n: int, until: datetime = UNTIL, seed: int = 7) -> list[Any]:
    source = ClickstreamSource(
        users=max(1, n // 20),
        seed=seed,
        start=START,
        until=until,
        sessions_per_s=ClickstreamSource.sessions_per_s_for(n, until - START),
    )
    return list(islice(source, n))


def test_clickstream_fills_the_window_day_by_day_and_never_passes_its_end() -> None:
    times = _times(_clickstream(20_000))
    assert min(times) >= START and max(times) <= UNTIL
    # The last events come close to the end: the rate fits the window, not 20 minutes of it.
    assert UNTIL - max(times) < SPAN * 0.03
    days = Counter(t.date() for t in times)
    assert set(days) == {date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)}
    # Whole days hold about as many events as each other (sessions vary in length: crawlers'
    # are long), today's 10.5 hours fewer.
    full = days[date(2026, 11, 26)], days[date(2026, 11, 27)]
    assert abs(full[0] - full[1]) < 0.25 * max(full)
    assert 0.2 * max(full) < days[date(2026, 11, 28)] < 0.7 * min(full)


def test_a_session_that_would_run_past_the_end_is_moved_back() -> None:
    # Far too many sessions for the window (the default rate of 5 a second covers 20 minutes
    # with these events, the window is 1 minute): each ends at the end, none after it.
    until = START + timedelta(minutes=1)
    source = ClickstreamSource(users=500, seed=3, start=START, until=until)
    times = _times(list(islice(source, 5000)))
    assert max(times) <= until
    assert sum(1 for t in times if t > START + timedelta(minutes=2)) == 0


def test_the_window_seeds_the_event_ids() -> None:
    def ids(events: list[Any]) -> set[str]:
        return {e["event_id"] for e in events if isinstance(e, dict)}

    first = _clickstream(500)
    assert _clickstream(500) == first  # same seed and window: the same events
    later = _clickstream(500, until=UNTIL + timedelta(seconds=1))
    assert not ids(first) & ids(later)  # another run, its own event ids


def test_a_shop_and_sensors_of_one_seed_and_window_draw_different_event_ids() -> None:
    # As the demo runs them: the same seed, start and until.
    def ids(events: list[Any]) -> set[str]:
        return {e["event_id"] for e in events if isinstance(e, dict)}

    shop = ids(_clickstream(3000))
    sensors = IoTSource(20, seed=7, start=START, until=UNTIL, interval_s=60)
    assert not shop & ids(list(islice(sensors, 3000)))


def test_iot_readings_spread_evenly_over_the_window() -> None:
    devices, readings = 20, 3000
    interval = IoTSource.interval_s_for(readings, devices, SPAN)
    assert interval == pytest.approx(SPAN.total_seconds() * devices / readings)
    source = IoTSource(devices, seed=5, start=START, until=UNTIL, interval_s=interval)
    times = _times(list(islice(source, readings)))
    assert min(times) >= START and max(times) <= UNTIL
    assert UNTIL - max(times) < SPAN * 0.05
    by_device = Counter(
        e["payload"]["device_id"] for e in islice(source, readings) if isinstance(e, dict)
    )
    assert len(by_device) == devices and set(by_device.values()) == {readings // devices}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": START, "until": START},
        {"start": START, "until": START - timedelta(hours=1)},
        {"start": START, "until": datetime(2026, 11, 28)},  # naive
        {"start": START, "sessions_per_s": 0},
    ],
)
def test_a_window_that_ends_before_it_starts_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClickstreamSource(users=10, seed=1, **kwargs)


def test_spreading_needs_positive_figures() -> None:
    with pytest.raises(ValueError):
        ClickstreamSource.sessions_per_s_for(0, SPAN)
    with pytest.raises(ValueError):
        IoTSource.interval_s_for(10, 20, timedelta(0))
