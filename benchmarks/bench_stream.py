"""The stream end to end: latency to search, batch-loader throughput, worker memory; one run.

Everything runs on servers of this run's own (Kafka, SeaweedFS, OpenSearch on free ports, state
in a temporary folder deleted at the end) and the five stream processes started by
``cli.processes.Pipeline`` exactly as a user starts them (``tributary run <name>``): the
enrichment API, the enricher, the real-time loader, the batch loader and the collector (2
workers), with product defaults except ports and a fresh API key. Before a load, one batch is
sent and awaited in OpenSearch ("priming": a fresh Kafka creates its internal topics and the
consumers join their groups on first use, which is start-up, not latency). Before the latency
load, the same load runs ``--settle-seconds`` (default 60) unmeasured and the pipeline drains
it: fresh JVMs fell behind by up to 30 s of events during their first 30 s of load, which a
measured window starting then would count as latency. Phases
(``--phases``):

latency
    A fixed load over HTTP: ``--rate`` events/s (default 2,000) as POSTs of ``--batch``
    events (default 20, i.e. one request every 10 ms), on a fixed timetable (open loop: a
    slow answer does not delay the next request; requests wait for one of 32 keep-alive
    connections of a minimal HTTP/1.1 client, and the wait is reported as "sender late"),
    ``--warmup-seconds`` (default 30; the real-time loader's lag when it ended is printed) not
    counted, then
    ``--latency-seconds`` (default 60) measured. Events are valid clickstream events with
    fresh ids. One event per request (rotating position) is followed: its latency runs from
    the moment its request was answered 202 to the first search that returns it. A poller
    sends every ``--poll-ms`` (default 50) one ``ids`` query for the 250 oldest followed
    events not yet seen (documents become searchable roughly in that order; a short list
    keeps the poller cheap when the pipeline falls behind), so a latency is late by at most
    the poll period plus the search's round trip (both reported, with the searches' cost in
    OpenSearch). Where the time goes, per followed event, from the document's own time
    stamps (same machine, same clock): 202 -> ``lineage.enriched_at`` (stamped by the
    enricher before its transaction commits) -> ``loader.indexed_at`` (stamped by the
    real-time loader before its bulk request) -> searchable. Baselines, by the same poller,
    alone for ``--quiet-seconds`` (default 10) before the load ("idle") and during the
    measured load:
    (a) OpenSearch alone: a small document indexed directly every 100 ms into an index with
    the events indices' shard count and refresh interval, from the index call's answer to
    searchable (the refresh-interval floor of any path through OpenSearch);
    (b) one Kafka hop: a record produced every 100 ms (the collector's producer settings) to
    a topic of its own, from ``produce()`` to a read_committed consumer's ``poll()``.
    Also printed: the events indices' ``refresh_interval``, CPU per process (servers,
    workers, this load generator, the rest of the machine) and OpenSearch's indexing,
    refresh and merge times over the measured load, and whether the pipeline kept up (the
    real-time loader's lag when the load ended). The events indices set their refresh
    interval explicitly, so they refresh whether or not anyone searches (left unset, a shard
    nobody searched for 30 s stops refreshing: ``index.search.idle.after``). Target: p99 < 2 s.
batch
    The batch loader (``streaming.batch_loader.run`` in a thread of this process, its own
    consumer group and lake prefix, product defaults) loads every record of the enriched
    topic (what the latency phase left there, topped up to ``--batch-events`` through the
    pipeline if fewer) into Parquet in SeaweedFS; events/s from its first record to the end
    of its final flush (a stop flushes every buffer). Baseline: a plain consumer, configured
    as the loader's and polling one record at a time as it does, reading the same records;
    run before and after the loader (their mean is the baseline). Parquet bytes per event
    (data objects only) against the JSON record in Kafka and Kafka's own zstd log on disk.
    The pipeline is stopped during this phase, so only the two readers (and the servers)
    use the cores.
memory
    The pipeline is restarted, then a fixed load of ``--memory-rate`` events/s (default
    1,000, which this shared machine carries: at a rate the pipeline cannot carry, the
    lagging consumers fill their fetch queues and memory reflects the backlog) runs for
    ``--memory-seconds`` (default 600) while every ``--sample-seconds`` (default 5) the
    VmRSS and VmHWM of each process and its descendants (the collector's uvicorn workers)
    are read from /proc/<pid>/status. Per process: mean RSS over the first and the last
    minute (a third of the run when shorter than three minutes), the slope of a
    least-squares line through the samples after the first window (MiB/min), the largest
    sampled RSS and the sum of the processes' VmHWM (an upper bound of their peak together).
    The batch loader's buffers fill for up to a minute before a flush (its
    ``flush_max_age_s``), so its curve is a saw-tooth: judge it over the 10 minutes. Latency
    p50/p99 per minute and the real-time loader's lag when the load ended show whether the
    load was really carried.

The machine's (2) cores are shared by the servers, the five processes, this load generator
and anything else running: figures compare within one run only.

Run: ``uv run python benchmarks/bench_stream.py [--phases latency,batch,memory]
[--latency-seconds 60] [--memory-seconds 600]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from bench_enricher import (
    fill,
    private_stack,
    raw_values,
    say,
    stoppable,
    topic_specs,
)
from confluent_kafka import OFFSET_END, TopicPartition

from cli.processes import Pipeline, PipelineSettings
from ingestion.core.auth import new_key
from ingestion.core.config import ApiKey, CollectorOptions
from resources.kafka import end_offsets, make_kafka_admin, make_kafka_consumer, make_kafka_producer
from resources.s3 import make_s3_client
from resources.settings import KafkaSettings, TopicNames
from resources.topics import ensure_topics
from simulator.events import ClickstreamSource
from stack.config import StackSettings
from stack.manager import Stack
from stack.private import free_port_pair
from streaming import batch_loader
from streaming.batch_loader import BatchLoaderSettings, LoaderStats

PHASES = ("latency", "batch", "memory")
TARGET_P99_S = 2.0
SOURCE_FIELDS = ["lineage.enriched_at", "loader.indexed_at"]
STAGES = ("2xx -> enriched_at", "enriched_at -> indexed_at", "indexed_at -> searchable")
MIB = 1024 * 1024
POLL_IDS = 250  # most followed events asked for in one search (the oldest)
CONNECTIONS = 32  # keep-alive connections to the collector (requests wait for a free one)


# -- figures --------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{1000 * seconds:,.0f} ms"  # NaN: no samples


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute; NaN with < 2 points."""
    if len(points) < 2:
        return float("nan")
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return float("nan")
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


