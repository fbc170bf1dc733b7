"""Enricher throughput against a transactional pass-through baseline, measured in one run.

Runs, each over the same raw records (collector format, valid clickstream events), each with
a consumer group and output topics of its own, interleaved over ``--rounds`` rounds:

- baseline: a pass-through: consume a batch of the raw topic, produce every record unchanged,
  ``send_offsets_to_transaction`` and commit, i.e. what exactly-once costs by itself. It
  drives the consumer and the producer of an ``Enricher`` instance, so its client
  configuration (read_committed, idempotent acks=all zstd producer, linger 5 ms, transactional
  id) and its batching (``consume(batch_size=500, batch_wait_s=0.1)``, one transaction per
  batch, the same timeouts) cannot drift from the enricher's. One deliberate difference:
  ``retry.backoff.ms=20`` (see below);
- the same pass-through with the shipped ``retry.backoff.ms`` (librdkafka's 100 ms), which is
  what the old baseline measured;
- the enricher (``streaming.enricher.Enricher``, shipped configuration), enrichment off:
  schema validation, lineage, transactions;
- the enricher with the enrichment API in the loop (``tributary run enrichment-api``, one
  worker, started here), as shipped: pipelined while batches fill up, as they do here (the
  next batch's API call starts on a worker thread before the current batch's transaction
  commits). The target row, which should reach >= 40% of the baseline;
- the same with ``pipeline=False``: one batch strictly after the other (consume, validate,
  API call, transaction);
- the enricher with the API, and the enricher with enrichment off, each with pseudonyms on
  (``PSEUDONYMS``: the client IPs, the user id and its Kafka key, one payload field): what
  decoding, pseudonymising and re-encoding every record costs (the summary gives each as a
  share of the same run with pseudonyms off);
- for information, the enricher, enrichment off, with ``retry.backoff.ms=20``: what the
  shipped enricher loses to the effect below when its batches are quick (with the API in the
  loop its batches take long enough that it hardly ever retries).

Events/s are counted between the first and the last committed transaction of a run (the group
join and the first transaction are left out, the same for every run). The table shows the
median over the rounds, the spread, and per run the transactions, how many of them had to
retry ``AddOffsetsToTxn`` (librdkafka's request counters, from its statistics callback) and
the median duration of the enricher's call to the enrichment API (one per batch; unpipelined,
the enricher waits for all of it; pipelined, the previous batch's transaction commits
meanwhile).

Why the old baseline measured ~5.4k events/s against the enricher's 13-17k: not its client
settings (consumer and producer configuration, batch size and poll pattern matched well
enough; the differences in poll wait and call timeouts change nothing measurable), but
back-to-back transactions. A Kafka transaction coordinator answers ``EndTxn`` once it has
logged PrepareCommit, and only then writes the commit markers and CompleteCommit. Until it has,
the same producer's next ``AddPartitionsToTxn``/``AddOffsetsToTxn`` is refused with
CONCURRENT_TRANSACTIONS and librdkafka retries it after ``retry.backoff.ms``: 100 ms by
default (the Java client waits 20 ms in this case, KAFKA-5477; see also
confluent-kafka-python#967). The enricher spends a few milliseconds of validation and
serialisation between its commit and its next transaction, which often outlasts the
coordinator's window; a pass-through that does nothing starts the next transaction at once
and hits the window on half or more of its batches when a busy machine slows Kafka down,
waiting 100 ms each time for a 500-event batch that otherwise takes ~20 ms: 5-7k events/s.
The baseline therefore retries after 20 ms, so that it pays the coordinator's real delay
rather than librdkafka's timer; every other setting is the enricher's. The retries column
shows the effect, and the last row how much of it the shipped enricher pays too (a product
setting, not changed here).

Everything runs on a Kafka of this run's own (free ports, a temporary state folder, deleted
at the end) so that shared servers are never touched; the enricher runs in this process (a
thread), the enrichment API as a child process. The machine's cores are shared by Kafka, the
API and the enricher, so figures are only comparable within one run.

Runs of 100,000 events by default: the warm baseline passes ~60,000 events/s, so runs of
30,000 lasted half a second and its rate varied twofold between rounds (it measured lower:
an earlier enricher gave 0.33-0.49 with 30,000 events and 0.23-0.29 with 100,000, the same
code on the same day).

Run: ``uv run python benchmarks/bench_enricher.py [--events 100000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import psutil
from confluent_kafka import KafkaException, TopicPartition

import streaming.enricher as enricher_module
from cli.processes import PlatformProcess, child_env
from enrichment.config import EnrichmentSettings
from resources.kafka import make_kafka_admin, make_kafka_producer
from resources.settings import KafkaSettings, TopicNames
from resources.topics import TopicSpec, ensure_topics, platform_topics
from runtime.process import freeze_heap
from simulator.events import ClickstreamSource
from stack.config import StackSettings
from stack.manager import Stack
from stack.private import free_port_pair, private_stack_settings
from streaming.enricher import Enricher, EnricherOptions, EnricherSettings

TARGET_SHARE = 0.40
BASELINE_RETRY_BACKOFF_MS = 20


def say(msg: str = "") -> None:
    print(msg, flush=True)


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    """Ctrl-C (even when started with SIGINT ignored) and SIGTERM unwind through ``finally``.

    So that whatever was started (servers, processes, threads) is stopped on the way out.
    """

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = (
        signal.signal(signal.SIGTERM, _exit),
        signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


@contextlib.contextmanager
def private_stack(
    services: Sequence[str], prefix: str, keep: bool = False
) -> Iterator[tuple[StackSettings, Path]]:
    """Start ``services`` on free ports in a temporary folder; stop them and delete it after.

    Yields the settings and the temporary folder (for logs and other scratch files).
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    settings = private_stack_settings(work / "state")
    stack = Stack(settings)
    ok = False
    try:
        say(f"private servers in {work}: {', '.join(services)}")
        stack.up(list(services), report=lambda m: say(f"  {m}"))
        yield settings, work
        ok = True
    except (KeyboardInterrupt, SystemExit):
        ok = True  # stopped on purpose: nothing to inspect
        raise
    finally:
        # Stop only what this stack started: the services recorded in our own state folder.
        stack.down(list(services), report=lambda m: say(f"  {m}"))
        if keep:
            say(f"kept {work} (logs, server data); delete it when done")
        elif not ok:
            # Keep the logs for the post-mortem, not the servers' data.
            for data in (work / "state").glob("*/data"):
                shutil.rmtree(data, ignore_errors=True)
            say(f"kept the logs in {work}; delete it when done")
        else:
            shutil.rmtree(work, ignore_errors=True)


