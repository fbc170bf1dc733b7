"""The whole stream on real servers, with topics, groups, indices and a lake prefix of its own.

``start_rig`` starts the five processes with ``cli.processes.Pipeline`` on the given
servers; ``Feed`` sends events over HTTP through the platform's producer; ``settle`` waits until
the reconciliation finds every accepted event in each of its destinations.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cli.processes import Pipeline, PipelineSettings
from enrichment.config import EnrichmentOptions
from ingestion.core.auth import new_key
from ingestion.core.config import ApiKey, CollectorOptions
from ingestion.producers.config import ProducerOptions
from ingestion.producers.emitter import Emitter, EmitterStats
from ingestion.producers.spool import SqliteSpool
from ingestion.producers.transports import make_transport
from resources.kafka import make_kafka_admin
from resources.s3 import ensure_buckets
from resources.settings import KafkaSettings, PlatformSettings, PrivacySettings, TopicNames
from resources.topics import ensure_topics, platform_topics
from runtime.retry import RetrySettings
from simulator.events import ClickstreamSource
from stack.private import free_port
from streaming.batch_loader import BatchLoaderOptions
from streaming.enricher import EnricherOptions
from streaming.realtime_loader import RealtimeLoaderOptions
from streaming.reconcile import Reconciler, Reconciliation, producer_problems


@dataclass
class Rig:
    pipeline: Pipeline
    settings: PipelineSettings
    key: str
    work: Path


def start_rig(
    kafka: PlatformSettings,
    servers: PlatformSettings,
    work: Path,
    enricher_dead_letter_after_s: float = 300,
    privacy: PrivacySettings | None = None,
) -> Rig:
    """Start the stream on ``kafka`` and ``servers``' S3 and OpenSearch, on names of its own.

    ``privacy``: the processes' privacy settings (pseudonyms), when not the defaults.
    """
    run = f"rig-{uuid.uuid4().hex[:8]}"
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
        search=servers.search.model_copy(update={"index_prefix": run}),
        privacy=privacy or PrivacySettings(),
        collector=CollectorOptions(
            port=free_port(),
            grpc_port=0,
            workers=1,
            api_keys=[ApiKey(producer="rig", sha256=key_hash)],
        ),
        enrichment=EnrichmentOptions(port=free_port()),
        enricher=EnricherOptions(
            group_id=f"{run}-enricher",
            batch_size=200,
            request_timeout_s=1.5,
            retry=RetrySettings(initial_s=0.2, max_s=1.0),
            metrics_port=free_port(),
            breaker_reset_s=2.0,
            dead_letter_after_s=enricher_dead_letter_after_s,
        ),
        realtime_loader=RealtimeLoaderOptions(
            group_id=f"{run}-realtime",
            batch_size=200,
            retry=RetrySettings(initial_s=0.5, max_s=2.0),
            metrics_port=free_port(),
        ),
        batch_loader=BatchLoaderOptions(
            group_id=f"{run}-batch",
            flush_max_events=300,
            flush_max_age_s=2.0,
            commit_interval_s=1.0,
            retry=RetrySettings(initial_s=0.5, max_s=2.0),
            metrics_port=free_port(),
        ),
    )
    ensure_topics(make_kafka_admin(settings.kafka), platform_topics(topics, settings.kafka))
    ensure_buckets(settings.s3)
    pipeline = Pipeline(settings, work / "logs", inherit_env=False)
    pipeline.start()
    return Rig(pipeline, settings, key, work)


class Feed:
    """Events sent over HTTP at a fixed rate, in a thread, by the platform's own producer."""

    def __init__(
        self,
        rig: Rig,
        events: int,
        rate: float | None,
        seed: int | None = None,
        start: datetime | None = None,
    ):
        options = ProducerOptions(
            collector_url=rig.pipeline.collector_url, api_key=rig.key, max_retries=30
        )
        spool = SqliteSpool(rig.work / f"spool-{uuid.uuid4().hex}.sqlite")
        self.emitter = Emitter.from_options(
            make_transport("rest", options), spool, options, rate=rate
        )
        source = ClickstreamSource(
            users=200,
            seed=seed if seed is not None else int(time.time()),
            bad_share=0.05,
            start=start,
        )
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


def settle(
    reconciler: Reconciler,
    rig: Rig,
    timeout: float = 240,
    producers: list[EmitterStats] | None = None,
) -> Reconciliation:
    """Wait until every accepted event has reached all its destinations (or time runs out).

    With ``producers``, the topics must also hold what the collector told them.
    """
    settled = reconciler.settle(timeout, exited=rig.pipeline.exited)
    dead = settled.exited
    assert not dead, f"{dead} exited: {rig.pipeline[dead[0]].log_tail()}"
    if producers is not None:
        problems = producer_problems(producers, settled.result)
        assert not problems, problems
    return settled.result
