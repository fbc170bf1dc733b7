"""The emitter: source -> spool -> transport, acknowledged only after a terminal answer.

Every event is written to the spool before it is sent (durable first). A batch leaves the
spool only when the collector answered for each of its events, accepted or rejected; on a
``RetryableError`` it stays and is resent, the same bytes, after a capped exponential backoff
with full jitter (or the server's ``Retry-After``). A producer that starts with a non-empty
spool sends those events first. An event can therefore arrive twice (when an answer was
lost), always with the same bytes and event id, but is never lost.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from contract.envelope import SourceItem
from ingestion.producers.config import DEFAULT_RETRY, ProducerOptions
from ingestion.producers.sources import encode
from ingestion.producers.spool import EventStore
from ingestion.producers.transports import (
    FatalError,
    RetryableError,
    SendResult,
    Transport,
    TransportError,
)
from runtime.retry import RetrySettings

log = logging.getLogger(__name__)

SuccessCallback = Callable[[SendResult, list[bytes]], None]
# (the error, how many attempts of this batch failed so far, the wait before the next one or
# None when the emitter gives up)
FailureCallback = Callable[[TransportError, int, float | None], None]


@dataclass
class EmitterStats:
    """Counters of one emitter; ``sent`` counts events that got a terminal answer."""

    generated: int = 0
    from_spool: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    resent: int = 0
    batches: int = 0
    spooled: int = 0
    error: str | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "from_spool": self.from_spool,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "retries": self.retries,
            "resent": self.resent,
            "batches": self.batches,
            "spooled": self.spooled,
            "error": self.error,
        }


class RateLimiter:
    """Let at most ``rate`` events per second through, evenly spaced, without bursts."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> float:
        """Block until the next event may go; return how long that was."""
        now = self._clock()
        due = now if self._next is None else self._next
        waited = 0.0
        if due > now:
            waited = due - now
            self._sleep(waited)
        # An idle period earns no credit for a later burst.
        self._next = max(due, now) + self.interval
        return waited


class Emitter:
    """Moves events from a source through a spool to the collector.

    Args:
        transport: REST or gRPC.
        store: The spool (``SqliteSpool`` to survive restarts).
        batch_size: Events per request.
        max_retries: Retries of one batch before the emitter gives up (it stays spooled).
        retry: The waits between retries (a server's Retry-After may be longer).
        rate: Events per second taken from the source, or None for as fast as possible.
        linger_s: With a rate, send a partial batch after this long.
        on_success: Called after each answered batch, with its result and its events.
        on_failure: Called after each failed attempt.
        rng: Source of the backoff jitter.
    """

    def __init__(
        self,
        transport: Transport,
        store: EventStore,
        *,
        batch_size: int = 100,
        max_retries: int = 10,
        retry: RetrySettings = DEFAULT_RETRY,
        rate: float | None = None,
        linger_s: float = 1.0,
        on_success: SuccessCallback | None = None,
        on_failure: FailureCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.transport = transport
        self.store = store
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.retry = retry
        self.linger_s = linger_s
        self.on_success = on_success
        self.on_failure = on_failure
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._limiter = RateLimiter(rate, sleep=self._stop.wait) if rate else None
        self.stats = EmitterStats(from_spool=len(store), spooled=len(store))

    @classmethod
    def from_options(
        cls, transport: Transport, store: EventStore, options: ProducerOptions, **kwargs: Any
    ) -> Emitter:
        """An emitter with the batching and retry settings of ``options``."""
        settings: dict[str, Any] = {
            "batch_size": options.batch_size,
            "max_retries": options.max_retries,
            "retry": options.retry,
        }
        return cls(transport, store, **{**settings, **kwargs})

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking events and stop retrying (thread-safe); spooled events stay spooled."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the work --------------------------------------------------------------------------

    def emit(self, events: Iterable[SourceItem]) -> int:
        """Spool events (durably, without sending them); return how many."""
        bodies = [encode(e) for e in events]
        self.store.add(bodies)
        self.stats.generated += len(bodies)
        self.stats.spooled = len(self.store)
        return len(bodies)

    def flush(self) -> bool:
        """Send spooled events until none is left; False when stopped or failed first."""
        while len(self.store) and not self.stopped:
            if not self._deliver(self.store.peek(self.batch_size)):
                break
        self.stats.spooled = len(self.store)
        return len(self.store) == 0

    def run(self, source: Iterable[SourceItem], limit: int | None = None) -> EmitterStats:
        """Send what is spooled, then ``limit`` events (or all) of ``source``.

        Stops early when a batch cannot be delivered (``stats.error`` says why) or on
        ``stop()``; what was taken from the source but not delivered stays in the spool.
        """
        self.stats.error = None
        if self.flush():
            events = iter(source) if limit is None else itertools.islice(source, limit)
            while not self.stopped:
                chunk = self._chunk(events)
                if not chunk:
                    break
                self.emit(chunk)
                if not self.flush():
                    break
        self.stats.spooled = len(self.store)
        return self.stats

    def _chunk(self, events: Iterator[SourceItem]) -> list[SourceItem]:
        chunk: list[SourceItem] = []
        first = 0.0
        while len(chunk) < self.batch_size and not self.stopped:
            if self._limiter is not None:
                if chunk and time.monotonic() - first >= self.linger_s:
                    break
                self._limiter.wait()
                if self.stopped:
                    break
            item = next(events, None)
            if item is None:
                break
            if not chunk:
                first = time.monotonic()
            chunk.append(item)
        return chunk

    def _deliver(self, batch: list[tuple[int, bytes]]) -> bool:
        bodies = [body for _, body in batch]
        attempt = 0
        while True:
            try:
                result = self.transport.send(bodies)
            except RetryableError as exc:
                attempt += 1
                if attempt > self.max_retries:
                    return self._give_up(
                        exc, attempt, f"gave up after {self.max_retries} retries: {exc}"
                    )
                delay = self.retry.delay(attempt - 1, self._rng.random, exc.retry_after)
                log.warning("batch of %d failed (%s); retry in %.2fs", len(batch), exc, delay)
                if self.on_failure:
                    self.on_failure(exc, attempt, delay)
                if self._stop.wait(delay):
                    return False
                self.stats.retries += 1
                self.stats.resent += len(batch)
                continue
            except FatalError as exc:
                if exc.too_large and len(batch) > 1:
                    half = len(batch) // 2
                    log.warning("batch of %d too large (%s); splitting it", len(batch), exc)
                    return self._deliver(batch[:half]) and self._deliver(batch[half:])
                return self._give_up(exc, attempt + 1, str(exc))
            self.store.ack([i for i, _ in batch])
            stats = self.stats
            stats.batches += 1
            stats.sent += len(batch)
            stats.accepted += result.accepted
            stats.rejected.update(r.reason for r in result.rejected)
            stats.spooled = len(self.store)
            if self.on_success:
                self.on_success(result, bodies)
            return True

    def _give_up(self, exc: TransportError, attempts: int, message: str) -> bool:
        log.error("%s; %d events stay in the spool", message, len(self.store))
        self.stats.error = message
        if self.on_failure:
            self.on_failure(exc, attempts, None)
        return False