def drop_topics(kafka: KafkaSettings, names: Sequence[str]) -> None:
    """Delete topics (to keep the private Kafka's disk small); errors are ignored."""
    admin = make_kafka_admin(kafka)
    for future in admin.delete_topics(list(names), operation_timeout=30).values():
        with contextlib.suppress(KafkaException):
            future.result()


def start_enrichment_api(kafka: KafkaSettings, log_dir: Path) -> tuple[PlatformProcess, str]:
    """Start ``tributary run enrichment-api`` on a free port; return it and its URL."""
    port = free_port_pair(set())
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = EnrichmentSettings.model_validate(
        {"kafka": kafka.model_dump(), "enrichment": {"port": port}}
    )
    api = PlatformProcess(
        "enrichment-api",
        child_env(settings, inherit=False),
        log_dir / "enrichment-api.log",
        ready_url=f"http://127.0.0.1:{port}/healthz",
    )
    api.start()
    return api, f"http://127.0.0.1:{port}"


# -- data -----------------------------------------------------------------------------------

COLLECTOR = {
    "received_at": "2026-11-28T10:00:00Z",
    "collector_id": "bench",
    "request_id": "r",
    "producer": "bench",
    "client_ip": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
    "path": "rest",
}


# Pseudonyms as a shop would choose them: the client IP (the collector's and the context's),
# the user id (and the key), and one payload field of the page views.
PSEUDONYMS = {
    "enabled": True,
    "key": "bench-enricher-pseudonym-key",
    "payload_fields": {"com.tributary.shop/page_view": ["/referrer_url"]},
}


