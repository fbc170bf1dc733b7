"""The batch loader against real Kafka and SeaweedFS: exactly-once objects in the raw zone."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.raw_zone import EVENT_SCHEMA, object_name
from resources.kafka import make_kafka_consumer
from resources.s3 import make_s3_client
from resources.settings import PlatformSettings, S3Settings
from stack.manager import Stack
from stack.private import private_stack_settings
from streaming.batch_loader import BatchLoaderSettings
from tests.streaming.batch_helpers import (
    LakeObject,
    LoaderThread,
    enriched_event,
    hours_apart,
    loader_settings,
    produce,
    produce_raw,
    read_lake,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class SimulatedCrash(BaseException):
    """Raised by the upload hook: the loader dies between an upload and its commit."""


def assert_exactly_once(objects: list[LakeObject], expected_ids: set[str]) -> None:
    ids = [i for o in objects for i in o.table.column("event_id").to_pylist()]
    dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not dupes, f"{len(dupes)} events written twice"
    assert set(ids) == expected_ids
    # Every object holds exactly its named partition and offset range, no offset is in two.
    seen: dict[tuple[int, int], str] = {}
    ranges: dict[tuple[int, str], list[tuple[int, int]]] = collections.defaultdict(list)
    for o in objects:
        offsets = o.table.column("kafka_offset").to_pylist()
        assert set(o.table.column("kafka_partition").to_pylist()) == {o.partition}
        assert (min(offsets), max(offsets)) == (o.first, o.last), o.key
        assert o.key.endswith(object_name(o.topic, o.partition, o.first, o.last))
        folder = o.key.rsplit("/", 1)[0]
        ranges[(o.partition, folder)].append((o.first, o.last))
        for off in offsets:
            assert (o.partition, off) not in seen, f"offset in {seen[(o.partition, off)]}, {o.key}"
            seen[(o.partition, off)] = o.key
    for spans in ranges.values():
        spans.sort()
        for (_, a_last), (b_first, _) in itertools.pairwise(spans):
            assert a_last < b_first, f"overlapping objects {spans}"


def committed_offsets(settings: BatchLoaderSettings) -> dict[int, int]:
    from confluent_kafka import TopicPartition

    topic = settings.batch_loader.topic
    assert topic is not None
    consumer = make_kafka_consumer(settings.kafka, settings.batch_loader.group_id)
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def test_every_event_once_partitioned_by_event_hour_with_manifests(
    kafka: PlatformSettings, s3: PlatformSettings
) -> None:
    settings = loader_settings(kafka)
    topic, prefix = settings.batch_loader.topic, settings.s3.raw_prefix
    assert topic is not None
    events = [enriched_event(ts, i) for i, ts in enumerate(hours_apart(BASE, 120))]
    late = enriched_event(BASE - timedelta(days=2, minutes=13), 999)  # two days late
    produced = produce(kafka.kafka, topic, [*events, late])
    produce_raw(kafka.kafka, topic, b"{not json", 0)

    loader = LoaderThread(settings).start()
    try:
        end = loader.wait_caught_up()
    finally:
        loader.close()
    assert loader.error is None
    assert loader.stats.dead_letters == 1

    objects, manifests = read_lake(settings.s3, prefix)
    assert_exactly_once(objects, {p.event.event_id for p in produced})
    for o in objects:
        assert o.table.schema.equals(EVENT_SCHEMA, check_metadata=False)
        assert o.table.schema.metadata[b"tributary.schema"] == b"raw_events/1"
        for ts in o.table.column("event_timestamp").to_pylist():
            assert f"event_date={ts.date()}/event_hour={ts.hour:02d}/" in o.key
    folders = {o.key.removeprefix(prefix).rsplit("/", 1)[0] for o in objects}
    assert folders == {
        "event_date=2026-11-28/event_hour=08",
        "event_date=2026-11-28/event_hour=09",
        "event_date=2026-11-28/event_hour=10",
        "event_date=2026-11-26/event_hour=07",  # the late event, in its own partition
    }
    row = next(o for o in objects if "2026-11-26" in o.key).table.to_pylist()[0]
    assert row["event_id"] == late.event_id
    assert row["money"][0]["currency"] == "USD" and row["scores"] == [("bot_probability", 0.09)]
    assert row["event_vendor"] == "com.tributary.shop" and row["event_name"] == "purchase"

    # One manifest per object, written after it, with what a sensor needs.
    by_key = {m.key: m for m in manifests}
    assert set(by_key) == {o.key for o in objects}
    for o in objects:
        m = by_key[o.key]
        assert (m.rows, m.first_offset, m.last_offset) == (o.table.num_rows, o.first, o.last)
        times = o.table.column("event_timestamp").to_pylist()
        assert (m.min_event_time, m.max_event_time) == (min(times), max(times))

    # Committed offsets: the end of every partition (nothing left buffered).
    assert committed_offsets(settings) == end


def test_crash_between_upload_and_commit_rewrites_the_same_objects(
    kafka: PlatformSettings, s3: PlatformSettings
) -> None:
    settings = loader_settings(kafka, flush_max_events=10, flush_max_age_s=30.0)
    topic, prefix = settings.batch_loader.topic, settings.s3.raw_prefix
    assert topic is not None
    events = [enriched_event(ts, i) for i, ts in enumerate(hours_apart(BASE, 200))]
    produced = produce(kafka.kafka, topic, events)

    uploads: list[str] = []

    def crash_on_fifth(key: str) -> None:
        uploads.append(key)
        if len(uploads) == 5:
            raise SimulatedCrash(key)

    first = LoaderThread(settings, after_upload=crash_on_fifth).start()
    first.thread.join(60)
    assert isinstance(first.error, SimulatedCrash)
    crashed_key = str(first.error)
    before, _ = read_lake(settings.s3, prefix)
    assert crashed_key in {o.key for o in before}
    committed_at_crash = committed_offsets(settings)

    # Restart with different batching: replay must still reproduce the planned objects.
    again = settings.model_copy(
        update={
            "batch_loader": settings.batch_loader.model_copy(
                update={"flush_max_events": 1000, "flush_max_age_s": 1.0}
            )
        }
    )
    second = LoaderThread(again).start()
    try:
        second.wait_caught_up()
    finally:
        second.close()
    assert second.error is None
    assert crashed_key in second.stats.objects_written, "the uncommitted object was not rewritten"
    objects, _ = read_lake(settings.s3, prefix)
    assert {o.key for o in before} <= {o.key for o in objects}
    assert_exactly_once(objects, {p.event.event_id for p in produced})
    assert any(committed_at_crash[p] < o for p, o in committed_offsets(settings).items())


@pytest.fixture()
def private_seaweedfs(tmp_path: Path) -> Iterator[tuple[Stack, S3Settings]]:
    """A SeaweedFS of this test's own, which it may stop and start at will."""
    settings = private_stack_settings(tmp_path / "state")
    stack = Stack(settings)
    stack.up(["seaweedfs"])
    yield stack, settings.s3
    stack.down(["seaweedfs"])


