"""Enricher throughput against a transactional pass-through baseline, measured in one run.

- baseline: consume the raw records and produce them unchanged to another topic, with the
  consumer offsets in the same Kafka transaction (what exactly-once costs by itself);
- enricher, enrichment off: schema validation + lineage + transactions;
- enricher with the enrichment API in the loop (started here, one worker).

Known problem: the pass-through baseline currently measures slower than the enricher itself
(about 5k against 13k events/s here), which cannot be right for a subset of the same work;
until that is understood, treat the ratios as unverified.

Run: ``uv run python benchmarks/bench_enricher.py [--events 50000]``. Uses the local Kafka
(started if needed, stopped at the end only if started here) and topics of its own.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from confluent_kafka import TopicPartition

from ingestion.producers.sources import ClickstreamSource
from resources.kafka import make_kafka_admin, make_kafka_consumer, make_kafka_producer
from resources.settings import TopicNames
from resources.topics import ensure_topics, platform_topics
from stack.config import StackSettings
from stack.manager import Stack
from streaming.enricher import Enricher, EnricherSettings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


COLLECTOR = {
    "received_at": "2026-11-28T10:00:00Z",
    "collector_id": "bench",
    "request_id": "r",
    "producer": "bench",
    "client_ip": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
    "path": "rest",
}


def raw_values(n: int) -> list[bytes]:
    """Raw-topic records as the collector writes them (valid events only)."""
    source = iter(ClickstreamSource(users=max(1, n // 20), seed=11))
    out: list[bytes] = []
    while len(out) < n:
        item = next(source)
        if isinstance(item, dict):
            out.append(orjson.dumps({**item, "collector": COLLECTOR}))
    return out


def fresh_topics(settings: StackSettings) -> TopicNames:
    suffix = uuid.uuid4().hex[:8]
    names = TopicNames(
        raw=f"bench.{suffix}.raw",
        collector_dlq=f"bench.{suffix}.raw.dlq",
        enriched=f"bench.{suffix}.enriched",
        enriched_dlq=f"bench.{suffix}.enriched.dlq",
        loader_dlq=f"bench.{suffix}.loader.dlq",
    )
    kafka = settings.kafka.model_copy(update={"partitions": 3})
    ensure_topics(make_kafka_admin(settings.kafka), platform_topics(names, kafka))
    return names


def fill(settings: StackSettings, topic: str, values: list[bytes]) -> None:
    producer = make_kafka_producer(settings.kafka)
    for i, v in enumerate(values):
        while True:
            try:
                producer.produce(topic, value=v, key=f"user:{i % 97}")
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(120)


def passthrough(settings: StackSettings, names: TopicNames, n: int) -> float:
    consumer = make_kafka_consumer(
        settings.kafka, f"bench-pass-{uuid.uuid4().hex}", **{"enable.auto.commit": False}
    )
    producer = make_kafka_producer(
        settings.kafka, **{"transactional.id": f"bench-pass-{uuid.uuid4().hex}", "linger.ms": 5}
    )
    producer.init_transactions(30)
    consumer.subscribe([names.raw])
    done, began = 0, 0.0
    while done < n:
        batch = [m for m in consumer.consume(500, 0.5) if m.error() is None]
        if not batch:
            continue
        began = began or time.perf_counter()
        producer.begin_transaction()
        offsets: dict[int, int] = {}
        for m in batch:
            producer.produce(names.enriched, value=m.value(), key=m.key())
            offsets[m.partition() or 0] = (m.offset() or 0) + 1
        producer.send_offsets_to_transaction(
            [TopicPartition(names.raw, p, o) for p, o in offsets.items()],
            consumer.consumer_group_metadata(),
        )
        producer.commit_transaction()
        done += len(batch)
    elapsed = time.perf_counter() - began
    consumer.close()
    return n / elapsed


def enricher_rate(settings: StackSettings, names: TopicNames, n: int, **options: object) -> float:
    enricher_settings = EnricherSettings.model_validate(
        {
            "kafka": settings.kafka.model_dump(),
            "topics": names.model_dump(),
            "enricher": {"group_id": f"bench-enricher-{uuid.uuid4().hex}", **options},
        }
    )
    stop = threading.Event()
    enricher = Enricher(enricher_settings, stop)
    thread = threading.Thread(target=enricher.run)
    thread.start()
    began = None
    while enricher.stats["consumed"] < n:
        if began is None and enricher.stats["consumed"] > 0:
            began = time.perf_counter() - 0.0
        time.sleep(0.05)
    elapsed = time.perf_counter() - (began or time.perf_counter())
    stop.set()
    thread.join(60)
    return n / elapsed if elapsed > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    os.chdir(ROOT)
    settings = StackSettings()
    stack = Stack(settings)
    started = stack.up(["kafka"])
    port = free_port()
    api = subprocess.Popen(
        [str(Path(sys.executable).parent / "tributary"), "run", "enrichment-api"],
        env={**os.environ, "TRIBUTARY_ENRICHMENT__PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        values = raw_values(args.events)
        results: dict[str, float] = {}
        runs: list[tuple[str, Callable[[TopicNames], float]]] = [
            # A warm-up pass-through first: the transaction coordinator's first transactions
            # are slow, and that should not count against whichever run comes first.
            ("warm-up", lambda t: passthrough(settings, t, min(args.events, 5000))),
            ("pass-through (baseline)", lambda t: passthrough(settings, t, args.events)),
            (
                "enricher, enrichment off",
                lambda t: enricher_rate(settings, t, args.events, enrichment_enabled=False),
            ),
            (
                "enricher + enrichment API",
                lambda t: enricher_rate(
                    settings, t, args.events, enrichment_url=f"http://127.0.0.1:{port}"
                ),
            ),
        ]
        for name, run in runs:
            names = fresh_topics(settings)
            fill(settings, names.raw, values)
            results[name] = run(names)
        results.pop("warm-up")
        base = results["pass-through (baseline)"]
        print(f"events: {args.events} (2 shared cores; Kafka, API and enricher on the same cores)")
        for name, rate in results.items():
            print(f"{name:28s} {rate:>10,.0f} events/s   ratio {rate / base:.2f}")
        print("target: enricher with enrichment >= 0.40 of the pass-through baseline")
    finally:
        api.terminate()
        api.wait(30)
        stack.down(started)


if __name__ == "__main__":
    main()
