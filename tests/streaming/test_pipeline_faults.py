"""Reliability of the whole stream under faults, reconciled by ``event_id`` afterwards.

The five processes run as a user runs them (``tributary run ...``), on real Kafka, SeaweedFS
and OpenSearch; the SeaweedFS and OpenSearch are the module's own, so stopping them disturbs
no other test. Each test sends events over HTTP (a share of them broken), injects one fault
while they flow, lets the pipeline recover, and then proves with
:class:`streaming.reconcile.Reconciler` that every accepted event is exactly once in the
enriched topic or the dead-letter topic, exactly once in OpenSearch, and exactly once in the
lake with no two objects covering the same offsets.
"""

from __future__ import annotations

import http.server
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from enrichment.config import EnrichmentOptions
from ingestion.core.auth import new_key
from ingestion.core.config import ApiKey, CollectorOptions
from ingestion.producers.config import ProducerOptions
from ingestion.producers.emitter import Emitter, EmitterStats
from ingestion.producers.sources import ClickstreamSource
from ingestion.producers.spool import SqliteSpool
from ingestion.producers.transports import make_transport
from resources.kafka import make_kafka_admin
from resources.s3 import ensure_buckets
from resources.settings import KafkaSettings, OpenSearchSettings, PlatformSettings, TopicNames
from resources.topics import ensure_topics, platform_topics
from stack.manager import Stack
from stack.processes import Pipeline, PipelineSettings
from streaming.batch_loader import BatchLoaderOptions
from streaming.enricher import EnricherOptions
from streaming.realtime_loader import RealtimeLoaderOptions
from streaming.reconcile import Reconciler, Reconciliation
from tests.ingestion.conftest import free_port
from tests.private_servers import private_stack_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 5000
Fault = Callable[[Reconciler], None]
RATE = 500.0  # events/s: the fault lands while events flow


@dataclass
class Rig:
    stack: Stack
    pipeline: Pipeline
    settings: PipelineSettings
    key: str
    work: Path


@pytest.fixture(scope="module")
def rig(kafka: PlatformSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("faults")
    servers = private_stack_settings(work / "state")
    stack = Stack(servers)
    stack.up(["seaweedfs", "opensearch"])
    run = f"faults-{uuid.uuid4().hex[:8]}"
    key, key_hash = new_key()
    topics = TopicNames(
        raw=f"{run}.raw",
        collector_dlq=f"{run}.raw.dlq",
        enriched=f"{run}.enriched",
        enriched_dlq=f"{run}.enriched.dlq",
        loader_dlq=f"{run}.loader.dlq",
    )
    settings = PipelineSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka.kafka.bootstrap_servers, partitions=3),
        topics=topics,
        s3=servers.s3.model_copy(update={"raw_prefix": f"{run}/"}),
        opensearch=OpenSearchSettings(url=servers.opensearch.url, index_prefix=run),
        collector=CollectorOptions(
            port=free_port(),
            grpc_port=0,
            workers=1,
            api_keys=[ApiKey(producer="faults", sha256=key_hash)],
        ),
        enrichment=EnrichmentOptions(port=free_port()),
        enricher=EnricherOptions(
            group_id=f"{run}-enricher",
            batch_size=200,
            request_timeout_s=1.5,
            backoff_cap_s=1.0,
            breaker_reset_s=2.0,
            dead_letter_after_s=600,  # no outage here lasts that long: nothing may be dead-lettered
        ),
        realtime_loader=RealtimeLoaderOptions(
            group_id=f"{run}-realtime", batch_size=200, retry_backoff_max_s=2.0
        ),
        batch_loader=BatchLoaderOptions(
            group_id=f"{run}-batch",
            flush_max_events=300,
            flush_max_age_s=2.0,
            commit_interval_s=1.0,
            retry_backoff_max_s=2.0,
        ),
    )
    ensure_topics(make_kafka_admin(settings.kafka), platform_topics(topics, settings.kafka))
    ensure_buckets(settings.s3)
    pipeline = Pipeline(settings, work / "logs", inherit_env=False)
    pipeline.start()
    yield Rig(stack, pipeline, settings, key, work)
    pipeline.stop()
    stack.down(["opensearch", "seaweedfs"])


class Feed:
    """Events sent over HTTP at a fixed rate, in a thread, by the platform's own producer."""

    def __init__(self, rig: Rig, events: int = EVENTS, rate: float = RATE) -> None:
        options = ProducerOptions(
            collector_url=rig.pipeline.collector_url, api_key=rig.key, max_retries=30
        )
        spool = SqliteSpool(rig.work / f"spool-{uuid.uuid4().hex}.sqlite")
        self.emitter = Emitter.from_options(
            make_transport("rest", options), spool, options, rate=rate
        )
        source = ClickstreamSource(users=200, seed=int(time.time()), bad_share=0.05)
        self.stats: EmitterStats | None = None
        self._thread = threading.Thread(
            target=lambda: setattr(self, "stats", self.emitter.run(source, events))
        )

    def start(self) -> Feed:
        self._thread.start()
        return self

    def join(self, timeout: float = 120) -> EmitterStats:
        self._thread.join(timeout)
        assert self.stats is not None, "the producer did not finish"
        return self.stats


