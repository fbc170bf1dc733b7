"""How long ``tributary trace`` takes on a day of ``--events`` events, look-up by look-up.

On the running servers (Kafka, S3, the search store), under names of its own (topics
``bench-trace-<tag>.*``, raw prefix ``bench-trace/<tag>/``, index prefix ``bench-trace-<tag>``),
removed at the end:

1. produces ``--events`` page views of ``--users`` users to the raw topic (6 partitions, keyed
   and stamped as the collector does, their times spread over today up to now), then the same
   events as enriched records (lineage pointing at their raw record) to the enriched topic;
2. runs the batch loader (``streaming.batch_loader.run``, its default flush sizes) until it has
   written the whole day to the raw zone;
3. materialises the curated chain for the day into a local (SQLite) Iceberg catalog;
4. indexes the traced event's document as the real-time loader does (the look-up by ``_id``
   does not depend on how many documents the index holds);
5. traces one event of the middle of the day and an unknown id with the hints a user may have,
   ``--rounds`` times each, and prints the median seconds, each stage's, and what was read.

    uv run python benchmarks/bench_trace.py --events 1000000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
from bench_enricher import drop_topics, say

from contract.envelope import identity_key, rfc3339
from contract.search import EVENTS, index_name
from platform_assets.assets.lake.curated import CURATED_ASSETS
from platform_assets.resources import resources_for
from privacy.trace import Hints, Stage, Trace, Tracer
from resources.kafka import (
    end_offsets,
    key_partition,
    make_kafka_admin,
    make_kafka_consumer,
    make_kafka_producer,
)
from resources.s3 import ensure_buckets, make_s3_client
from resources.search import index_body, make_search_store
from resources.search_indices import IndexLayout, ensure_templates
from resources.settings import LakeSettings, PlatformSettings, Profile, TopicNames
from resources.topics import ensure_topics, platform_topics
from streaming.batch_loader import BatchLoaderSettings, LoaderStats, run

PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"


def events(n: int, users: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    span = (end - start).total_seconds()
    out = []
    for i in range(n):
        ts = start + timedelta(seconds=span * i / n)
        user = f"u-{(i * 7919) % users}"
        out.append(
            {
                "event_id": str(uuid.UUID(int=(i + 1) * 0x9E3779B97F4A7C15 % (1 << 128))),
                "event_type": PAGE_VIEW,
                "event_timestamp": rfc3339(ts),
                "source": "bench-trace",
                "payload": {"page_url": f"https://shop.example.com/p/{i % 500}"},
                "context": {"user_id": user, "session_id": f"s-{user}-{i // 40}"},
                "collector": {
                    "received_at": rfc3339(ts + timedelta(milliseconds=40)),
                    "collector_id": "bench",
                    "request_id": f"r-{i // 50}",
                    "producer": "bench",
                    "client_ip": "203.0.113.7",
                    "user_agent": "Mozilla/5.0",
                    "path": "rest",
                },
            }
        )
    return out


def produce(
    settings: PlatformSettings, topic: str, records: list[tuple[str, bytes, int]]
) -> list[tuple[int, int]]:
    """Produce ``(key, value, timestamp ms)``; return each record's (partition, offset)."""
    producer = make_kafka_producer(settings.kafka, **{"linger.ms": 50, "batch.size": 1_000_000})
    where: list[tuple[int, int]] = [(-1, -1)] * len(records)

    def report(i: int) -> Callable[[Any, Any], None]:
        def done(err: Any, msg: Any) -> None:
            if err is None:
                where[i] = (msg.partition(), msg.offset())

        return done

    for i, (key, value, ts) in enumerate(records):
        while True:
            try:
                producer.produce(topic, value, key=key, timestamp=ts, on_delivery=report(i))
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    assert all(p >= 0 for p, _ in where), "not every record was delivered"
    return where


def load_raw_zone(settings: PlatformSettings, tag: str) -> float:
    loader = BatchLoaderSettings(
        kafka=settings.kafka,
        topics=settings.topics,
        s3=settings.s3,
        batch_loader={"group_id": f"bench-trace-{tag}", "metrics_port": 0, "flush_max_age_s": 5},
    )
    stop, stats = threading.Event(), LoaderStats()
    thread = threading.Thread(target=run, args=(loader, stop, stats), daemon=True)
    began = time.monotonic()
    thread.start()
    consumer = make_kafka_consumer(settings.kafka, f"bench-trace-ends-{tag}")
    end = end_offsets(consumer, settings.topics.enriched)
    consumer.close()
    while not all(stats.committed.get(p, -1) == o for p, o in end.items()):
        assert thread.is_alive(), "the batch loader stopped"
        time.sleep(0.5)
    stop.set()
    thread.join(60)
    return time.monotonic() - began


