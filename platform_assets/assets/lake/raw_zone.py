"""The raw zone: Parquet written by the batch loader, one folder per event date and hour.

Dagster does not write it, so it is an external asset; the raw-zone sensor records a
materialization of a day's partition whenever the loader adds objects to it, with the counts
of objects and rows, so the UI shows what arrived and when.
"""

from __future__ import annotations

import dagster as dg

from platform_assets.partitions import daily
from resources.settings import S3Settings

RAW_EVENTS = dg.AssetKey(["s3", "raw_events"])


def raw_zone_asset(s3: S3Settings) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=RAW_EVENTS,
        description="Enriched events as Parquet (zstd), partitioned by event date and hour, "
        "written exactly once per Kafka offset range by the batch loader; manifests under "
        "`_manifests/` list every object as it is written.",
        deps=[dg.AssetKey(["kafka", "events_enriched"])],
        group_name="lake",
        kinds={"s3", "parquet"},
        partitions_def=daily,
        metadata={
            "location": dg.MetadataValue.url(f"s3://{s3.raw_bucket}/{s3.raw_prefix}"),
            "layout": f"{s3.raw_prefix}event_date=YYYY-MM-DD/event_hour=HH/"
            "<topic>+<partition>+<first>-<last>.parquet",
        },
    )