# -- the pipeline ---------------------------------------------------------------------------


def pipeline_settings(stack: StackSettings, key_hash: str) -> PipelineSettings:
    """The stream's settings on the private servers: product defaults, free ports, our key."""
    used: set[int] = set()
    collector = CollectorOptions(
        port=free_port_pair(used),
        grpc_port=free_port_pair(used),
        api_keys=[ApiKey(producer="bench", sha256=key_hash)],
    )
    return PipelineSettings.model_validate(
        {
            "kafka": stack.kafka,
            "s3": stack.s3,
            "opensearch": stack.opensearch,
            "collector": collector,
            "enrichment": {"port": free_port_pair(used)},
        }
    )


def check_alive(pipeline: Pipeline) -> None:
    dead = [p for p in pipeline if not p.running()]
    if dead:
        p = dead[0]
        raise RuntimeError(f"{p.name} exited; last lines of {p.log}:\n{p.log_tail(2000)}")


def committed(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    consumer = make_kafka_consumer(kafka, group, **{"enable.auto.commit": False})
    try:
        ends = end_offsets(consumer, topic)
        tps = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in tps}
    finally:
        consumer.close()


def lag(kafka: KafkaSettings, group: str, topic: str) -> int:
    """Records (and transaction markers) between a group's committed offsets and the end."""
    consumer = make_kafka_consumer(kafka, f"bench-lag-{uuid.uuid4().hex}")
    try:
        ends = end_offsets(consumer, topic)
    finally:
        consumer.close()
    done = committed(kafka, group, topic)
    return sum(max(0, end - done.get(p, 0)) for p, end in ends.items())


# -- load: fixed-rate HTTP sender, search poller, probes, memory sampler -------------------


