"""The emitter's logic: durable first, ack after a terminal answer, retry, give up, pace.

The collector is simulated by ``httpx.MockTransport`` (a scripted list of answers); the
emitter against the real collector and Kafka is tested in ``test_delivery.py``.
"""

from __future__ import annotations

import gzip
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ingestion.producers.emitter import Emitter, RateLimiter
from ingestion.producers.spool import InMemoryStore, SqliteSpool
from ingestion.producers.transports import RestTransport, TransportError
from runtime.retry import RetrySettings

pytestmark = pytest.mark.unit


def events(n: int, start: int = 0, bad_every: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        bad = bad_every and i % bad_every == 0
        out.append({"event_id": f"bad-{i}" if bad else str(uuid.UUID(int=i + 1)), "n": i})
    return out


class Collector:
    """Answers like the collector: accepts events with a UUID, rejects the others.

    ``script`` holds answers to give first (a status with headers, or an exception), one per
    request.
    """

    def __init__(self, script: list[Any] | None = None, max_batch: int = 1000) -> None:
        self.script = list(script or [])
        self.max_batch = max_batch
        self.requests: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        batch = orjson.loads(gzip.decompress(request.content))
        self.requests.append(batch)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            status, headers = step
            return httpx.Response(status, json={"detail": "scripted"}, headers=headers)
        if len(batch) > self.max_batch:
            return httpx.Response(413, json={"detail": "too many", "reason": "size_violation"})
        outcomes = []
        for index, event in enumerate(batch):
            try:
                uuid.UUID(event["event_id"])
                outcomes.append({"index": index, "status": "accepted"})
            except ValueError:
                outcomes.append(
                    {"index": index, "event_id": event["event_id"], "status": "rejected",
                     "reason": "envelope_violation"}
                )  # fmt: skip
        accepted = sum(o["status"] == "accepted" for o in outcomes)
        body: dict[str, Any] = {"request_id": "r", "accepted": accepted}
        body["rejected"] = len(batch) - accepted
        if accepted < len(batch):
            body["events"] = outcomes
        status = 202 if accepted == len(batch) else 207 if accepted else 400
        return httpx.Response(status, json=body)

    @property
    def ids(self) -> list[int]:
        return [e["n"] for batch in self.requests for e in batch]


def emitter(collector: Collector, store: Any = None, **kw: Any) -> Emitter:
    transport = RestTransport("http://c.test", "k", transport=httpx.MockTransport(collector))
    settings = {"batch_size": 10, "retry": RetrySettings(initial_s=0.001, max_s=0.002), **kw}
    return Emitter(transport, store if store is not None else InMemoryStore(), **settings)


def test_sends_everything_in_batches_and_counts_outcomes() -> None:
    collector = Collector()
    acks: list[int] = []
    e = emitter(collector, on_success=lambda result, bodies: acks.append(len(bodies)))
    stats = e.run(events(95, bad_every=10))
    assert collector.ids == list(range(95))
    assert acks == [10] * 9 + [5]
    assert (stats.generated, stats.sent, stats.accepted) == (95, 95, 85)
    assert stats.rejected == {"envelope_violation": 10}
    assert stats.retries == 0 and stats.spooled == 0 and stats.error is None
    assert len(e.store) == 0


def test_limit_takes_no_more_than_asked_from_the_source() -> None:
    taken = []

    def source() -> Any:
        for event in events(1000):
            taken.append(event["n"])
            yield event

    e = emitter(Collector())
    assert e.run(source(), limit=25).generated == 25
    assert len(taken) == 25


def test_retries_keep_events_spooled_and_resend_the_same_bytes() -> None:
    collector = Collector(
        [(503, {"Retry-After": "0.05"}), httpx.ConnectError("refused"), (429, {})]
    )
    failures: list[tuple[TransportError, int, float | None]] = []
    spooled_during_failures: list[int] = []

    def on_failure(error: TransportError, attempt: int, delay: float | None) -> None:
        failures.append((error, attempt, delay))
        spooled_during_failures.append(len(e.store))

    e = emitter(collector, on_failure=on_failure)
    stats = e.run(events(20))
    assert [a for _, a, _ in failures] == [1, 2, 3]
    assert failures[0][2] is not None and failures[0][2] >= 0.05  # Retry-After honoured
    assert spooled_during_failures == [10, 10, 10]  # nothing acked before an answer
    assert collector.requests[0] == collector.requests[1] == collector.requests[3]
    assert collector.ids == list(range(10)) * 4 + list(range(10, 20))
    assert (stats.accepted, stats.retries, stats.resent, stats.spooled) == (20, 3, 30, 0)


def test_gives_up_after_max_retries_and_keeps_the_batch(tmp_path: Path) -> None:
    collector = Collector([(503, {})] * 100)
    spool = SqliteSpool(tmp_path / "s.sqlite")
    e = emitter(collector, spool, max_retries=3)
    stats = e.run(events(50))
    assert len(collector.requests) == 4  # the first attempt and 3 retries
    assert stats.error is not None and "gave up after 3 retries" in stats.error
    assert (stats.generated, stats.sent, stats.spooled) == (10, 0, 10)  # stopped generating
    spool.close()

    # The next producer sends the spooled events first, then new ones.
    collector = Collector()
    spool = SqliteSpool(tmp_path / "s.sqlite")
    e = emitter(collector, spool)
    assert e.stats.from_spool == 10
    stats = e.run(events(15, start=100))
    assert collector.ids == list(range(10)) + list(range(100, 115))
    assert (stats.generated, stats.sent, stats.spooled) == (15, 25, 0)
    spool.close()


@pytest.mark.parametrize("status", [401, 403, 415])
def test_fatal_answers_stop_without_retrying(status: int) -> None:
    collector = Collector([(status, {})])
    stats = emitter(collector).run(events(30))
    assert len(collector.requests) == 1
    assert stats.retries == 0 and stats.spooled == 10 and stats.sent == 0
    assert stats.error is not None and str(status) in stats.error


def test_a_batch_too_large_is_split() -> None:
    collector = Collector(max_batch=3)
    stats = emitter(collector, batch_size=10).run(events(20))
    delivered = [e["n"] for batch in collector.requests if len(batch) <= 3 for e in batch]
    assert delivered == list(range(20))  # in order, each once
    assert [len(b) for b in collector.requests[:3]] == [10, 5, 2]
    assert stats.accepted == 20 and stats.spooled == 0 and stats.error is None


def test_stop_from_another_thread_leaves_the_rest_spooled() -> None:
    collector = Collector()
    holder: list[Emitter] = []

    def on_success(result: Any, bodies: list[bytes]) -> None:
        if holder[0].stats.sent >= 30:
            holder[0].stop()

    e = emitter(collector, on_success=on_success)
    holder.append(e)
    stats = e.run(events(1000))
    assert stats.sent == 30 and stats.generated == 30 and stats.spooled == 0
    e2 = emitter(collector, on_success=on_success)
    holder[0] = e2
    e2.stop()
    assert e2.run(events(5)).generated == 0


def test_emit_is_durable_before_any_send(tmp_path: Path) -> None:
    collector = Collector([httpx.ConnectError("down")] * 10)
    spool = SqliteSpool(tmp_path / "s.sqlite")
    e = emitter(collector, spool, max_retries=0)
    e.emit(events(7))
    e.emit([b"\x00raw"])
    assert len(spool) == 8 and collector.requests == []
    assert not e.flush()
    spool.close()
    spool = SqliteSpool(tmp_path / "s.sqlite")
    assert [orjson.loads(b)["n"] for _, b in spool.peek(7)] == list(range(7))
    assert spool.peek(8)[-1][1] == b"\x00raw"
    spool.close()


def test_rate_limiter_spaces_events_evenly() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    times = []
    for _ in range(5):
        limiter.wait()
        times.append(now[0])
    assert times == pytest.approx([100.0, 100.25, 100.5, 100.75, 101.0])
    now[0] += 10  # idle: no credit for a burst afterwards
    limiter.wait()
    start = now[0]
    limiter.wait()
    assert now[0] - start == pytest.approx(0.25)
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_rate_applies_to_the_emitter() -> None:
    collector = Collector()
    began = time.monotonic()
    stats = emitter(collector, rate=200.0, batch_size=5, linger_s=0.01).run(events(40))
    elapsed = time.monotonic() - began
    assert stats.accepted == 40
    assert 39 / 200 <= elapsed < 2.0