def timed(tracer: Tracer, event_id: str, hints: Hints, rounds: int) -> tuple[float, Trace]:
    seconds, last = [], None
    for _ in range(rounds):
        began = time.monotonic()
        last = tracer.trace(event_id, hints)
        seconds.append(time.monotonic() - began)
    assert last is not None
    return statistics.median(seconds), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    base = PlatformSettings()
    names = TopicNames(
        raw=f"bench-trace-{tag}.raw",
        collector_dlq=f"bench-trace-{tag}.raw.dlq",
        enriched=f"bench-trace-{tag}.enriched",
        enriched_dlq=f"bench-trace-{tag}.enriched.dlq",
        loader_dlq=f"bench-trace-{tag}.loader.dlq",
    )
    work = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    settings = PlatformSettings(
        profile=Profile.LOCAL,
        kafka=base.kafka.model_copy(update={"partitions": 6}),
        topics=names,
        s3=base.s3.model_copy(update={"raw_prefix": f"bench-trace/{tag}/"}),
        search=base.search.model_copy(update={"index_prefix": f"bench-trace-{tag}"}),
        lake=LakeSettings(local_root=work / "lake"),
    )
    store = make_search_store(settings.search)
    try:
        ensure_topics(make_kafka_admin(settings.kafka), platform_topics(names, settings.kafka))
        ensure_buckets(settings.s3)
        now = datetime.now(UTC)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        began = time.monotonic()
        day = events(args.events, args.users, day_start, now - timedelta(minutes=1))
        say(f"{len(day):,} events generated in {time.monotonic() - began:.1f}s")

        def stamp(e: dict[str, Any]) -> int:
            return int(datetime.fromisoformat(e["collector"]["received_at"]).timestamp() * 1000)

        began = time.monotonic()
        keyed = [(identity_key(e["context"], e["event_id"]) or "", e) for e in day]
        raw = produce(settings, names.raw, [(k, orjson.dumps(e), stamp(e)) for k, e in keyed])
        enriched_at = rfc3339(now)
        enriched = produce(
            settings,
            names.enriched,
            [
                (
                    k,
                    orjson.dumps(
                        {
                            **e,
                            "enrichment": {},
                            "lineage": {
                                "enricher_version": "bench",
                                "schema_version": "1-0-0",
                                "source_topic": names.raw,
                                "source_partition": p,
                                "source_offset": o,
                                "enriched_at": enriched_at,
                            },
                        }
                    ),
                    stamp(e) + 5,
                )
                for (k, e), (p, o) in zip(keyed, raw, strict=True)
            ],
        )
        say(f"raw and enriched topics filled in {time.monotonic() - began:.1f}s")
        assert all(p == key_partition(k, 6) for (k, _), (p, _) in zip(keyed, raw, strict=True))
        say(f"the raw zone written by the batch loader in {load_raw_zone(settings, tag):.1f}s")
        listing = make_s3_client(settings.s3).list_objects_v2(
            Bucket=settings.s3.raw_bucket, Prefix=f"{settings.s3.raw_prefix}event_date="
        )
        say(f"  ({listing.get('KeyCount', 0)} objects listed in the first page)")
        began = time.monotonic()
        result = dg.materialize(
            CURATED_ASSETS,
            partition_key=day_start.date().isoformat(),
            resources=resources_for(settings),
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        say(f"curated the day in {time.monotonic() - began:.1f}s")

        middle = len(day) // 2
        event, (p, o) = day[middle], enriched[middle]
        layout = IndexLayout(settings.search.index_prefix)
        ensure_templates(store, layout)
        doc = {
            **orjson.loads(orjson.dumps(event)),
            "loader": {"topic": names.enriched, "partition": p, "offset": o},
        }
        ts = datetime.fromisoformat(event["event_timestamp"])
        index = index_name(settings.search.index_prefix, EVENTS, ts.date())
        store.bulk(index_body([(index, event["event_id"], doc)]))
        store.refresh(f"{settings.search.index_prefix}-*")
        empty = settings.model_copy(
            update={"search": settings.search.model_copy(update={"index_prefix": "none-" + tag})}
        )
        user = event["context"]["user_id"]
        at = datetime.fromisoformat(event["collector"]["received_at"])
        unknown = str(uuid.uuid4())
        cases = [
            ("no hint, the search store has it", settings, event["event_id"], Hints()),
            ("--date only", empty, event["event_id"], Hints(day=ts.date())),
            ("--date --user-id", empty, event["event_id"], Hints(day=ts.date(), user_id=user)),
            ("--at only", empty, event["event_id"], Hints(at=at)),
            ("--at --user-id", empty, event["event_id"], Hints(at=at, user_id=user)),
            ("unknown id, --date only", empty, unknown, Hints(day=ts.date())),
            ("unknown id, --at only", empty, unknown, Hints(at=at)),
            ("unknown id, no hint", settings, unknown, Hints()),
        ]
        say(f"\n{args.events:,} events on {day_start.date()}; median of {args.rounds} rounds")
        for name, case_settings, event_id, hints in cases:
            with Tracer(case_settings) as tracer:
                seconds, trace = timed(tracer, event_id, hints, args.rounds)
            say(f"\n{name}: {seconds:.2f}s, {trace.outcome}")
            for step in trace.steps:
                if step.stage is Stage.SEARCH or step.seconds > 0.01 or step.state != "absent":
                    say(f"  {step.stage:<15} {step.state:<14} {step.seconds:6.2f}s  {step.how}")
    finally:
        drop_topics(settings.kafka, list(names.model_dump().values()))
        s3 = make_s3_client(settings.s3)
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.s3.raw_bucket, Prefix=settings.s3.raw_prefix
        ):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=settings.s3.raw_bucket, Key=item["Key"])
        for name in store.indices(f"{settings.search.index_prefix}-*", closed=True):
            store.delete_index(name)
        for family in ("events", "deadletters"):
            store.delete_template(f"{settings.search.index_prefix}-{family}")
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
