"""The Kafka topics the stream workers read and write, as external assets.

They are not materialised by Dagster; declaring them puts the streaming half of the
platform in the lineage graph, upstream of the lake and the curated tables.
"""

from __future__ import annotations

import dagster as dg

from resources.settings import TopicNames


def topic_assets(names: TopicNames) -> list[dg.AssetSpec]:
    def spec(key: str, topic: str, description: str, deps: list[str]) -> dg.AssetSpec:
        return dg.AssetSpec(
            key=["kafka", key],
            description=description,
            deps=[["kafka", d] for d in deps],
            group_name="streaming",
            kinds={"kafka"},
            metadata={"topic": topic},
        )

    return [
        spec(
            "events_raw",
            names.raw,
            "Events accepted by the collector over HTTP or gRPC: envelope checked, metadata "
            "added, keyed by user (else session, device, event id).",
            [],
        ),
        spec(
            "events_raw_dlq",
            names.collector_dlq,
            "Requests and events the collector refused (size, malformed JSON, envelope, "
            "unknown event type), with the original bytes and the reasons.",
            [],
        ),
        spec(
            "events_enriched",
            names.enriched,
            "Events whose payload passed its schema, with their enrichments and lineage.",
            ["events_raw"],
        ),
        spec(
            "events_enriched_dlq",
            names.enriched_dlq,
            "Events that failed schema validation or enrichment, with a reason code.",
            ["events_raw"],
        ),
        spec(
            "events_loader_dlq",
            names.loader_dlq,
            "Documents the search store rejected, with its error.",
            ["events_enriched", "events_enriched_dlq"],
        ),
    ]