def test_s3_outage_pauses_retries_and_loses_nothing(
    kafka: PlatformSettings, private_seaweedfs: tuple[Stack, S3Settings]
) -> None:
    import time

    stack, s3 = private_seaweedfs
    settings = loader_settings(kafka, s3)
    topic, prefix = settings.batch_loader.topic, settings.s3.raw_prefix
    assert topic is not None
    stamps = hours_apart(BASE, 120)
    produced = produce(
        kafka.kafka, topic, [enriched_event(t, i) for i, t in enumerate(stamps[:60])]
    )
    loader = LoaderThread(settings).start()
    try:
        before = loader.wait_caught_up()
        stack.down(["seaweedfs"])
        produced += produce(
            kafka.kafka, topic, [enriched_event(t, i) for i, t in enumerate(stamps[60:])]
        )
        deadline = time.monotonic() + 120
        while loader.stats.flush_failures < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert loader.stats.flush_failures >= 3 and loader.stats.paused
        assert dict(loader.stats.committed) == before, "committed past unwritten events"
        stack.up(["seaweedfs"])
        loader.wait_caught_up(timeout=180)
        assert not loader.stats.paused
    finally:
        loader.close()
    assert loader.error is None
    objects, _ = read_lake(s3, prefix)
    assert_exactly_once(objects, {p.event.event_id for p in produced})