class EventPool:
    """Valid clickstream events, re-sent with fresh ids (every event is a new document)."""

    def __init__(self, size: int, seed: int = 5) -> None:
        source = iter(ClickstreamSource(users=max(1, size // 10), seed=seed))
        self.events = [e for e in itertools.islice(source, size) if isinstance(e, dict)]

    def body(self, k: int, batch: int) -> tuple[bytes, str]:
        """Request ``k``'s body and the id of its followed event."""
        start = (k * batch) % (len(self.events) - batch)
        events = [{**e, "event_id": str(uuid.uuid4())} for e in self.events[start : start + batch]]
        return orjson.dumps(events), events[k % batch]["event_id"]


@dataclass
class Followed:
    ok: float  # perf_counter() at the 2xx (or the index call's answer)
    wall: float  # time.time() at the same moment
    at: float  # seconds into the measured load
    probe: bool = False


@dataclass
class MemSample:
    at: float
    rss: int  # bytes, the process and its descendants
    hwm: int  # bytes, sum of VmHWM
    procs: int


def read_memory(pid: int) -> tuple[int, int, int]:
    """VmRSS and VmHWM (bytes) of ``pid`` and its descendants, and how many processes."""
    try:
        procs = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    rss = hwm = count = 0
    for p in procs:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if "VmRSS" not in fields:  # a zombie
            continue
        rss += int(fields["VmRSS"].split()[0]) * 1024
        hwm += int(fields.get("VmHWM", "0 kB").split()[0]) * 1024
        count += 1
    return rss, hwm, count


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (0 when gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


class CpuMeter:
    """CPU seconds used by named process trees (and the whole machine) between two points."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {name: tree_cpu(pid) for name, pid in pids.items()}
        self.before["load generator (this)"] = self._self()
        self.machine = self._machine()
        self.began = time.perf_counter()

    @staticmethod
    def _self() -> float:
        """This process alone (its children are the servers and the pipeline)."""
        t = psutil.Process().cpu_times()
        return float(t.user + t.system)

    @staticmethod
    def _machine() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def line(self) -> str:
        wall = time.perf_counter() - self.began
        used = {n: tree_cpu(pid) - self.before[n] for n, pid in self.pids.items()}
        used["load generator (this)"] = self._self() - self.before["load generator (this)"]
        machine = self._machine() - self.machine
        parts = [f"{n} {100 * v / wall:.0f}%" for n, v in used.items()]
        other = machine - sum(used.values())
        return (
            f"CPU, % of one core over {wall:.0f}s: {', '.join(parts)}, everything else "
            f"{100 * max(other, 0) / wall:.0f}%; machine busy {100 * machine / wall:.0f}% "
            f"of {100 * (os.cpu_count() or 1)}%"
        )


def opensearch_work(url: str) -> dict[str, float]:
    """Cumulative indexing, refresh, merge and young-GC figures of the (single) node."""
    node = next(
        iter(httpx.get(f"{url}/_nodes/stats/indices,jvm", timeout=30).json()["nodes"].values())
    )
    indices = node["indices"]
    return {
        "docs": indices["indexing"]["index_total"],
        "index_ms": indices["indexing"]["index_time_in_millis"],
        "refreshes": indices["refresh"]["total"],
        "refresh_ms": indices["refresh"]["total_time_in_millis"],
        "merge_ms": indices["merges"]["total_time_in_millis"],
        "gc_ms": node["jvm"]["gc"]["collectors"]["young"]["collection_time_in_millis"],
        "queries": indices["search"]["query_total"],
        "query_ms": indices["search"]["query_time_in_millis"]
        + indices["search"]["fetch_time_in_millis"],
    }


def measured_pids(pipeline: Pipeline, stack: StackSettings) -> dict[str, int]:
    """The processes whose CPU is reported: the servers, the pipeline, this load generator."""
    pids = {s.name: s.pid for s in Stack(stack).status() if s.pid is not None}
    pids.update({p.name: p.pid for p in pipeline if p.pid is not None})
    return pids


@dataclass
class LoadResult:
    seconds: float
    requests: int = 0
    accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lateness: list[float] = field(default_factory=list)
    answer: list[float] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    probe_search: list[tuple[float, float]] = field(default_factory=list)  # (at, latency)
    probe_kafka: list[tuple[float, float]] = field(default_factory=list)
    search_rtt: list[float] = field(default_factory=list)
    unseen: int = 0
    memory: dict[str, list[MemSample]] = field(default_factory=dict)
    cpu: str = ""
    opensearch: str = ""
    loader_lag: int = -1  # real-time loader's lag when the load ended
    warm_lag: int = -1  # ... and when the warm-up ended (a backlog then is measured as latency)
    drain: float = 0.0  # seconds from the load's end until every followed event was seen

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.latencies]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response (with a content-length): its status, and "closing?"."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, close = 0, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not supported")
    await reader.readexactly(length)
    return status, close


def _iso(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value).timestamp()
    return None


class KafkaProbe(threading.Thread):
    """A record every 100 ms to a topic of its own; latency from produce() to poll()."""

    def __init__(self, kafka: KafkaSettings, topic: str, linger_ms: int) -> None:
        super().__init__(name="kafka-probe", daemon=True)
        self.kafka, self.topic, self.linger_ms = kafka, topic, linger_ms
        self.latencies: list[tuple[float, float]] = []  # (perf_counter, latency)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        producer = make_kafka_producer(self.kafka, **{"linger.ms": self.linger_ms})
        consumer = make_kafka_consumer(
            self.kafka, f"bench-probe-{uuid.uuid4().hex}", **{"enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_END)])
        try:
            due = time.perf_counter()
            while not self.stop.is_set():
                now = time.perf_counter()
                if now >= due:
                    producer.produce(self.topic, value=repr(now).encode())
                    due += 0.1
                producer.poll(0)
                msg = consumer.poll(max(0.0, min(0.01, due - time.perf_counter())))
                if msg is not None and msg.error() is None:
                    now = time.perf_counter()
                    self.latencies.append((now, now - float(msg.value() or b"0")))
        finally:
            consumer.close()
            producer.flush(5)


class Load:
    """Fixed-rate POSTs to the collector; follows events (and probes) until searchable."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        key: str,
        pool: EventPool,
        rate: float,
        batch: int,
        seconds: float,
        warmup: float,
        poll_s: float,
        quiet: float = 0,
        drain_s: float = 60,
        probe_index: str | None = None,
        sample_s: float | None = None,
        progress_s: float = 30,
        cpu_pids: dict[str, int] | None = None,
    ) -> None:
        self.pipeline, self.key, self.pool = pipeline, key, pool
        self.rate, self.batch, self.seconds, self.warmup = rate, batch, seconds, warmup
        self.quiet = quiet  # probes only, before the load
        self.poll_s, self.drain_s, self.probe_index = poll_s, drain_s, probe_index
        self.sample_s, self.progress_s = sample_s, progress_s
        self.cpu_pids = cpu_pids or {}
        settings = pipeline.settings
        self.indices = f"{settings.search.index_prefix}-events-*"
        if probe_index:
            self.indices += f",{probe_index}"
        self.os_url = settings.search.opensearch.url
        self.result = LoadResult(seconds)
        self.pending: dict[str, Followed] = {}  # followed events, in 2xx order
        self.probes: dict[str, Followed] = {}  # the OpenSearch baseline's documents
        self.sending = True
        self.t0 = 0.0  # start of the measured part (after the warm-up)

    def since(self) -> float:
        return time.perf_counter() - self.t0

    async def run(self) -> LoadResult:
        async with httpx.AsyncClient(base_url=self.os_url, timeout=30) as search:
            self.t0 = time.perf_counter() + self.quiet + self.warmup
            tasks = [asyncio.create_task(self._poller(search))]
            if self.probe_index:
                tasks.append(asyncio.create_task(self._search_probe(search)))
            if self.sample_s:
                tasks.append(asyncio.create_task(self._sampler()))
            tasks.append(asyncio.create_task(self._progress()))
            tasks.append(asyncio.create_task(self._cpu()))
            tasks.append(asyncio.create_task(self._lag_when_warm()))
            try:
                await asyncio.sleep(self.quiet)
                await self._sender()
            finally:
                self.sending = False
            ended = time.perf_counter()
            settings = self.pipeline.settings
            self.result.loader_lag = await asyncio.to_thread(
                lag, settings.kafka, settings.realtime_loader.group_id, settings.topics.enriched
            )
            await asyncio.gather(*tasks)
            self.result.drain = time.perf_counter() - ended
        self.result.unseen = len(self.pending)
        return self.result

    async def _lag_when_warm(self) -> None:
        await asyncio.sleep(max(0.0, self.t0 - time.perf_counter()))
        settings = self.pipeline.settings
        self.result.warm_lag = await asyncio.to_thread(
            lag, settings.kafka, settings.realtime_loader.group_id, settings.topics.enriched
        )

    async def _sender(self) -> None:
        """Put each request on a queue at its due time; ``connections`` workers send them."""
        interval = self.batch / self.rate
        total = int((self.warmup + self.seconds) / interval)
        start = self.t0 - self.warmup
        queue: asyncio.Queue[tuple[float, bytes, str] | None] = asyncio.Queue()
        workers = [asyncio.create_task(self._connection(queue)) for _ in range(CONNECTIONS)]
        try:
            for k in range(total):
                due = start + k * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if k % 500 == 0:
                    check_alive(self.pipeline)
                    if any(w.done() for w in workers):
                        break  # a connection failed for good: its exception is raised below
                body, followed = self.pool.body(k, self.batch)
                queue.put_nowait((due, body, followed))
        finally:
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers)

    async def _connection(self, queue: asyncio.Queue[tuple[float, bytes, str] | None]) -> None:
        """One keep-alive HTTP/1.1 connection to the collector, sending queued requests.

        Deliberately minimal (no TLS, no chunked bodies): the load generator shares the
        machine's cores with the pipeline, so it should use as little of them as it can.
        """
        settings = self.pipeline.settings.collector
        head = (
            f"POST /v1/events HTTP/1.1\r\nhost: {settings.host}:{settings.port}\r\n"
            f"authorization: Bearer {self.key}\r\ncontent-type: application/json\r\n"
            "content-length: "
        ).encode()
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        r = self.result
        while (item := await queue.get()) is not None:
            due, body, followed = item
            sent = time.perf_counter()
            measured = due >= self.t0
            try:
                if conn is None:
                    conn = await asyncio.open_connection(settings.host, settings.port)
                reader, writer = conn
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                status, close = await asyncio.wait_for(_read_response(reader), 60)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                if conn is not None:
                    conn[1].close()
                conn = None
                if measured:
                    r.errors[type(exc).__name__] += 1
                continue
            ok, wall = time.perf_counter(), time.time()
            if close:
                conn[1].close()
                conn = None
            if not measured:
                continue
            r.requests += 1
            r.statuses[status] += 1
            r.lateness.append(sent - due)
            if status == 202:
                r.accepted += self.batch
                r.answer.append(ok - sent)
                self.pending[followed] = Followed(ok, wall, ok - self.t0)
        if conn is not None:
            conn[1].close()

    async def _search_probe(self, search: httpx.AsyncClient) -> None:
        """The OpenSearch baseline: one small document indexed directly every 100 ms."""
        k = 0
        while self.sending:
            doc_id = uuid.uuid4().hex
            resp = await search.put(f"/{self.probe_index}/_doc/{doc_id}", json={"n": k})
            ok, wall = time.perf_counter(), time.time()
            if resp.status_code in (200, 201):
                self.probes[doc_id] = Followed(ok, wall, ok - self.t0, probe=True)
            k += 1
            await asyncio.sleep(0.1)

    async def _poller(self, search: httpx.AsyncClient) -> None:
        r = self.result
        deadline: float | None = None
        while True:
            if not self.sending:
                if not self.pending and not self.probes:
                    break
                deadline = deadline or time.perf_counter() + self.drain_s
                if time.perf_counter() > deadline:
                    break
            # The oldest followed events only: documents become searchable roughly in 2xx
            # order, and a short ids list keeps the poller's own cost small when the
            # pipeline falls behind (a newer event seen late is counted late).
            ids = [*itertools.islice(self.pending, POLL_IDS), *self.probes]
            if ids:
                asked = time.perf_counter()
                resp = await search.post(
                    f"/{self.indices}/_search",
                    params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                    json={
                        "query": {"ids": {"values": ids}},
                        "size": len(ids),
                        "_source": SOURCE_FIELDS,
                    },
                )
                seen, wall = time.perf_counter(), time.time()
                r.search_rtt.append(seen - asked)
                hits = resp.json().get("hits", {}).get("hits", []) if resp.is_success else []
                for hit in hits:
                    f = self.pending.pop(hit["_id"], None) or self.probes.pop(hit["_id"], None)
                    if f is None:
                        continue
                    if f.probe:
                        r.probe_search.append((f.at, seen - f.ok))
                        continue
                    r.latencies.append((f.at, seen - f.ok))
                    src = hit.get("_source", {})
                    enriched = _iso(src.get("lineage", {}).get("enriched_at"))
                    indexed = _iso(src.get("loader", {}).get("indexed_at"))
                    if enriched is not None and indexed is not None:
                        for stage, value in zip(
                            STAGES,
                            (enriched - f.wall, indexed - enriched, wall - indexed),
                            strict=True,
                        ):
                            r.stages[stage].append(value)
            await asyncio.sleep(self.poll_s)

    async def _sampler(self) -> None:
        assert self.sample_s
        await asyncio.sleep(max(0.0, self.t0 - time.perf_counter()))
        while self.sending:
            at = self.since()
            for p in self.pipeline:
                if p.pid is not None:
                    rss, hwm, n = read_memory(p.pid)
                    self.result.memory.setdefault(p.name, []).append(MemSample(at, rss, hwm, n))
            await asyncio.sleep(self.sample_s)

    async def _cpu(self) -> None:
        """CPU use over the measured part of the load (warm-up and drain left out)."""
        await asyncio.sleep(max(0.0, self.t0 - time.perf_counter()))
        meter = CpuMeter(self.cpu_pids)
        before = await asyncio.to_thread(opensearch_work, self.os_url)
        while self.sending:
            await asyncio.sleep(0.2)
        self.result.cpu = meter.line()
        after = await asyncio.to_thread(opensearch_work, self.os_url)
        docs = after["docs"] - before["docs"]
        self.result.opensearch = (
            f"OpenSearch over the same time: {docs:,.0f} documents indexed, "
            f"{(after['index_ms'] - before['index_ms']) / max(docs, 1):.2f} ms indexing per "
            f"document, {after['refreshes'] - before['refreshes']:.0f} refreshes taking "
            f"{(after['refresh_ms'] - before['refresh_ms']) / 1000:.1f}s, "
            f"{after['merge_ms'] - before['merge_ms']:,.0f} ms merging, young GC "
            f"{after['gc_ms'] - before['gc_ms']:,.0f} ms; the poller's searches (shard-level "
            f"query+fetch): {after['queries'] - before['queries']:,.0f} taking "
            f"{(after['query_ms'] - before['query_ms']) / 1000:.1f}s"
        )

    async def _progress(self) -> None:
        next_at = self.t0 + self.progress_s
        while self.sending:
            await asyncio.sleep(1)
            if time.perf_counter() < next_at:
                continue
            next_at += self.progress_s
            r = self.result
            recent = [v for at, v in r.latencies if at > self.since() - self.progress_s]
            say(
                f"  {self.since():5.0f}s: {r.accepted:,} events accepted, "
                f"{len(self.pending)} followed not yet searchable, last {self.progress_s:.0f}s "
                f"p50 {ms(pct(recent, 50))} p99 {ms(pct(recent, 99))}"
            )


# -- phases ---------------------------------------------------------------------------------


def prime(pipeline: Pipeline, key: str, pool: EventPool, timeout: float = 300) -> float:
    """Send one batch and wait until all of it is searchable; return the seconds it took.

    A fresh Kafka creates its offsets and transaction-state topics on first use, the
    consumers join their groups, the first daily index is created from its template: on a
    busy machine that takes tens of seconds, which is start-up, not the latency under load.
    """
    began = time.perf_counter()
    body, _ = pool.body(0, 20)
    ids = [e["event_id"] for e in orjson.loads(body)]
    resp = httpx.post(
        f"{pipeline.collector_url}/v1/events",
        content=body,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        timeout=60,
    )
    resp.raise_for_status()
    url = pipeline.settings.search.opensearch.url
    pattern = f"{pipeline.settings.search.index_prefix}-events-*"
    while time.perf_counter() - began < timeout:
        check_alive(pipeline)
        found = httpx.post(
            f"{url}/{pattern}/_search",
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            json={"query": {"ids": {"values": ids}}, "size": len(ids), "_source": False},
            timeout=30,
        )
        if found.is_success and len(found.json()["hits"]["hits"]) == len(ids):
            return time.perf_counter() - began
        time.sleep(0.5)
    raise RuntimeError(f"the pipeline did not carry one batch to OpenSearch in {timeout:.0f}s")


def refresh_interval(url: str, pattern: str) -> str:
    resp = httpx.get(
        f"{url}/{pattern}/_settings",
        params={"include_defaults": "true", "flat_settings": "true"},
        timeout=10,
    )
    values = set()
    for index in resp.json().values():
        for part in ("settings", "defaults"):
            value = index.get(part, {}).get("index.refresh_interval")
            if value:
                values.add(value)
                break
    return ", ".join(sorted(values)) or "?"


def load_of(
    pipeline: Pipeline, key: str, pool: EventPool, args: argparse.Namespace, **options: Any
) -> Load:
    """A load of ``--batch``-event requests to the pipeline, watched every ``--poll-ms``."""
    return Load(
        pipeline=pipeline,
        key=key,
        pool=pool,
        batch=args.batch,
        poll_s=args.poll_ms / 1000,
        **options,
    )


def settle(pipeline: Pipeline, key: str, pool: EventPool, args: argparse.Namespace) -> None:
    """The same load for ``--settle-seconds``, not measured, then until everything is indexed.

    Fresh JVMs are slow until they have compiled their hot paths: on a fresh Kafka and
    OpenSearch the pipeline fell behind during the first 30 s of the load, by up to 63,000
    records (30 s of events), and a measured window that began before that backlog cleared
    measured the backlog. After this, the measured load starts from warm servers and an
    empty backlog; its own warm-up then shows whether the rate is carried (the real-time
    loader's lag when it ended is printed).
    """
    load = load_of(
        pipeline,
        key,
        pool,
        args,
        rate=args.rate,
        seconds=args.settle_seconds,
        warmup=0,
        drain_s=300,
        progress_s=math.inf,
    )
    r = asyncio.run(load.run())
    say(
        f"settling load: {r.accepted:,} events over {args.settle_seconds:.0f}s, not measured "
        f"(p99 {ms(pct([v for _, v in r.latencies], 99))}); the real-time loader was "
        f"{r.loader_lag:,} records behind when it ended and caught up {r.drain:.1f}s later"
    )


def latency_phase(
    pipeline: Pipeline, stack: StackSettings, key: str, pool: EventPool, args: argparse.Namespace
) -> None:
    settings = pipeline.settings
    os_url = settings.search.opensearch.url
    probe_index = f"bench-probe-{uuid.uuid4().hex[:8]}"
    httpx.put(
        f"{os_url}/{probe_index}",
        json={
            "settings": {
                "index": {
                    "number_of_shards": settings.realtime_loader.index_shards,
                    "number_of_replicas": 0,
                    "refresh_interval": settings.realtime_loader.index_refresh_interval,
                }
            }
        },
        timeout=30,
    ).raise_for_status()
    probe_topic = TopicNames(raw=f"bench.probe.{uuid.uuid4().hex[:8]}").raw
    kafka = settings.kafka.model_copy(update={"partitions": 1})
    ensure_topics(
        make_kafka_admin(kafka), topic_specs(TopicNames(raw=probe_topic), kafka, [probe_topic])
    )
    # Started before priming, so that its consumer is settled when the quiet window begins.
    probe = KafkaProbe(settings.kafka, probe_topic, settings.collector.linger_ms)
    probe.start()
    say(f"primed: one batch went through to OpenSearch in {prime(pipeline, key, pool):.1f}s")
    if args.settle_seconds > 0:
        settle(pipeline, key, pool, args)
    say(
        f"== latency: {args.rate:,} events/s as {args.batch}-event POSTs every "
        f"{1000 * args.batch / args.rate:.0f} ms, {args.warmup_seconds:.0f}s warm-up + "
        f"{args.latency_seconds:.0f}s measured"
    )
    load = load_of(
        pipeline,
        key,
        pool,
        args,
        rate=args.rate,
        seconds=args.latency_seconds,
        warmup=args.warmup_seconds,
        probe_index=probe_index,
        quiet=args.quiet_seconds,
        progress_s=10,
        cpu_pids=measured_pids(pipeline, stack),
    )
    try:
        r = asyncio.run(load.run())
    finally:
        probe.stop.set()
        probe.join(30)
    if probe.error:
        raise probe.error
    r.probe_kafka = [(t - load.t0, v) for t, v in probe.latencies]
    refresh = refresh_interval(os_url, f"{settings.search.index_prefix}-events-*")
    say()
    say("== latency: collector 2xx -> searchable in OpenSearch")
    say(
        f"requests {r.requests:,} ({dict(r.statuses)}; errors {dict(r.errors) or 'none'}), "
        f"{r.accepted:,} events accepted = {r.accepted / r.seconds:,.0f} events/s; "
        f"sender late by p99 {ms(pct(r.lateness, 99))}; collector answered p50 "
        f"{ms(pct(r.answer, 50))}, p99 {ms(pct(r.answer, 99))}"
    )
    say(
        f"followed {len(r.latencies):,} events (one per request), {r.unseen} not searchable "
        f"within {load.drain_s:.0f}s after the load; poller every {args.poll_ms} ms, its "
        f"search took p50 {ms(pct(r.search_rtt, 50))}, p99 {ms(pct(r.search_rtt, 99))}; "
        f"refresh_interval of the events indices: {refresh}"
    )
    say(r.cpu)
    say(r.opensearch)
    say(
        f"keeping up? when the warm-up ended the real-time loader had {r.warm_lag:,} records "
        f"left to load; when the load ended it had {r.loader_lag:,} records "
        f"(and transaction markers) left to load; the last followed event became searchable "
        f"{r.drain:.1f}s after the load ended"
    )
    values = r.values
    idle_end = -args.warmup_seconds  # the quiet window ends where the warm-up begins

    def idle(xs: list[tuple[float, float]]) -> list[float]:
        return [v for at, v in xs if at < idle_end]

    def loaded(xs: list[tuple[float, float]]) -> list[float]:
        return [v for at, v in xs if at >= 0]

    rows = [
        ("pipeline: 2xx -> searchable", values),
        ("(a) OpenSearch alone, idle", idle(r.probe_search)),
        ("(a) OpenSearch alone, during the load", loaded(r.probe_search)),
        ("(b) one Kafka hop, idle", idle(r.probe_kafka)),
        ("(b) one Kafka hop, during the load", loaded(r.probe_kafka)),
    ]
    say(f"  {'':<44}{'n':>7}{'p50':>11}{'p99':>11}{'max':>11}")
    for name, xs in rows:
        top = max(xs) if xs else float("nan")
        say(f"  {name:<44}{len(xs):>7}{ms(pct(xs, 50)):>11}{ms(pct(xs, 99)):>11}{ms(top):>11}")
    say("  where the pipeline's time goes (per followed event, from its time stamps):")
    for stage in STAGES:
        xs = r.stages[stage]
        say(f"    {stage:<42}{len(xs):>7}{ms(pct(xs, 50)):>11}{ms(pct(xs, 99)):>11}")
    for name, xs in rows[1:]:
        if xs:
            say(
                f"  ratio pipeline / {name}: p50 {pct(values, 50) / pct(xs, 50):.1f}x, "
                f"p99 {pct(values, 99) / pct(xs, 99):.1f}x"
            )
    p99 = pct(values, 99)
    verdict = "ok" if p99 < TARGET_P99_S and not r.unseen else "MISS"
    say(f"  target: p99 < {TARGET_P99_S:.0f} s: {ms(p99)} {verdict}")


def read_all(
    kafka: KafkaSettings, topic: str, n: int | None = None, timeout: float = 300
) -> tuple[int, int, float]:
    """Read ``topic`` (or its first ``n`` records) as a fresh group, one poll per record.

    Returns the records, their value bytes, and the seconds from the first record to the last.
    Configured and polling as the batch loader does: a plain read at the loader's own terms.
    """
    consumer = make_kafka_consumer(
        kafka, f"bench-read-{uuid.uuid4().hex}", **{"enable.auto.commit": False}
    )
    ends = end_offsets(consumer, topic) if n is None else {}
    consumer.subscribe([topic])
    count = size = 0
    first = last = 0.0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if n is not None and count >= n:
                break
            if n is None and not any(ends.values()):
                break  # an empty topic
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                if n is None and consumer.assignment():
                    # Transaction markers take offsets too: done when every position has
                    # reached its end (a partition not fetched yet has no position).
                    positions = consumer.position(consumer.assignment())
                    if all(
                        tp.offset >= ends.get(tp.partition, 0) or not ends.get(tp.partition)
                        for tp in positions
                    ):
                        break
                continue
            last = time.perf_counter()
            first = first or last
            count += 1
            size += len(msg.value() or b"")
    finally:
        consumer.close()
    return count, size, last - first


def topic_disk_bytes(state_dir: Path, topic: str) -> int:
    """Bytes of ``topic``'s log segments in the private Kafka's data folder."""
    return sum(f.stat().st_size for f in (state_dir / "kafka" / "data").glob(f"{topic}-*/*.log"))


def batch_phase(pipeline: Pipeline, stack: StackSettings, args: argparse.Namespace) -> None:
    settings = pipeline.settings
    kafka, topics = settings.kafka, settings.topics
    say("== batch loader")
    count, _, _ = read_all(kafka, topics.enriched)
    if count < args.batch_events:
        need = args.batch_events - count
        say(f"  the enriched topic holds {count:,} records: {need:,} more via the raw topic")
        fill(kafka, topics.raw, raw_values(need, seed=int(time.time())))
        deadline = time.monotonic() + 600
        while lag(kafka, settings.enricher.group_id, topics.raw) > 0:
            check_alive(pipeline)
            if time.monotonic() > deadline:
                raise RuntimeError("the enricher did not catch up within 600 s")
            time.sleep(2)
    # The pipeline's own processes stop (its batch loader flushes): only the readers measured
    # here use the cores from now on.
    pipeline.stop()
    n, size, _ = read_all(kafka, topics.enriched)  # not timed; warms the page cache
    say(f"  {n:,} enriched records, mean {size / max(n, 1):,.0f} bytes of JSON")
    before = read_all(kafka, topics.enriched, n)
    prefix = f"bench-batch/{uuid.uuid4().hex[:8]}/"
    loader_settings = BatchLoaderSettings.model_validate(
        {
            "kafka": kafka,
            "s3": settings.s3.model_copy(update={"raw_prefix": prefix}),
            "topics": topics,
            # Beside the pipeline's own batch loader: a metrics port of its own.
            "batch_loader": {"group_id": f"bench-batch-{uuid.uuid4().hex}", "metrics_port": 0},
        }
    )
    stats = LoaderStats()
    stop = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            batch_loader.run(loader_settings, stop, stats)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="batch-loader", daemon=True)
    thread.start()
    first = 0.0
    deadline = time.monotonic() + 900
    try:
        while stats.consumed < n:
            if failure or not thread.is_alive():
                raise RuntimeError(f"the batch loader stopped: {failure[:1]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the batch loader read {stats.consumed} of {n} in 900 s")
            if not first and stats.consumed:
                first = time.perf_counter()
            time.sleep(0.005)
    finally:
        stop.set()  # on stop, the loader flushes every buffer and commits
        thread.join(300)
    loader_s = time.perf_counter() - first
    if failure:
        raise RuntimeError(f"the batch loader failed: {failure[0]!r}")
    after = read_all(kafka, topics.enriched, n)
    s3 = make_s3_client(settings.s3)
    objects = parquet = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.s3.raw_bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                objects += 1
                parquet += obj["Size"]
    disk = topic_disk_bytes(stack.stack.state_dir, topics.enriched)
    loader_rate = stats.events_written / loader_s
    base_rates = [x[0] / x[2] for x in (before, after) if x[2] > 0]
    base = statistics.fmean(base_rates)
    say(
        f"  loader: {stats.events_written:,} events written in {objects} Parquet objects "
        f"(zstd), {stats.dead_letters} dead letters, {loader_s:.1f}s"
    )
    say(f"  {'':<46}{'events/s':>10}{'ratio':>8}")
    say(
        f"  {'plain consumer, same records (baseline)':<46}{base:>10,.0f}{1:>8.2f}"
        f"   (before {base_rates[0]:,.0f}, after {base_rates[-1]:,.0f})"
    )
    say(f"  {'batch loader, to Parquet in S3':<46}{loader_rate:>10,.0f}{loader_rate / base:>8.2f}")
    json_per, parquet_per, disk_per = size / n, parquet / max(stats.events_written, 1), disk / n
    say(f"  {'bytes per event':<46}{'bytes':>10}{'ratio':>8}")
    say(f"  {'JSON record in Kafka (uncompressed value)':<46}{json_per:>10,.0f}{1:>8.2f}")
    disk_name = "Kafka's log on disk (zstd batches, markers)"
    say(f"  {disk_name:<46}{disk_per:>10,.0f}{disk_per / json_per:>8.2f}")
    say(
        f"  {'Parquet (zstd), data objects':<46}{parquet_per:>10,.0f}{parquet_per / json_per:>8.2f}"
    )
    if stats.events_written != n:
        say(f"  NOTE: the loader wrote {stats.events_written} events of {n}")


def memory_phase(
    pipeline: Pipeline, stack: StackSettings, key: str, pool: EventPool, args: argparse.Namespace
) -> None:
    say(
        f"== memory: restarting the pipeline, then {args.memory_rate:,} events/s for "
        f"{args.memory_seconds:.0f}s (+{args.warmup_seconds:.0f}s warm-up), sampling every "
        f"{args.sample_seconds:.0f}s"
    )
    pipeline.stop()
    pipeline.start()
    say(f"primed: one batch went through to OpenSearch in {prime(pipeline, key, pool):.1f}s")
    load = load_of(
        pipeline,
        key,
        pool,
        args,
        rate=args.memory_rate,
        seconds=args.memory_seconds,
        warmup=args.warmup_seconds,
        sample_s=args.sample_seconds,
        progress_s=60 if args.memory_seconds >= 300 else 15,
        cpu_pids=measured_pids(pipeline, stack),
    )
    r = asyncio.run(load.run())
    window = min(60.0, args.memory_seconds / 3)
    say()
    say(
        f"== memory of each worker over {args.memory_seconds:.0f}s at {args.memory_rate:,} "
        "events/s "
        f"({r.accepted / r.seconds:,.0f} accepted/s, statuses {dict(r.statuses)}, errors "
        f"{dict(r.errors) or 'none'}); RSS in MiB, process + descendants"
    )
    say(
        f"  {'process':<16}{'procs':>6}{f'first {window:.0f}s':>11}{f'last {window:.0f}s':>11}"
        f"{'change':>9}{'slope/min':>11}{'max RSS':>9}{'sum HWM':>9}"
    )
    for name, samples in r.memory.items():
        first = [s.rss for s in samples if s.at <= window]
        last = [s.rss for s in samples if s.at >= samples[-1].at - window]
        tail = [(s.at, s.rss / MIB) for s in samples if s.at > window]
        a, b = statistics.fmean(first) / MIB, statistics.fmean(last) / MIB
        say(
            f"  {name:<16}{samples[-1].procs:>6}{a:>11.1f}{b:>11.1f}{(b - a) / a:>+9.1%}"
            f"{slope_per_minute(tail):>+11.2f}{max(s.rss for s in samples) / MIB:>9.1f}"
            f"{samples[-1].hwm / MIB:>9.1f}"
        )
    say(f"  samples: {min(len(s) for s in r.memory.values())} per process; {r.cpu}")
    say("  latency during this run (2xx -> searchable), per minute:")
    minutes = int(max(1, args.memory_seconds // 60))
    for m in range(minutes):
        xs = [v for at, v in r.latencies if m * 60 <= at < (m + 1) * 60]
        say(
            f"    minute {m + 1:>2}: n {len(xs):>5}, p50 {ms(pct(xs, 50)):>8}, "
            f"p99 {ms(pct(xs, 99)):>8}"
        )
    say(
        f"  overall p50 {ms(pct(r.values, 50))}, p99 {ms(pct(r.values, 99))}; "
        f"{r.unseen} followed events not searchable within {load.drain_s:.0f}s; when the "
        f"load ended the real-time loader had {r.loader_lag:,} records (and transaction "
        f"markers) left, and the last followed event became searchable {r.drain:.1f}s later"
    )


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Details: the module docstring (benchmarks/bench_stream.py).",
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"Comma-separated subset of {PHASES}."
    )
    parser.add_argument("--rate", type=int, default=2000, help="Offered events/s.")
    parser.add_argument("--batch", type=int, default=20, help="Events per POST.")
    parser.add_argument("--latency-seconds", type=float, default=60, help="Measured load.")
    parser.add_argument(
        "--warmup-seconds", type=float, default=30, help="Load before each measurement."
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=60,
        help="Unmeasured load (then a drain) before the latency phase's load; 0: none.",
    )
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=10,
        help="Baselines alone (no load) before the latency phase's load.",
    )
    parser.add_argument("--poll-ms", type=int, default=50, help="Search poller's period.")
    parser.add_argument(
        "--batch-events", type=int, default=100_000, help="Least records for the batch loader."
    )
    parser.add_argument(
        "--memory-seconds", type=float, default=600, help="Length of the memory run."
    )
    parser.add_argument(
        "--memory-rate",
        type=int,
        default=1000,
        help="Offered events/s of the memory run (one this shared machine carries).",
    )
    parser.add_argument("--sample-seconds", type=float, default=5, help="Memory sampling period.")
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temporary folder (logs, server data)."
    )
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.rate <= 0 or args.batch <= 0 or args.batch > 1000:
        parser.error("--rate must be > 0 and --batch within 1..1000")

    key, key_hash = new_key()
    pool = EventPool(20_000)
    say(f"machine: {os.cpu_count()} cores, shared by everything below (and anything else)")
    servers = ["kafka", "seaweedfs", "opensearch"]
    with (
        stoppable(),
        private_stack(servers, "tributary-bench-stream-", args.keep) as (stack, work),
    ):
        pipeline = Pipeline(pipeline_settings(stack, key_hash), work / "logs", inherit_env=False)
        try:
            pipeline.start()
            say(
                f"pipeline: collector {pipeline.collector_url} "
                f"({pipeline.settings.collector.workers} workers), enrichment API "
                f"{pipeline.enrichment_url}, enricher, real-time loader, batch loader; "
                f"logs in {work / 'logs'}"
            )
            if "latency" in phases:
                latency_phase(pipeline, stack, key, pool, args)
            if "batch" in phases:
                if not pipeline["collector"].running():
                    pipeline.start()
                batch_phase(pipeline, stack, args)
            if "memory" in phases:
                memory_phase(pipeline, stack, key, pool, args)
        finally:
            pipeline.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted: everything this run started has been stopped")
        sys.exit(130)
