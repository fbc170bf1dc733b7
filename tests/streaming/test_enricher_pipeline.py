"""The enricher's pipelined loop on an in-memory Kafka: ordering, aborts, revocations, retries.

The fake consumer and producer keep a log per partition, committed offsets and committed
outputs, and check at every commit that the transaction holds exactly the records between the
previous committed offsets and the new ones: one batch, nothing skipped, nothing twice. They
also check that they are only ever used from the loop's thread; the fake enrichment client
records which thread made each call.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import streaming.enricher as enricher_module
from streaming.enricher import Enricher, EnricherSettings, EnrichmentUnavailable
from tests.streaming.enricher_helpers import TOPIC, FakeMessage, raw_records

pytestmark = pytest.mark.unit


class FakeKafka:
    """One topic's log, the group's committed offsets and the committed outputs."""

    def __init__(self, values: list[bytes], partitions: int = 3) -> None:
        self.log: dict[int, list[FakeMessage]] = {p: [] for p in range(partitions)}
        for i, value in enumerate(values):
            p = i * partitions // len(values)  # contiguous runs: batches span partitions
            self.log[p].append(FakeMessage(p, len(self.log[p]), value))
        self.committed = {p: 0 for p in self.log}
        self.outputs: list[dict[str, Any]] = []  # enriched records and dead letters
        self.transactions = 0
        self.loop_thread: int | None = None

    def on_loop_thread(self) -> None:
        if self.loop_thread is None:
            self.loop_thread = threading.get_ident()
        assert threading.get_ident() == self.loop_thread, "Kafka client used off the loop"

    def done(self) -> bool:
        return all(self.committed[p] == len(msgs) for p, msgs in self.log.items())


class FakeConsumer:
    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka
        self.position: dict[int, int] = {}
        self.paused: set[int] = set()
        self.on_revoke: Callable[[Any, list[TopicPartition]], None] | None = None
        self.consumes = 0
        self.polls = 0
        self.seeks: list[tuple[int, int]] = []
        self.calls: list[str] = []  # "consume" and "poll", in order
        # Tests set these to rebalance inside the n-th consume() or poll() call.
        self.rebalance_on_consume: set[int] = set()
        self.rebalance_on_poll: set[int] = set()
        self.buffered = 10**9  # most messages one consume() returns: a stream's rate
        self.waits: list[float] = []  # each consume()'s timeout

    def subscribe(
        self,
        topics: list[str],
        on_assign: Any = None,
        on_revoke: Any = None,
        on_lost: Any = None,
    ) -> None:
        self.kafka.on_loop_thread()
        self.on_revoke = on_revoke
        self.position = dict(self.kafka.committed)

    def rebalance(self) -> None:
        """An eager rebalance that gives this member its partitions back."""
        assert self.on_revoke is not None
        self.on_revoke(self, [TopicPartition(TOPIC, p) for p in self.position])
        self.paused.clear()
        self.position = dict(self.kafka.committed)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        self.kafka.on_loop_thread()
        self.calls.append("consume")
        self.consumes += 1
        self.waits.append(timeout)
        if self.consumes in self.rebalance_on_consume:
            self.rebalance()
        out = self._fetch(min(num_messages, self.buffered))
        if not out:
            time.sleep(0.01)
        return out

    def poll(self, timeout: float) -> FakeMessage | None:
        """While paused, nothing; right after a rebalance, a newly assigned partition's first."""
        self.kafka.on_loop_thread()
        self.calls.append("poll")
        self.polls += 1
        if self.polls in self.rebalance_on_poll:
            self.rebalance()
        out = self._fetch(1)
        if not out:
            time.sleep(min(timeout, 0.01))
        return out[0] if out else None

    def _fetch(self, num_messages: int) -> list[FakeMessage]:
        out: list[FakeMessage] = []
        for p, msgs in self.kafka.log.items():
            if p in self.paused:
                continue
            take = msgs[self.position[p] : self.position[p] + num_messages - len(out)]
            out += take
            self.position[p] += len(take)
        return out

    def seek(self, tp: TopicPartition) -> None:
        self.kafka.on_loop_thread()
        self.seeks.append((tp.partition, tp.offset))
        self.position[tp.partition] = tp.offset

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.position]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.kafka.on_loop_thread()
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.kafka.on_loop_thread()
        self.paused -= {tp.partition for tp in partitions}

    def consumer_group_metadata(self) -> object:
        return object()

    def close(self) -> None:
        self.kafka.on_loop_thread()


