"""The Kafka topics the stream workers read and write, as external assets.

They are not materialised by Dagster; declaring them puts the streaming half of the
platform in the lineage graph, upstream of the lake and the curated tables. The topics the
workers consume or dead-letter into are observable: ``stream_observation_job`` scrapes the
workers' ``/metrics`` and records each topic's consumer lag and dead-letter rate.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from platform_assets.assets.streaming.observations import (
    dead_letter_metadata,
    lag_metadata,
    scrape_workers,
)
from resources.settings import KafkaSettings, TopicNames
from runtime.worker import WorkerEndpoints

RAW = dg.AssetKey(["kafka", "events_raw"])
ENRICHED = dg.AssetKey(["kafka", "events_enriched"])
ENRICHED_DLQ = dg.AssetKey(["kafka", "events_enriched_dlq"])
LOADER_DLQ = dg.AssetKey(["kafka", "events_loader_dlq"])
RAW_DLQ = dg.AssetKey(["kafka", "events_raw_dlq"])
OBSERVED = [RAW, ENRICHED, ENRICHED_DLQ, LOADER_DLQ, RAW_DLQ]


def _spec(
    key: str, topic: str, description: str, deps: list[str], retention_days: float
) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=["kafka", key],
        description=description,
        deps=[["kafka", d] for d in deps],
        group_name="streaming",
        kinds={"kafka"},
        # Every topic holds personal data (context ids, the client IP) for this long; an
        # erasure cannot shorten it (docs/privacy.md).
        metadata={"topic": topic, "retention_days": retention_days},
    )


def topic_assets(
    names: TopicNames, kafka: KafkaSettings | None = None, endpoints: WorkerEndpoints | None = None
) -> list[dg.AssetSpec | dg.AssetsDefinition]:
    endpoints = endpoints or WorkerEndpoints()
    kafka = kafka or KafkaSettings()
    events, dead = kafka.events_retention_days, kafka.dead_letter_retention_days
    observed = [
        _spec(
            "events_raw",
            names.raw,
            "Events accepted by the collector over HTTP or gRPC: envelope checked, metadata "
            "added, keyed by user (else session, device, event id). Observed: the enricher "
            "group's lag.",
            [],
            events,
        ),
        _spec(
            "events_enriched",
            names.enriched,
            "Events whose payload passed its schema, with their enrichments and lineage. "
            "Observed: the lag of the real-time and the batch loader groups.",
            ["events_raw"],
            events,
        ),
        _spec(
            "events_enriched_dlq",
            names.enriched_dlq,
            "Events that failed schema validation or enrichment, with a reason code. "
            "Observed: the enricher's dead letters by reason and their share of its input.",
            ["events_raw"],
            dead,
        ),
        _spec(
            "events_loader_dlq",
            names.loader_dlq,
            "Documents the search store rejected, with its error. Observed: the loaders' dead "
            "letters and their share of their input.",
            ["events_enriched", "events_enriched_dlq", "events_raw_dlq"],
            dead,
        ),
        _spec(
            "events_raw_dlq",
            names.collector_dlq,
            "Requests and events the collector refused (size, malformed JSON, envelope, "
            "unknown event type), with the original bytes and the reasons. Observed: the "
            "real-time loader group's lag (it indexes them with the enricher's dead letters).",
            [],
            dead,
        ),
    ]

    @dg.multi_observable_source_asset(specs=observed, name="stream_workers")  # type: ignore[untyped-decorator]
    def stream_workers() -> Iterator[dg.ObserveResult]:
        """Scrape the stream workers' metrics; a worker that is down is reported, not raised."""
        workers = scrape_workers(endpoints)
        enricher, realtime, batch = (
            workers["enricher"],
            workers["realtime-loader"],
            workers["batch-loader"],
        )
        yield dg.ObserveResult(asset_key=RAW, metadata=lag_metadata(enricher, names.raw))
        yield dg.ObserveResult(
            asset_key=ENRICHED,
            metadata={
                **lag_metadata(realtime, names.enriched),
                **lag_metadata(batch, names.enriched),
            },
        )
        yield dg.ObserveResult(asset_key=ENRICHED_DLQ, metadata=dead_letter_metadata(enricher))
        yield dg.ObserveResult(
            asset_key=RAW_DLQ, metadata=lag_metadata(realtime, names.collector_dlq)
        )
        yield dg.ObserveResult(
            asset_key=LOADER_DLQ,
            metadata={**dead_letter_metadata(realtime), **dead_letter_metadata(batch)},
        )

    return [stream_workers]


stream_observation_job = dg.define_asset_job(
    "stream_observation_job",
    selection=dg.AssetSelection.assets(*OBSERVED),
    description="Observe the topics' consumer lag and dead-letter rate from the workers.",
)

stream_observation_schedule = dg.ScheduleDefinition(
    name="stream_observation_schedule",
    job=stream_observation_job,
    cron_schedule="* * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