def raw_values(n: int, seed: int = 11) -> list[bytes]:
    """Raw-topic records as the collector writes them (valid events only)."""
    source = iter(ClickstreamSource(users=max(1, n // 20), seed=seed))
    out: list[bytes] = []
    while len(out) < n:
        item = next(source)
        if isinstance(item, dict):
            out.append(orjson.dumps({**item, "collector": COLLECTOR}))
    return out


def topic_specs(names: TopicNames, kafka: KafkaSettings, wanted: Sequence[str]) -> list[TopicSpec]:
    """The platform's declarations of the topics ``wanted`` (by name)."""
    return [s for s in platform_topics(names, kafka) if s.name in wanted]


def fill(kafka: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = make_kafka_producer(kafka)
    for i, v in enumerate(values):
        while True:
            try:
                producer.produce(topic, value=v, key=f"user:{i % 97}")
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"could not fill {topic}")


# -- one measured run -----------------------------------------------------------------------


class RequestCounter:
    """librdkafka's per-request-type counters, from the producer's statistics callback."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}

    def on_stats(self, text: str) -> None:
        counts: dict[str, int] = {}
        for broker in json.loads(text).get("brokers", {}).values():
            for name, n in broker.get("req", {}).items():
                counts[name] = counts.get(name, 0) + int(n)
        self.requests = counts


@dataclass
class RunResult:
    rate: float
    transactions: int
    add_offsets_retries: int
    enriched: int
    api_calls: list[float] = field(default_factory=list)  # seconds per enrichment call
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per 1,000 events, by process


@dataclass
class Run:
    name: str
    passthrough: bool = False
    enrichment: bool = False
    retry_backoff_ms: int | None = None
    pipeline: bool = True  # as shipped
    pseudonyms: bool = False  # PSEUDONYMS on
    results: list[RunResult] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.rate for r in self.results)


def passthrough_loop(e: Enricher, on_commit: Callable[[int], None]) -> None:
    """The baseline: the enricher's loop and transaction, minus validation and enrichment."""
    e.producer.init_transactions(30)
    e.consumer.subscribe([e.settings.topics.raw])
    options, topics = e.options, e.settings.topics
    try:
        while not e.stop.is_set():
            messages = [
                m
                for m in e.consumer.consume(options.batch_size, options.batch_wait_s)
                if m.error() is None
            ]
            if not messages:
                continue
            offsets: dict[tuple[str, int], int] = {}
            e.producer.begin_transaction()
            for m in messages:
                e.producer.produce(topics.enriched, value=m.value(), key=m.key() or b"")
                tp = (m.topic() or "", m.partition() or 0)
                offsets[tp] = max(offsets.get(tp, -1), (m.offset() or 0) + 1)
            e.producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                e.consumer.consumer_group_metadata(),
                30,
            )
            e.producer.commit_transaction(60)
            on_commit(len(messages))
    finally:
        e.consumer.close()


def measure(
    run: Run,
    kafka: KafkaSettings,
    raw_topic: str,
    n: int,
    enrichment_url: str | None,
    timeout: float = 600,
    meters: dict[str, psutil.Process] | None = None,
) -> RunResult:
    suffix = uuid.uuid4().hex[:8]
    names = TopicNames(
        raw=raw_topic,
        enriched=f"bench.{suffix}.enriched",
        enriched_dlq=f"bench.{suffix}.enriched.dlq",
    )
    ensure_topics(
        make_kafka_admin(kafka), topic_specs(names, kafka, [names.enriched, names.enriched_dlq])
    )
    options: dict[str, Any] = {
        "group_id": f"bench-{suffix}",
        "transactional_id": f"bench-{suffix}",
        "enrichment_enabled": run.enrichment,
        "pipeline": run.pipeline,
        "metrics_port": 0,
    }
    if enrichment_url:
        options["enrichment_url"] = enrichment_url
    settings = EnricherSettings.model_validate(
        {
            "kafka": kafka.model_dump(),
            "topics": names.model_dump(),
            "enricher": options,
            **({"privacy": {"pseudonyms": PSEUDONYMS}} if run.pseudonyms else {}),
        }
    )
    counter = RequestCounter()
    extra: dict[str, Any] = {"statistics.interval.ms": 500, "stats_cb": counter.on_stats}
    if run.retry_backoff_ms is not None:
        extra["retry.backoff.ms"] = run.retry_backoff_ms

    def producer(kafka: KafkaSettings, **overrides: Any) -> Any:
        # The enricher's own overrides, plus statistics (and the backoff of this run).
        return make_kafka_producer(kafka, **{**overrides, **extra})

    stop = threading.Event()
    with mock.patch.object(enricher_module, "make_kafka_producer", producer):
        e = Enricher(settings, stop)
    commits: list[tuple[float, int]] = []
    consumed = 0

    def on_commit(count: int) -> None:
        nonlocal consumed
        consumed += count
        commits.append((time.perf_counter(), consumed))

    def target() -> None:
        if run.passthrough:
            passthrough_loop(e, on_commit)
        else:
            e.run()

    api_calls: list[float] = []
    if e.client is not None:
        client, enrich = e.client, e.client.enrich

        def timed_enrich(values: Sequence[bytes]) -> tuple[list[bytes], str | None]:
            began = time.perf_counter()
            try:
                return enrich(values)
            finally:
                api_calls.append(time.perf_counter() - began)

        client.enrich = timed_enrich  # type: ignore[method-assign]
    if not run.passthrough:
        original = e._commit

        def timed_commit(messages: list[Any], outcome: Any) -> bool:
            before = e.stats["consumed"]
            committed = original(messages, outcome)
            if e.stats["consumed"] > before:
                on_commit(e.stats["consumed"] - before)
            return committed

        e._commit = timed_commit  # type: ignore[method-assign]
    failure: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:
            failure.append(exc)

    meters = meters or {}
    cpu_before = {name: sum(p.cpu_times()[:2]) for name, p in meters.items()}
    thread = threading.Thread(target=guarded, name=run.name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while consumed < n:
            if failure or not thread.is_alive():
                raise RuntimeError(f"{run.name}: the loop stopped: {failure[:1]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{run.name}: only {consumed} of {n} events in {timeout}s")
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(60)
    cpu_ms = {
        name: 1e6 * (sum(p.cpu_times()[:2]) - cpu_before[name]) / n for name, p in meters.items()
    }
    # One more statistics interval, so that the counters include the last transaction.
    time.sleep(0.6)
    e.producer.poll(0.1)
    enriched = e.stats["enriched"]
    if e.client is not None:
        e.client.close()
    drop_topics(kafka, [names.enriched, names.enriched_dlq])
    if len(commits) < 2:
        raise RuntimeError(f"{run.name}: fewer than two transactions, no rate")
    if e.stats["aborted"] or e.stats["dead"] or e.stats["dropped"]:
        raise RuntimeError(f"{run.name}: unexpected aborts or dead letters: {e.stats}")
    (t0, c0), (t1, c1) = commits[0], commits[-1]
    txns = len(commits)
    retries = counter.requests.get("AddOffsetsToTxn", txns) - txns
    return RunResult((c1 - c0) / (t1 - t0), txns, retries, enriched, api_calls, cpu_ms)


def warm_up(kafka: KafkaSettings, raw_topic: str, n: int, url: str, most: int = 8) -> None:
    """Run the baseline until its rate settles, then the enricher once with the API.

    A fresh Kafka's transactions speed up for a good while (coordinator start-up, then the
    JVM compiling its hot paths): in one run the baseline went 15k, 26k, 30k, 41k, 58k
    events/s over five rounds while the enricher with the API held at ~13k, so the ratio
    measured the broker's warm-up rather than the enricher. Settled: two rounds in a row
    within 10% of each other (at most ``most`` rounds).
    """
    rates: list[float] = []
    while len(rates) < most:
        rates.append(measure(Run("warm-up", passthrough=True), kafka, raw_topic, n, None).rate)
        if len(rates) >= 3 and abs(rates[-1] - rates[-2]) <= 0.1 * max(rates[-2:]):
            break
    say("warm-up, baseline: " + ", ".join(f"{r:,.0f}" for r in rates) + " events/s")
    rate = measure(Run("warm-up", enrichment=True), kafka, raw_topic, n, url).rate
    say(f"warm-up, enricher + enrichment API: {rate:,.0f} events/s")


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Details: the module docstring (benchmarks/bench_enricher.py).",
    )
    parser.add_argument("--events", type=int, default=100_000, help="Events per run.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of all runs (median).")
    parser.add_argument(
        "--partitions",
        type=int,
        default=KafkaSettings().partitions,
        help="Partitions of the raw and enriched topics (the platform's).",
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temporary folder (logs, Kafka data)."
    )
    args = parser.parse_args()
    if args.events < 2 * EnricherOptions().batch_size or args.rounds < 1:
        parser.error("--events must be >= 1000 and --rounds >= 1")

    runs = [
        Run(
            f"pass-through, retry.backoff.ms={BASELINE_RETRY_BACKOFF_MS} (baseline)",
            passthrough=True,
            retry_backoff_ms=BASELINE_RETRY_BACKOFF_MS,
        ),
        Run("pass-through, shipped client config", passthrough=True),
        Run("enricher, enrichment off", enrichment=False),
        Run("enricher + enrichment API", enrichment=True),
        Run("enricher + enrichment API, pipeline off", enrichment=True, pipeline=False),
        Run("enricher + enrichment API, pseudonyms on", enrichment=True, pseudonyms=True),
        Run("enricher, enrichment off, pseudonyms on", enrichment=False, pseudonyms=True),
        Run(
            f"enricher, off, retry.backoff.ms={BASELINE_RETRY_BACKOFF_MS} (info)",
            enrichment=False,
            retry_backoff_ms=BASELINE_RETRY_BACKOFF_MS,
        ),
    ]
    baseline, target_run = runs[0], runs[3]
    with (
        stoppable(),
        private_stack(["kafka"], "tributary-bench-enricher-", args.keep) as (
            stack_settings,
            work,
        ),
    ):
        kafka = stack_settings.kafka.model_copy(update={"partitions": args.partitions})
        api, url = start_enrichment_api(kafka, work / "logs")
        try:
            say(f"enrichment API: {url} (pid {api.pid}, 1 worker)")
            kafka_pid = Stack(stack_settings).status(["kafka"])[0].pid
            assert kafka_pid is not None and api.pid is not None
            # CPU time per run: Kafka, the API, and this process (the loop and its clients).
            meters = {
                "kafka": psutil.Process(kafka_pid),
                "api": psutil.Process(api.pid),
                "loop": psutil.Process(),
            }
            raw = TopicNames(raw=f"bench.{uuid.uuid4().hex[:8]}.raw")
            ensure_topics(make_kafka_admin(kafka), topic_specs(raw, kafka, [raw.raw]))
            values = raw_values(args.events)
            say(
                f"raw topic {raw.raw}: {args.events} records, {args.partitions} partitions, "
                f"mean {sum(map(len, values)) / len(values):.0f} bytes"
            )
            fill(kafka, raw.raw, values)
            # As ``tributary run`` does for its workers (the enricher runs in this process).
            freeze_heap()
            warm_up(kafka, raw.raw, args.events, url)
            for r in range(args.rounds):
                say(f"round {r + 1}/{args.rounds}")
                for run in runs:
                    result = measure(run, kafka, raw.raw, args.events, url, meters=meters)
                    run.results.append(result)
                    say(
                        f"  {run.name:<46} {result.rate:>8,.0f} events/s, "
                        f"{result.transactions} txns, {result.add_offsets_retries} retried"
                    )
        finally:
            api.stop()
    base = baseline.median
    say()
    say(
        f"== enricher throughput: {args.events:,} events per run, {args.rounds} round(s), "
        f"{args.partitions} partitions, batches of {EnricherOptions().batch_size}; medians"
    )
    say(
        f"machine: {os.cpu_count()} cores shared by Kafka, the enrichment API, this process "
        "(enricher thread) and anything else running; figures compare within this run only"
    )
    say(
        f"  {'run':<52}{'events/s':>10}{'min-max':>18}{'ratio':>8}"
        f"{'txns':>7}{'AddOffsets retries':>20}{'API ms/batch':>14}"
        f"{'CPU ms per 1k events: kafka/api/loop':>40}"
    )
    for run in runs:
        rates = [x.rate for x in run.results]
        txns = sum(x.transactions for x in run.results)
        retried = sum(x.add_offsets_retries for x in run.results)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        calls = [c for x in run.results for c in x.api_calls]
        api_ms = f"{1000 * statistics.median(calls):.0f}" if calls else "-"
        cpu = "/".join(
            f"{statistics.median(x.cpu_ms[name] for x in run.results):.0f}"
            for name in ("kafka", "api", "loop")
        )
        say(
            f"  {run.name:<52}{run.median:>10,.0f}{spread:>18}{run.median / base:>8.2f}"
            f"{txns:>7}{retried:>20}{api_ms:>14}{cpu:>40}"
        )
    for on, off in ((runs[5], runs[3]), (runs[6], runs[2])):
        say(f"pseudonyms: {on.name}: {on.median / off.median:.2f} of the same with them off")
    share = target_run.median / base
    verdict = "ok" if share >= TARGET_SHARE else "MISS"
    say(
        f"target: enricher with enrichment >= {TARGET_SHARE:.0%} of the baseline: "
        f"{share:.0%} {verdict}"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted: everything this run started has been stopped")
        sys.exit(130)
