"""``tributary demo``: the platform end to end on this machine, as far as it is built.

1. start the local servers (Kafka, SeaweedFS, OpenSearch) and create topics and buckets;
2. start the collector with a fresh API key;
3. push synthetic clickstream events over REST and IoT readings over gRPC, a share of them
   deliberately broken;
4. read the raw and dead-letter topics back and reconcile them with what the producers were
   told.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from cli.produce import TransportName, produce_events
from ingestion.core.auth import new_key
from ingestion.core.config import CollectorSettings
from ingestion.producers.emitter import EmitterStats
from ingestion.producers.sources import ClickstreamSource, IoTSource
from resources.kafka import make_kafka_consumer
from stack.config import StackSettings
from stack.errors import StackError
from stack.manager import Stack
from stack.provision import ProvisionError

console = Console(highlight=False, soft_wrap=True)


def _offsets(consumer: Consumer, topic: str) -> dict[TopicPartition, int]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    return {
        TopicPartition(topic, p): consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10
        )[1]
        for p in metadata.partitions
    }


def _read(consumer: Consumer, starts: dict[TopicPartition, int]) -> list[bytes]:
    """Every message after ``starts`` up to the topic's current end."""
    ends = _offsets(consumer, next(iter(starts)).topic)
    wanted = {tp: end for tp, end in ends.items() if end > starts.get(tp, 0)}
    consumer.assign([TopicPartition(tp.topic, tp.partition, starts.get(tp, 0)) for tp in wanted])
    values: list[bytes] = []
    remaining = sum(end - starts.get(tp, 0) for tp, end in wanted.items())
    deadline = time.monotonic() + 60
    while remaining > 0 and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        values.append(msg.value() or b"")
        remaining -= 1
    return values


def _start_collector(key_hash: str, log: Path) -> tuple[subprocess.Popen[bytes], CollectorSettings]:
    env = {
        **os.environ,
        "TRIBUTARY_COLLECTOR__API_KEYS": json.dumps([{"producer": "demo", "sha256": key_hash}]),
    }
    settings = CollectorSettings()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "tributary"), "run", "collector"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://{settings.collector.host}:{settings.collector.port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"the collector exited; see {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, settings
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise StackError(f"the collector did not become ready; see {log}")


def demo(
    events: int = typer.Option(5000, help="Clickstream events to send over REST."),
    iot_events: int = typer.Option(1000, help="IoT readings to send over gRPC."),
    bad_share: float = typer.Option(0.1, help="Share of deliberately broken events."),
    seed: int = typer.Option(7, help="Seed of the generators."),
) -> None:
    """Run the platform on this machine and reconcile every event sent."""
    settings = StackSettings()
    try:
        Stack(settings).up(report=console.print)
    except (StackError, ProvisionError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc

    work = Path(tempfile.mkdtemp(prefix="tributary-demo-"))
    key, key_hash = new_key()
    probe = make_kafka_consumer(settings.kafka, group_id=f"demo-{uuid.uuid4().hex}")
    raw_start = _offsets(probe, settings.topics.raw)
    dlq_start = _offsets(probe, settings.topics.collector_dlq)
    try:
        collector, collector_settings = _start_collector(key_hash, work / "collector.log")
    except StackError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    options = collector_settings.collector
    url = f"http://{options.host}:{options.port}"
    console.print(f"collector: ready at {url} (gRPC {options.host}:{options.grpc_port})")
    stats: list[EmitterStats] = []
    try:
        stats.append(
            produce_events(
                "clickstream (REST)",
                ClickstreamSource(users=max(1, events // 20), seed=seed, bad_share=bad_share),
                events,
                rate=None,
                batch_size=100,
                transport=TransportName.REST,
                url=url,
                grpc_target=None,
                api_key=key,
                spool=work / "clickstream.sqlite",
                gzip=True,
                max_retries=5,
            )
        )
        stats.append(
            produce_events(
                "iot (gRPC)",
                IoTSource(devices=20, seed=seed, bad_share=bad_share),
                iot_events,
                rate=None,
                batch_size=100,
                transport=TransportName.GRPC,
                url=None,
                grpc_target=f"{options.host}:{options.grpc_port}",
                api_key=key,
                spool=work / "iot.sqlite",
                gzip=None,
                max_retries=5,
            )
        )
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)

    raw = _read(probe, raw_start)
    dlq = _read(probe, dlq_start)
    probe.close()
    _reconcile(stats, raw, dlq, settings)


def _reconcile(
    stats: list[EmitterStats], raw: list[bytes], dlq: list[bytes], settings: StackSettings
) -> None:
    sent = sum(s.sent for s in stats)
    accepted = sum(s.accepted for s in stats)
    rejected: Counter[str] = Counter()
    for s in stats:
        rejected.update(s.rejected)
    dlq_reasons = Counter(json.loads(v)["failure_type"] for v in dlq)
    paths = Counter(json.loads(v)["collector"]["path"] for v in raw)

    table = Table("what", "producers were told", "found in Kafka", title="Reconciliation")
    table.add_row("events sent", str(sent), "")
    table.add_row(
        f"accepted → {settings.topics.raw}",
        str(accepted),
        f"{len(raw)} (rest {paths['rest']}, grpc {paths['grpc']})",
    )
    table.add_row(
        f"rejected → {settings.topics.collector_dlq}", str(sum(rejected.values())), str(len(dlq))
    )
    for reason in sorted(set(rejected) | set(dlq_reasons)):
        table.add_row(f"  {reason}", str(rejected[reason]), str(dlq_reasons[reason]))
    console.print(table)
    ok = len(raw) == accepted and dlq_reasons == rejected and accepted + len(dlq) == sent
    verdict = "[green]every event is accounted for" if ok else "[red]counts do not add up"
    console.print(f"{verdict}[/]")
    console.print(
        "Servers keep running: 'uv run tributary stack status' shows them, "
        "'uv run tributary stack down' stops them."
    )
    if not ok:
        raise typer.Exit(1)
