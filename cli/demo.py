"""``tributary demo``: bring the stack up and push events round the Kafka topics.

At this stage of the platform the demo checks each event against the contract itself and
routes it to the raw or dead-letter topic, then reads both topics back and reconciles the
counts. Later stages replace the routing with the collector and extend the reconciliation.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from contract.envelope import EnvelopeRules, check_envelope
from contract.failures import ErrorDetail, FailedEvent, FailureType, OriginalPayload, Stage
from contract.registry import SchemaRegistry
from resources.kafka import make_kafka_consumer, make_kafka_producer
from stack.config import StackSettings
from stack.errors import StackError
from stack.manager import Stack
from stack.provision import ProvisionError

console = Console(highlight=False, soft_wrap=True)
NOT_JSON = {"field": "/", "reason": "the event is not JSON"}


def sample_events(registry: SchemaRegistry, count: int, bad_share: float, seed: int) -> list[bytes]:
    """Return serialised events: valid ones built from the schemas' examples, and bad ones."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    keys = registry.keys()
    out = []
    for i in range(count):
        key = rng.choice(keys)
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": key.uri,
            "event_timestamp": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat(),
            "source": "demo",
            "payload": rng.choice(registry.get(key).schema["examples"]),
            "context": {"user_id": f"u-{rng.randint(1, 50)}", "session_id": f"s-{i // 10}"},
        }
        if rng.random() < bad_share:
            flaw = rng.choice(["uuid", "type", "timestamp", "bytes"])
            if flaw == "uuid":
                event["event_id"] = "not-a-uuid"
            elif flaw == "type":
                event["event_type"] = "iglu:com.tributary.shop/refund/jsonschema/1-0-0"
            elif flaw == "timestamp":
                event["event_timestamp"] = "last tuesday"
            else:
                out.append(b"\x00\xffnot json at all")
                continue
        out.append(json.dumps(event).encode())
    return out


def _count(
    consumer: Consumer, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
) -> list[bytes]:
    wanted = {tp: end for tp, end in ends.items() if end > starts[tp]}
    consumer.assign([TopicPartition(tp.topic, tp.partition, starts[tp]) for tp in wanted])
    values: list[bytes] = []
    remaining = sum(end - starts[tp] for tp, end in wanted.items())
    deadline = time.monotonic() + 60
    while remaining > 0 and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        values.append(msg.value() or b"")
        remaining -= 1
    return values


def _offsets(consumer: Consumer, topic: str) -> dict[TopicPartition, int]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    out = {}
    for p in metadata.partitions:
        tp = TopicPartition(topic, p)
        out[tp] = consumer.get_watermark_offsets(tp, timeout=10)[1]
    return out


def demo(
    events: int = typer.Option(1000, help="How many events to send."),
    bad_share: float = typer.Option(0.1, help="Share of deliberately broken events."),
    seed: int = typer.Option(7, help="Seed of the event generator."),
) -> None:
    """Start the stack, push events round the Kafka topics and reconcile what arrived."""
    settings = StackSettings()
    try:
        Stack(settings).up(report=console.print)
    except (StackError, ProvisionError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc

    registry = SchemaRegistry.from_directory()
    rules = EnvelopeRules()
    topics = settings.topics
    probe = make_kafka_consumer(settings.kafka, group_id=f"demo-{uuid.uuid4().hex}")
    raw_start, dlq_start = _offsets(probe, topics.raw), _offsets(probe, topics.collector_dlq)

    producer = make_kafka_producer(settings.kafka)
    failures: Counter[str] = Counter()
    began = time.monotonic()
    for body in sample_events(registry, events, bad_share, seed):
        try:
            data = json.loads(body)
        except ValueError:
            check = None
        else:
            check = check_envelope(data, registry, rules, size_bytes=len(body))
        if check is not None and check.envelope is not None:
            producer.produce(topics.raw, key=check.envelope.partition_key(), value=body)
        else:
            errors = [e.as_dict() for e in check.errors] if check else [NOT_JSON]
            failure = FailedEvent(
                failure_type=(check and check.failure_type) or FailureType.MALFORMED,
                stage=Stage.COLLECTOR,
                errors=[ErrorDetail(**e) for e in errors],
                original=OriginalPayload.from_bytes(body),
            )
            failures[failure.failure_type] += 1
            producer.produce(topics.collector_dlq, value=failure.model_dump_json().encode())
        producer.poll(0)
    if producer.flush(60) != 0:
        console.print("[red]some events were not confirmed by Kafka[/red]")
        raise typer.Exit(1)
    elapsed = time.monotonic() - began

    raw = _count(probe, raw_start, _offsets(probe, topics.raw))
    dlq = _count(probe, dlq_start, _offsets(probe, topics.collector_dlq))
    probe.close()
    dlq_reasons = Counter(json.loads(v)["failure_type"] for v in dlq)

    table = Table("what", "count", title="Reconciliation")
    table.add_row("events sent", str(events))
    table.add_row(f"on {topics.raw}", str(len(raw)))
    table.add_row(f"on {topics.collector_dlq}", str(len(dlq)))
    for reason, n in sorted(dlq_reasons.items()):
        table.add_row(f"  dead letters: {reason}", str(n))
    console.print(table)
    ok = len(raw) + len(dlq) == events and dlq_reasons == failures
    console.print(
        f"{events} events in {elapsed:.2f}s; "
        + (
            "[green]every event is accounted for[/green]"
            if ok
            else "[red]counts do not add up[/red]"
        )
    )
    console.print("Stop the servers with: uv run tributary stack down")
    if not ok:
        raise typer.Exit(1)
