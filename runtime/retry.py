"""The one retry policy: capped exponential backoff with full jitter.

Every retry of the platform waits ``uniform(0, min(max_s, initial_s * 2**attempt))``
("full jitter", as in the AWS architecture blog's comparison of backoff strategies): clients
that failed together do not retry together, and no wait exceeds ``max_s``. The loops that
retry keep polling Kafka (to stay in their consumer group) and watch their stop event while
they wait, so only the arithmetic lives here, not the waiting. :class:`Outage` turns a run of
failures into two log lines, one when it begins and one when it ends.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from pydantic import BaseModel, Field

# The longest a server's Retry-After may make a client wait.
MAX_RETRY_AFTER_S = 300.0


class RetrySettings(BaseModel):
    """How long to wait between attempts (``TRIBUTARY_<PROCESS>__RETRY__INITIAL_S``, ...)."""

    initial_s: float = Field(0.5, gt=0, description="Upper bound of the first retry's wait.")
    max_s: float = Field(30.0, gt=0, description="Upper bound of any retry's wait.")

    def delay(
        self,
        attempt: int,
        rand: Callable[[], float] = random.random,
        retry_after: float | None = None,
    ) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

        Uniform in ``[0, min(max_s, initial_s * 2**attempt))``. A server's ``Retry-After`` is
        a lower bound (itself capped at ``MAX_RETRY_AFTER_S``).
        """
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(max(attempt, 0), 64))
        delay = ceiling * rand()
        if retry_after is not None:
            delay = max(delay, min(max(retry_after, 0.0), MAX_RETRY_AFTER_S))
        return delay

    def backoff(self, rng: random.Random | None = None) -> Backoff:
        """A fresh sequence of waits for one run of failures."""
        return Backoff(self, rng or random.Random())


class Backoff:
    """The waits of one run of failures: each :meth:`next` is one attempt later."""

    def __init__(self, settings: RetrySettings, rng: random.Random) -> None:
        self.settings = settings
        self.rng = rng
        self.attempts = 0

    def next(self) -> float:
        """The wait before the next attempt."""
        delay = self.settings.delay(self.attempts, self.rng.random)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """The dependency answered: the next failure starts from ``initial_s`` again."""
        self.attempts = 0


class Outage:
    """A dependency's availability as a worker sees it, logged once per change of state.

    ``failed`` on every failed attempt logs one warning when the dependency goes down (not
    one per attempt, and never the client library's traceback); ``recovered`` logs one line
    when it answers again, with how long it was away and how many retries that took.
    """

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        on_retry: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.log = log
        self.on_retry = on_retry
        self.clock = clock
        self.since: float | None = None
        self.retries = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException | str, retry_in_s: float | None = None) -> None:
        """Record one failed attempt; the first of a run logs that the dependency is down."""
        if self.on_retry is not None:
            self.on_retry()
        if self.since is None:
            self.since = self.clock()
            self.retries = 0
            then = "" if retry_in_s is None else "; retrying with backoff"
            self.log.warning("%s unavailable (%s)%s", self.what, _one_line(error), then)
        else:
            self.log.debug("%s still unavailable (%s)", self.what, _one_line(error))
        self.retries += 1

    def recovered(self) -> None:
        """The dependency answered; logs that it is back if it was down."""
        if self.since is None:
            return
        away = self.clock() - self.since
        self.log.info("%s available again after %.1fs (%d retries)", self.what, away, self.retries)
        self.since = None
        self.retries = 0


def _one_line(error: BaseException | str, limit: int = 300) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