class FakeProducer:
    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka
        self.pending: list[dict[str, Any]] = []
        self.offsets: dict[int, int] = {}
        self.abort_transactions: set[int] = set()  # 1-based transactions to abort
        self.on_commit: Callable[[int], None] = lambda n: None
        self.begun = 0

    def init_transactions(self, timeout: float) -> None:
        self.kafka.on_loop_thread()

    def begin_transaction(self) -> None:
        self.kafka.on_loop_thread()
        self.begun += 1
        self.pending, self.offsets = [], {}

    def produce(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.kafka.on_loop_thread()
        self.pending.append(orjson.loads(value))

    def send_offsets_to_transaction(
        self, offsets: list[TopicPartition], metadata: object, timeout: float
    ) -> None:
        self.kafka.on_loop_thread()
        self.offsets = {tp.partition: tp.offset for tp in offsets}

    def commit_transaction(self, timeout: float) -> None:
        self.kafka.on_loop_thread()
        if self.begun in self.abort_transactions:
            raise KafkaException(KafkaError(KafkaError._STATE, "test", txn_requires_abort=True))
        self.on_commit(self.kafka.transactions + 1)
        # Exactly the records between the committed offsets and the new ones, each once.
        sources = Counter(source_of(r) for r in self.pending)
        expected = {
            (p, o) for p, end in self.offsets.items() for o in range(self.kafka.committed[p], end)
        }
        assert set(sources) == expected and max(sources.values()) == 1
        self.kafka.committed.update(self.offsets)
        self.kafka.outputs += self.pending
        self.kafka.transactions += 1

    def abort_transaction(self, timeout: float) -> None:
        self.kafka.on_loop_thread()
        self.pending, self.offsets = [], {}


def source_of(record: dict[str, Any]) -> tuple[int, int]:
    """(partition, offset) of the raw record an output came from."""
    where = record.get("lineage") or record["metadata"]
    return where["source_partition"], where["source_offset"]


class FakeClient:
    """The enrichment API: records each call's thread; ``failures`` calls fail first."""

    def __init__(self, failures: int = 0, fail_from_call: int = 1) -> None:
        self.calls: list[tuple[int, str]] = []  # (thread, first event_id)
        self.failures = failures
        self.fail_from_call = fail_from_call
        self.lock = threading.Lock()

    def enrich(self, values: list[bytes]) -> tuple[list[bytes], str]:
        with self.lock:
            self.calls.append((threading.get_ident(), orjson.loads(values[0])["event_id"]))
            call = len(self.calls)
        time.sleep(0.002)
        if call >= self.fail_from_call and self.failures > 0:
            self.failures -= 1
            raise EnrichmentUnavailable("test outage")
        return [orjson.dumps({"call": call})] * len(values), "test-model"

    def close(self) -> None:
        pass


class Rig:
    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, kafka: FakeKafka, client: FakeClient, **options: Any
    ) -> None:
        self.kafka = kafka
        self.consumer = FakeConsumer(kafka)
        self.producer = FakeProducer(kafka)
        monkeypatch.setattr(enricher_module, "make_kafka_consumer", lambda *a, **k: self.consumer)
        monkeypatch.setattr(enricher_module, "make_kafka_producer", lambda *a, **k: self.producer)
        settings = EnricherSettings.model_validate(
            {
                "topics": {"raw": TOPIC},
                "enricher": {
                    "batch_size": 100,
                    "retry": {"initial_s": 0.01, "max_s": 0.05},
                    "metrics_port": 0,
                    "pipeline": True,  # what these tests are about; not the default
                    **options,
                },
            }
        )
        self.stop = threading.Event()
        self.enricher = Enricher(settings, self.stop)
        self.enricher.client = client  # type: ignore[assignment]
        self.client = client

    def run(self, until: Callable[[], bool] | None = None, timeout: float = 30) -> None:
        failures: list[BaseException] = []

        def loop() -> None:
            try:
                self.enricher.run()
            except BaseException as exc:
                failures.append(exc)

        self.kafka.loop_thread = None
        thread = threading.Thread(target=loop)
        thread.start()
        try:
            deadline = time.monotonic() + timeout
            while not (until or self.kafka.done)() and not failures:
                assert time.monotonic() < deadline, "the loop did not finish"
                time.sleep(0.005)
        finally:
            self.stop.set()
            thread.join(10)
        assert not thread.is_alive()
        if failures:
            raise failures[0]


@pytest.fixture()
def events() -> Iterator[tuple[list[bytes], set[str], int]]:
    values, valid_ids, expected = raw_records(1000, bad_share=0.1)
    yield values, valid_ids, sum(expected.values())


def assert_exactly_once(kafka: FakeKafka, valid_ids: set[str], dead: int) -> None:
    assert kafka.done()
    enriched = [r["event_id"] for r in kafka.outputs if "lineage" in r]
    assert Counter(enriched) == Counter(valid_ids)
    assert len(kafka.outputs) - len(enriched) == dead