def test_buffered_bytes_stay_under_the_bound(kafka: PlatformSettings, s3: PlatformSettings) -> None:
    bound = 12_000
    settings = loader_settings(
        kafka, flush_max_events=100_000, flush_max_age_s=3.0, max_buffered_bytes=bound
    )
    topic, prefix = settings.batch_loader.topic, settings.s3.raw_prefix
    assert topic is not None
    events = [enriched_event(ts, i) for i, ts in enumerate(hours_apart(BASE, 300))]
    produced = produce(kafka.kafka, topic, events)
    loader = LoaderThread(settings).start()
    try:
        loader.wait_caught_up()
    finally:
        loader.close()
    assert loader.error is None
    assert 0 < loader.stats.max_buffered_bytes <= bound
    objects, _ = read_lake(settings.s3, prefix)
    assert len(objects) >= 300 * 1000 // bound  # flushed under memory pressure, not by count
    assert_exactly_once(objects, {p.event.event_id for p in produced})


def test_kill_9_mid_stream_then_restart_writes_every_event_once(
    kafka: PlatformSettings, s3: PlatformSettings, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    settings = loader_settings(kafka, flush_max_events=10, flush_max_age_s=30.0)
    topic, prefix = settings.batch_loader.topic, settings.s3.raw_prefix
    assert topic is not None
    events = [enriched_event(ts, i) for i, ts in enumerate(hours_apart(BASE, 1000, hours=5))]
    produced = produce(kafka.kafka, topic, events)

    opts = settings.batch_loader
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(
        {
            "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "TRIBUTARY_S3__ENDPOINT_URL": settings.s3.endpoint_url,
            "TRIBUTARY_BATCH_LOADER__GROUP_ID": opts.group_id,
            "TRIBUTARY_BATCH_LOADER__TOPIC": topic,
            "TRIBUTARY_BATCH_LOADER__DLQ_TOPIC": str(opts.dlq_topic),
            "TRIBUTARY_S3__RAW_PREFIX": prefix,
            "TRIBUTARY_BATCH_LOADER__FLUSH_MAX_EVENTS": "10",
            "TRIBUTARY_BATCH_LOADER__FLUSH_MAX_AGE_S": "30",
            "TRIBUTARY_BATCH_LOADER__METRICS_PORT": "0",
        }
    )
    client = make_s3_client(settings.s3)
    with (tmp_path / "loader.log").open("w") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "tributary"), "run", "batch-loader"],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                listed = client.list_objects_v2(Bucket=settings.s3.raw_bucket, Prefix=prefix)
                if sum(o["Key"].endswith(".parquet") for o in listed.get("Contents", [])) >= 15:
                    break
                assert proc.poll() is None, (tmp_path / "loader.log").read_text()
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(10)
    before, _ = read_lake(settings.s3, prefix)
    assert 15 <= len(before) < 100, "the kill did not land mid-stream"
    lines = (tmp_path / "loader.log").read_text().splitlines()
    assert sum(f"assigned {topic}[" in line for line in lines) == 1, lines[:20]

    loader = LoaderThread(settings).start()
    try:
        loader.wait_caught_up(timeout=120)
    finally:
        loader.close()
    assert loader.error is None
    objects, _ = read_lake(settings.s3, prefix)
    assert {o.key for o in before} <= {o.key for o in objects}
    assert_exactly_once(objects, {p.event.event_id for p in produced})
