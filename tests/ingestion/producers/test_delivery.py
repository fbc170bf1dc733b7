"""Producers against a real collector process and real Kafka: what arrives where.

Each test knows exactly which events it sent, so it can say which must be on the raw topic
(the envelope-valid ones, payload flaws included) and which in the collector's dead-letter
topic (with which failure type), whatever else other runs write to the same topics.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.errors import ExitCode
from contract.envelope import EnvelopeRules, check_envelope
from contract.failures import FailureType, OriginalPayload
from contract.registry import SchemaRegistry
from ingestion.producers.emitter import Emitter
from ingestion.producers.sources import encode
from ingestion.producers.spool import InMemoryStore, SqliteSpool
from ingestion.producers.transports import GrpcTransport, RestTransport, Transport
from resources.settings import PlatformSettings
from runtime.retry import RetrySettings
from simulator.events import ClickstreamSource, IoTSource
from stack.private import free_port
from tests.ingestion.collector_helpers import TRIBUTARY, WRITE_KEY, CollectorProcess
from tests.kafka_helpers import end_offsets, read_since

pytestmark = pytest.mark.integration

REGISTRY = SchemaRegistry.from_directory()
EVENT_ID = re.compile(rb'"event_id":"([^"]*)"')


def marker(body: bytes) -> str:
    """The event id written in an event's bytes, even when they are not JSON."""
    found = EVENT_ID.search(body)
    assert found is not None, body[:100]
    return found.group(1).decode()


@dataclass
class Expected:
    """What the collector must do with each event sent."""

    valid: dict[str, bytes] = field(default_factory=dict)  # event_id -> the bytes sent
    invalid: dict[str, str] = field(default_factory=dict)  # marker -> failure type

    @classmethod
    def of(cls, bodies: list[bytes]) -> Expected:
        out = cls()
        now = datetime.now(UTC)
        for body in bodies:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                out.invalid[marker(body)] = FailureType.MALFORMED
                continue
            check = check_envelope(data, REGISTRY, EnvelopeRules(), size_bytes=len(body), now=now)
            if check.envelope is not None:
                out.valid[str(check.envelope.event_id)] = body
            else:
                assert check.failure_type is not None
                out.invalid[marker(body)] = check.failure_type
        assert len(out.valid) + len(out.invalid) == len(bodies)  # markers are unique
        return out

    @property
    def universe(self) -> set[str]:
        return set(self.valid) | set(self.invalid)


@dataclass
class Arrived:
    raw: list[dict[str, Any]]  # our events on the raw topic, duplicates included
    dead: list[tuple[str, str]]  # (marker, failure type) of our dead letters


