"""The real-time store's indices, as external assets: written by the real-time loader."""

from __future__ import annotations

import dagster as dg

from contract.search import DEADLETTERS, EVENTS, index_pattern
from resources.settings import SearchSettings


def index_assets(settings: SearchSettings) -> list[dg.AssetSpec]:
    """The index families, keyed and kinded by the engine in use (``["elasticsearch", ...]``)."""
    engine = settings.engine.value

    def spec(family: str, description: str, *sources: str) -> dg.AssetSpec:
        return dg.AssetSpec(
            key=[engine, family],
            description=description,
            deps=[["kafka", source] for source in sources],
            group_name="realtime",
            kinds={engine},
            metadata={"index_pattern": index_pattern(settings.index_prefix, family)},
        )

    return [
        spec(
            EVENTS,
            "Enriched events, one daily index by event time, _id = event_id (a replay "
            "overwrites), explicit mappings incl. geo_point; retention by deleting old indices.",
            "events_enriched",
        ),
        spec(
            DEADLETTERS,
            "The dead letters of the collector and of the enricher (field stage), one daily "
            "index by failure time, with reason, errors and the original payload.",
            "events_raw_dlq",
            "events_enriched_dlq",
        ),
    ]