@pytest.mark.parametrize("pipeline", [True, False])
def test_the_next_call_overlaps_the_commit_and_each_transaction_holds_one_batch(
    monkeypatch: pytest.MonkeyPatch,
    events: tuple[list[bytes], set[str], int],
    pipeline: bool,
) -> None:
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    rig = Rig(monkeypatch, kafka, FakeClient(), pipeline=pipeline)
    calls_at_commit: list[int] = []

    def on_commit(n: int) -> None:
        # Pipelined, the call of batch n+1 has started while transaction n commits.
        deadline = time.monotonic() + (2 if pipeline and n < 10 else 0)
        while len(rig.client.calls) < n + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        calls_at_commit.append(len(rig.client.calls))

    rig.producer.on_commit = on_commit
    rig.run()

    assert_exactly_once(kafka, valid_ids, dead)
    assert kafka.transactions == 10  # 1,000 events in batches of 100
    if pipeline:
        assert calls_at_commit[:-1] == list(range(2, 11))
        # The first fetch waits; each one overlapping a commit takes what is buffered.
        assert rig.consumer.waits[:10] == [0.1] + [0] * 9
    else:
        assert calls_at_commit == list(range(1, 11))
        assert set(rig.consumer.waits) == {0.1}
    threads = {thread for thread, _ in rig.client.calls}
    assert kafka.loop_thread not in threads  # first attempts run on the worker
    assert not rig.consumer.seeks and rig.enricher.stats["aborted"] == 0


def test_batches_that_do_not_fill_up_are_committed_before_the_next_fetch(
    monkeypatch: pytest.MonkeyPatch, events: tuple[list[bytes], set[str], int]
) -> None:
    """Below the rate that fills batches, pipelining would hold each commit back for a fetch."""
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    rig = Rig(monkeypatch, kafka, FakeClient())  # pipelined
    rig.consumer.buffered = 60  # of batches of 100
    consumes_at_commit: list[int] = []
    rig.producer.on_commit = lambda n: consumes_at_commit.append(rig.consumer.consumes)
    rig.run()

    assert_exactly_once(kafka, valid_ids, dead)
    # The n-th transaction commits the n-th consume, before the (n+1)-th.
    assert consumes_at_commit == list(range(1, kafka.transactions + 1))
    assert set(rig.consumer.waits) == {0.1}  # batch_wait_s


def test_an_aborted_transaction_rewinds_and_redoes_the_next_batch_too(
    monkeypatch: pytest.MonkeyPatch, events: tuple[list[bytes], set[str], int]
) -> None:
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    rig = Rig(monkeypatch, kafka, FakeClient())
    # Batch 3 holds partition 0 only; batch 4, fetched before 3 commits, starts partition 1.
    assert len(kafka.log[0]) == 334
    rig.producer.abort_transactions = {3}
    rig.run()

    assert_exactly_once(kafka, valid_ids, dead)
    assert rig.enricher.stats["aborted"] == 1
    assert sorted(rig.consumer.seeks) == [(0, 200), (1, 0)]


def test_a_revocation_while_the_next_batch_is_fetched_drops_the_batch_in_hand(
    monkeypatch: pytest.MonkeyPatch, events: tuple[list[bytes], set[str], int]
) -> None:
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    rig = Rig(monkeypatch, kafka, FakeClient())
    rig.consumer.rebalance_on_consume = {3}  # batch 2 in hand, batch 3 being fetched
    rig.run()

    assert_exactly_once(kafka, valid_ids, dead)
    assert rig.enricher.stats["dropped"] == 100
    assert not rig.consumer.seeks  # the new assignment starts at the committed offsets


def test_a_failed_first_call_is_retried_on_the_loop_with_back_pressure(
    monkeypatch: pytest.MonkeyPatch, events: tuple[list[bytes], set[str], int]
) -> None:
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    rig = Rig(monkeypatch, kafka, FakeClient(failures=3, fail_from_call=3))
    rig.run()

    assert_exactly_once(kafka, valid_ids, dead)  # nothing dead-lettered for the outage
    failed_first, *retries = rig.client.calls[2:6]
    assert failed_first[0] != kafka.loop_thread
    assert [thread for thread, _ in retries] == [kafka.loop_thread] * 3
    assert len({event_id for _, event_id in rig.client.calls[2:6]}) == 1  # the same batch
    assert rig.consumer.polls > 0 and not rig.consumer.paused


def test_a_revocation_during_back_pressure_drops_the_waiting_batch(
    monkeypatch: pytest.MonkeyPatch, events: tuple[list[bytes], set[str], int]
) -> None:
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    rig = Rig(monkeypatch, kafka, FakeClient(failures=20, fail_from_call=3))
    rig.consumer.rebalance_on_poll = {2}  # which also returns a message: handed back
    rig.run()

    assert_exactly_once(kafka, valid_ids, dead)
    assert rig.enricher.stats["dropped"] == 100
    assert rig.consumer.seeks == [(0, 200)]
    # It stops waiting at once: the next call fetches the batch again.
    assert rig.consumer.calls[rig.consumer.calls.index("poll") + 2] == "consume"


def test_stopping_commits_the_batch_in_hand_and_leaves_the_next_to_the_group(
    monkeypatch: pytest.MonkeyPatch, events: tuple[list[bytes], set[str], int]
) -> None:
    values, valid_ids, dead = events
    kafka = FakeKafka(values)
    first = Rig(monkeypatch, kafka, FakeClient())
    first.run(until=lambda: kafka.transactions >= 3)
    assert 3 <= kafka.transactions < 10

    second = Rig(monkeypatch, kafka, FakeClient())  # a restart: from the committed offsets
    second.run()
    assert_exactly_once(kafka, valid_ids, dead)