class Topics:
    """Offsets before a test; what of ours arrived after it."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.raw_start = end_offsets(settings.kafka, settings.topics.raw)
        self.dlq_start = end_offsets(settings.kafka, settings.topics.collector_dlq)

    def arrived(self, expected: Expected, at_least: int | None = None) -> Arrived:
        topics = self.settings.topics
        raw_messages = read_since(
            self.settings.kafka,
            topics.raw,
            self.raw_start,
            expect=len(expected.valid) if at_least is None else at_least,
        )
        dlq_messages = read_since(
            self.settings.kafka, topics.collector_dlq, self.dlq_start, expect=len(expected.invalid)
        )
        universe = expected.universe
        raw = [orjson.loads(m.value() or b"") for m in raw_messages]
        raw = [v for v in raw if v.get("event_id") in universe]
        dead = []
        for message in dlq_messages:
            failed = orjson.loads(message.value() or b"")
            original = OriginalPayload.model_validate(failed["original"]).to_bytes()
            found = EVENT_ID.search(original)
            if found and found.group(1).decode() in universe:
                dead.append((found.group(1).decode(), failed["failure_type"]))
        return Arrived(raw, dead)


def check_arrival(arrived: Arrived, expected: Expected, path: str, exactly_once: bool) -> None:
    """The valid events (byte for byte) on the raw topic, the others dead-lettered."""
    ids = [v["event_id"] for v in arrived.raw]
    assert set(ids) == set(expected.valid)
    if exactly_once:
        assert len(ids) == len(expected.valid)
    for value in arrived.raw:
        collector = value.pop("collector")
        assert collector["path"] == path and collector["producer"] == "test-producer"
        # A duplicate is a resend of the same bytes: identical apart from the collector's stamp.
        assert value == orjson.loads(expected.valid[value["event_id"]])
    assert dict(arrived.dead) == expected.invalid
    if exactly_once:
        assert len(arrived.dead) == len(expected.invalid)


def transport(kind: str, collector: CollectorProcess, key: str = WRITE_KEY) -> Transport:
    if kind == "grpc":
        return GrpcTransport(collector.grpc_target, key, timeout_s=20)
    return RestTransport(collector.url, key, timeout_s=20)


def clickstream(n: int, seed: int, bad_share: float) -> list[bytes]:
    return [encode(e) for e in islice(ClickstreamSource(150, seed, bad_share), n)]


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_valid_events_reach_the_raw_topic_and_the_others_the_dead_letters(
    collector: CollectorProcess, kafka: PlatformSettings, tmp_path: Path, kind: str
) -> None:
    bodies = clickstream(700, seed=101, bad_share=0.15)
    bodies += [encode(e) for e in islice(IoTSource(20, 101, 0.15), 300)]
    expected = Expected.of(bodies)
    assert len(expected.invalid) > 80 and FailureType.MALFORMED in expected.invalid.values()
    topics = Topics(kafka)

    spool = SqliteSpool(tmp_path / "spool.sqlite")
    sender = transport(kind, collector)
    stats = Emitter(sender, spool, batch_size=100).run(bodies)
    sender.close()
    spool.close()

    assert stats.error is None and stats.spooled == 0 and stats.retries == 0
    assert (stats.generated, stats.sent) == (1000, 1000)
    assert stats.accepted == len(expected.valid)
    assert stats.rejected == Counter(expected.invalid.values())
    check_arrival(topics.arrived(expected), expected, kind, exactly_once=True)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``tributary produce`` run, free of the caller's producer settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_PRODUCER__")}
    return {**env, **extra}


def table_rows(stdout: str) -> dict[str, int]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) == 2 and cells[1].isdigit():
            rows[cells[0]] = int(cells[1])
    return rows


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_cli_clickstream_summary_matches_kafka(
    collector: CollectorProcess, kafka: PlatformSettings, tmp_path: Path, kind: str
) -> None:
    start = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    # The CLI's run is reproducible from its seed and start: the test knows every event.
    bodies = [encode(e) for e in islice(ClickstreamSource(100, 5, 0.1, start), 500)]
    expected = Expected.of(bodies)
    topics = Topics(kafka)
    result = subprocess.run(
        [
            TRIBUTARY, "produce", "clickstream", "--events", "500", "--bad-share", "0.1",
            "--seed", "5", "--users", "100", "--start", start.isoformat(),
            "--transport", kind, "--url", collector.url, "--grpc-target", collector.grpc_target,
            "--api-key", WRITE_KEY, "--spool", str(tmp_path / "cli.sqlite"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=cli_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = table_rows(result.stdout)
    arrived = topics.arrived(expected)
    check_arrival(arrived, expected, kind, exactly_once=True)
    reasons = Counter(reason for _, reason in arrived.dead)
    assert summary == {
        "generated": 500,
        "sent": 500,
        "accepted": len(arrived.raw),
        "rejected": len(arrived.dead),
        **{f"rejected: {reason}": n for reason, n in reasons.items()},
        "retries": 0,
        "left in spool": 0,
    }
    assert 30 <= summary["rejected"] <= 80


def test_cli_file_replays_with_the_same_ids(
    collector: CollectorProcess, kafka: PlatformSettings, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {"ts": (now - timedelta(minutes=i)).replace(tzinfo=None).isoformat(), "sku": f"SKU-{i}",
         "qty": 1 + i % 3, "price": 9.5 + i, "who": f"c-{i % 7}"}
        for i in range(120)
    ]  # fmt: skip
    data = tmp_path / "carts.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(
        orjson.dumps(
            {
                "event_type": "iglu:com.tributary.shop/add_to_cart/jsonschema/1-0-0",
                "source": "cart-export",
                "timestamp": "ts",
                "timezone": "UTC",
                "payload": {"product_id": "sku", "quantity": "qty", "price": "price"},
                "constants": {"currency": "GBP"},
                "context": {"user_id": "who"},
            }
        )
    )
    from ingestion.producers.sources import FieldMapping, FileSource

    source = FileSource(data, FieldMapping.model_validate_json(mapping.read_bytes()))
    expected = Expected.of([encode(e) for e in source])
    assert len(expected.valid) == 120
    topics = Topics(kafka)
    command = [
        TRIBUTARY, "produce", "file", str(data), "--mapping", str(mapping), "--url", collector.url,
        "--api-key", WRITE_KEY, "--spool", str(tmp_path / "file.sqlite"), "--batch-size", "50",
    ]  # fmt: skip
    for _ in range(2):
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=300, check=False, env=cli_env()
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert table_rows(result.stdout)["accepted"] == 120
    arrived = topics.arrived(expected, at_least=240)
    ids = Counter(v["event_id"] for v in arrived.raw)
    assert set(ids) == set(expected.valid) and set(ids.values()) == {2}  # a replay: same ids


def test_cli_exits_non_zero_when_events_remain(tmp_path: Path) -> None:
    spool = tmp_path / "left.sqlite"
    result = subprocess.run(
        [
            TRIBUTARY, "produce", "iot", "--events", "30", "--batch-size", "10",
            "--url", f"http://127.0.0.1:{free_port()}", "--max-retries", "1", "--spool", str(spool),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=cli_env(TRIBUTARY_PRODUCER__RETRY__INITIAL_S="0.01"),
    )  # fmt: skip
    assert result.returncode == ExitCode.UNREACHABLE, result.stdout + result.stderr
    summary = table_rows(result.stdout)
    assert summary["left in spool"] == 10 and summary["sent"] == 0 and summary["retries"] == 1
    [line] = result.stderr.splitlines()
    assert "the collector" in line and f"10 events remain in {spool}" in line
    with SqliteSpool(spool) as kept:
        assert len(kept) == 10


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_spool_survives_a_collector_restart(
    own_collector: CollectorProcess, kafka: PlatformSettings, tmp_path: Path, kind: str
) -> None:
    bodies = clickstream(3000, seed=202, bad_share=0.05)
    expected = Expected.of(bodies)
    topics = Topics(kafka)
    spool = SqliteSpool(tmp_path / "spool.sqlite")
    sender = transport(kind, own_collector)
    failures: list[str] = []
    emitter = Emitter(
        sender,
        spool,
        batch_size=50,
        rate=1000,
        max_retries=1000,  # outlasts a slow collector start (about 0.25 s a retry)
        retry=RetrySettings(initial_s=0.05, max_s=0.5),
        on_failure=lambda error, attempt, delay: failures.append(str(error)),
    )
    worker = threading.Thread(target=emitter.run, args=(bodies,))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while emitter.stats.accepted < 800 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emitter.stats.accepted >= 800
        own_collector.stop()
        stopped_at = emitter.stats.sent
        time.sleep(2)
        own_collector.start()
        worker.join(300)
        assert not worker.is_alive()
    finally:
        emitter.stop()
        worker.join(30)
        sender.close()

    stats = emitter.stats
    assert stopped_at < 3000  # the outage hit the run mid-way
    assert failures and stats.retries > 0
    assert stats.error is None and stats.spooled == 0 and len(spool) == 0
    assert stats.sent == 3000 and stats.accepted == len(expected.valid)
    assert stats.rejected == Counter(expected.invalid.values())
    spool.close()
    arrived = topics.arrived(expected)
    check_arrival(arrived, expected, kind, exactly_once=False)
    ids = Counter(v["event_id"] for v in arrived.raw)
    assert len(ids) == len(expected.valid)  # every valid event, at least once


def test_a_restarted_producer_sends_its_spool_first(
    collector: CollectorProcess, kafka: PlatformSettings, tmp_path: Path
) -> None:
    bodies = clickstream(400, seed=303, bad_share=0.1)
    expected = Expected.of(bodies)
    path = tmp_path / "spool.sqlite"

    # No collector at this address: the events stay in the spool.
    spool = SqliteSpool(path)
    down = RestTransport(f"http://127.0.0.1:{free_port()}", WRITE_KEY, timeout_s=2)
    first = Emitter(
        down,
        spool,
        batch_size=100,
        max_retries=2,
        retry=RetrySettings(initial_s=0.01, max_s=0.02),
    )
    stats = first.run(bodies[:250])
    assert stats.error is not None and (stats.sent, stats.spooled) == (0, 100)
    first.emit(bodies[100:250])
    assert len(spool) == 250
    down.close()
    spool.close()

    topics = Topics(kafka)
    spool = SqliteSpool(path)
    batches: list[list[bytes]] = []
    up = RestTransport(collector.url, WRITE_KEY)
    second = Emitter(up, spool, batch_size=100, on_success=lambda r, b: batches.append(b))
    assert second.stats.from_spool == 250
    stats = second.run(bodies[250:])
    up.close()
    spool.close()
    assert [b for batch in batches for b in batch] == bodies  # the spooled ones first
    assert stats.error is None and stats.spooled == 0 and stats.generated == 150
    assert stats.sent == 400 and stats.accepted == len(expected.valid)
    check_arrival(topics.arrived(expected), expected, "rest", exactly_once=True)


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_a_refused_key_stops_without_retries_and_keeps_the_events(
    collector: CollectorProcess, kind: str
) -> None:
    sender = transport(kind, collector, key="trib_not_a_key")
    store = InMemoryStore()
    stats = Emitter(sender, store, batch_size=10, max_retries=5).run(clickstream(30, 9, 0.0))
    sender.close()
    assert stats.retries == 0 and stats.sent == 0 and len(store) == 10
    assert stats.error is not None
    assert ("401" if kind == "rest" else "UNAUTHENTICATED") in stats.error