def settle(reconciler: Reconciler, rig: Rig, timeout: float = 240) -> Reconciliation:
    """Wait until every accepted event has reached all its destinations (or time runs out)."""
    deadline = time.monotonic() + timeout
    result = reconciler.collect()
    while not result.settled and time.monotonic() < deadline:
        dead = [p.name for p in rig.pipeline if not p.running()]
        assert not dead, f"{dead} exited: {rig.pipeline[dead[0]].log_tail()}"
        time.sleep(1)
        result = reconciler.collect()
    return result


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run_with_fault(rig: Rig, fault: Fault) -> Reconciliation:
    """Send events, apply ``fault`` mid-stream, recover, and return the reconciliation."""
    with Reconciler(rig.settings) as reconciler:
        feed = Feed(rig).start()
        fault(reconciler)
        stats = feed.join()
        result = settle(reconciler, rig)
    assert not result.problems(), result.problems()
    # Everything the collector acknowledged is on the raw topic, and nothing else.
    assert stats.sent == EVENTS and stats.error is None
    assert len(result.accepted) == stats.accepted
    enriched = set(result.enriched) & set(result.accepted)
    dead = set(result.enriched_dead_letters) & set(result.accepted)
    assert len(enriched) + len(dead) == stats.accepted
    assert len(enriched) > 0.9 * stats.accepted
    assert set(result.enriched_dead_letter_reasons) <= {"schema_violation"}, (
        result.enriched_dead_letter_reasons
    )
    assert sum(result.indexed_events.values()) == len(enriched)
    assert sum(result.lake_rows.values()) == len(enriched)
    return result


def progressed(reconciler: Reconciler, stage: Callable[[Reconciliation], int]) -> bool:
    return stage(reconciler.collect()) > 200


def kill_and_restart(rig: Rig, name: str, stage: Callable[[Reconciliation], int]) -> Fault:
    def fault(reconciler: Reconciler) -> None:
        wait_until(lambda: progressed(reconciler, stage), 60, f"{name} to make progress")
        process = rig.pipeline[name]
        process.stop(signal.SIGKILL)
        time.sleep(2)  # events keep arriving while it is down
        process.start()

    return fault


def test_kill_9_of_the_enricher(rig: Rig) -> None:
    run_with_fault(rig, kill_and_restart(rig, "enricher", lambda r: len(r.enriched)))


def test_kill_9_of_the_realtime_loader(rig: Rig) -> None:
    run_with_fault(
        rig, kill_and_restart(rig, "realtime-loader", lambda r: sum(r.indexed_events.values()))
    )


def test_kill_9_of_the_batch_loader(rig: Rig) -> None:
    result = run_with_fault(
        rig, kill_and_restart(rig, "batch-loader", lambda r: sum(r.lake_rows.values()))
    )
    assert result.lake_objects > 2


def test_enrichment_api_times_out_for_a_while(rig: Rig) -> None:
    """The API freezes (SIGSTOP): every call times out; the enricher waits, then resumes."""
    api = rig.pipeline["enrichment-api"]

    def fault(reconciler: Reconciler) -> None:
        wait_until(lambda: progressed(reconciler, lambda r: len(r.enriched)), 60, "enrichment")
        api.send(signal.SIGSTOP)
        try:
            time.sleep(8)
        finally:
            api.send(signal.SIGCONT)

    run_with_fault(rig, fault)


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(500)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *_: object) -> None:
        pass


def test_enrichment_api_answers_500_for_a_while(rig: Rig) -> None:
    """A broken deployment answers 500 on the API's address; then the real API is back."""
    api = rig.pipeline["enrichment-api"]
    options = rig.settings.enrichment

    def fault(reconciler: Reconciler) -> None:
        wait_until(lambda: progressed(reconciler, lambda r: len(r.enriched)), 60, "enrichment")
        api.stop()
        server = http.server.ThreadingHTTPServer((options.host, options.port), _Failing)
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            time.sleep(6)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        api.start()

    run_with_fault(rig, fault)


def test_opensearch_stopped_for_a_while(rig: Rig) -> None:
    def fault(reconciler: Reconciler) -> None:
        wait_until(
            lambda: progressed(reconciler, lambda r: sum(r.indexed_events.values())),
            60,
            "indexing",
        )
        rig.stack.down(["opensearch"])
        time.sleep(6)
        rig.stack.up(["opensearch"])

    run_with_fault(rig, fault)


def test_s3_stopped_for_a_while(rig: Rig) -> None:
    def fault(reconciler: Reconciler) -> None:
        wait_until(
            lambda: progressed(reconciler, lambda r: sum(r.lake_rows.values())), 60, "the lake"
        )
        rig.stack.down(["seaweedfs"])
        time.sleep(6)
        rig.stack.up(["seaweedfs"])

    run_with_fault(rig, fault)
