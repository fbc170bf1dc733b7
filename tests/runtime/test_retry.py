"""The one retry policy: capped exponential waits with full jitter, and outage logging."""

from __future__ import annotations

import logging
import random

import pytest

from runtime.retry import MAX_RETRY_AFTER_S, Outage, RetrySettings

pytestmark = pytest.mark.unit


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = RetrySettings(initial_s=0.2, max_s=10.0)
    for attempt in range(40):
        ceiling = min(10.0, 0.2 * 2**attempt)
        assert policy.delay(attempt, rand=lambda: 0.0) == 0.0
        assert policy.delay(attempt, rand=lambda: 0.5) == pytest.approx(ceiling / 2)
        assert policy.delay(attempt, rand=lambda: 0.999999) <= ceiling
    assert [policy.delay(a, rand=lambda: 1.0) for a in range(8)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    )
    assert policy.delay(10_000, rand=lambda: 1.0) == 10.0  # no overflow
    rng = random.Random(1)
    delays = [policy.delay(5, rng.random) for _ in range(2000)]
    assert 0 <= min(delays) < 0.1 and 6.3 < max(delays) < 6.4  # spread over [0, 6.4)
    assert 2.9 < sum(delays) / len(delays) < 3.5


def test_retry_after_is_a_lower_bound_within_reason() -> None:
    policy = RetrySettings(initial_s=0.2, max_s=10)
    assert policy.delay(0, rand=lambda: 1.0, retry_after=3) == 3
    assert policy.delay(8, rand=lambda: 1.0, retry_after=3) == 10
    assert policy.delay(0, rand=lambda: 0.5, retry_after=86400) == MAX_RETRY_AFTER_S


def test_a_backoff_grows_per_attempt_and_starts_over_after_a_reset() -> None:
    ceiling = iter([1.0] * 10)
    rng = random.Random()
    rng.random = lambda: next(ceiling)  # type: ignore[method-assign]
    backoff = RetrySettings(initial_s=1, max_s=4).backoff(rng)
    assert [backoff.next() for _ in range(4)] == [1, 2, 4, 4]
    backoff.reset()
    assert backoff.next() == 1


def test_an_outage_is_two_lines_however_many_attempts(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    retries: list[int] = []
    outage = Outage(
        "OpenSearch", logging.getLogger("t"), lambda: retries.append(1), clock=lambda: now[0]
    )
    outage.recovered()  # not down: nothing to say
    with caplog.at_level(logging.INFO, logger="t"):
        for _ in range(56):
            try:
                raise ConnectionError("refused\n  second line")
            except ConnectionError as exc:
                outage.failed(exc, 1.0)
            now[0] += 0.75
        outage.recovered()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "OpenSearch unavailable (ConnectionError: refused second line); retrying with backoff",
        "OpenSearch available again after 42.0s (56 retries)",
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert len(retries) == 56 and not outage.down
