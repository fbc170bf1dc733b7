"""The raw-zone sensor: new Parquet objects in S3 launch the event-date partitions they fall in.

The batch loader writes a manifest after every data object, under
``<prefix>_manifests/flushed_date=<day>/<UTC write time>_<object>.json``, so manifest keys sort
by the time they were written. The sensor lists manifests after its cursor (``StartAfter``),
which costs one LIST request per thousand new objects however large the lake grows, groups
them by the event date of their object, and for each date:

- records a materialization of the external ``s3/raw_events`` partition, with the counts of
  new objects, rows and bytes;
- requests a run of the curated chain for that partition, with a run key derived from the
  last manifest seen, so a tick that is retried never launches the same arrival twice.

The cursor is JSON: ``{"after": "<last manifest key>"}``. A manifest that does not read as
``contract.raw_zone.Manifest`` fails the tick with an error naming its key; the cursor stays,
so no arrival is skipped unseen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource

from contract.raw_zone import Manifest, manifests_prefix
from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from platform_assets.partitions import daily
from resources.settings import S3Settings

MAX_MANIFESTS_PER_TICK = 5000


@dataclass
class Arrival:
    """What the loader added to one event date since the cursor."""

    objects: set[str] = field(default_factory=set)
    rows: int = 0
    bytes: int = 0
    last_manifest: str = ""
    min_event_time: datetime | None = None
    max_event_time: datetime | None = None

    def add(self, manifest: Manifest, manifest_key: str) -> None:
        self.objects.add(manifest.key)  # a replay rewrites the same object
        self.rows += manifest.rows
        self.bytes += manifest.size
        self.last_manifest = manifest_key
        low, high = manifest.min_event_time, manifest.max_event_time
        self.min_event_time = min(low, self.min_event_time or low)
        self.max_event_time = max(high, self.max_event_time or high)


def scan(
    client: Any, bucket: str, prefix: str, after: str | None, limit: int = MAX_MANIFESTS_PER_TICK
) -> tuple[dict[str, Arrival], str | None]:
    """Return the arrivals by event date in the manifests after ``after``, and the new cursor."""
    arrivals: dict[str, Arrival] = {}
    cursor = after
    seen = 0
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": manifests_prefix(prefix)}
    if after:
        kwargs["StartAfter"] = after
    for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            manifest = Manifest.from_json(body, item["Key"])
            arrivals.setdefault(manifest.event_date.isoformat(), Arrival()).add(
                manifest, item["Key"]
            )
            cursor = item["Key"]
            seen += 1
            if seen >= limit:
                return arrivals, cursor
    return arrivals, cursor


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def raw_zone_sensor(
    s3_settings: S3Settings, target: dg.AssetSelection, interval_s: int = 30
) -> dg.SensorDefinition:
    """The sensor over ``s3_settings``' raw zone, launching ``target`` for each new date."""

    @dg.sensor(
        name="raw_zone_sensor",
        description="Launches the curated chain for the event dates that received new "
        "objects in the raw zone (manifests after the cursor).",
        target=target,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def sensor(
        context: dg.SensorEvaluationContext, s3: S3Resource
    ) -> dg.SensorResult | dg.SkipReason:
        after = json.loads(context.cursor)["after"] if context.cursor else None
        try:
            arrivals, cursor = scan(
                s3.get_client(), s3_settings.raw_bucket, s3_settings.raw_prefix, after
            )
        except (BotoCoreError, ClientError) as exc:
            # The object store is down or refuses us: nothing is lost, the cursor stays.
            return dg.SkipReason(f"raw zone unreachable: {exc}")
        known = set(daily.get_partition_keys())
        requests, events = [], []
        for day, arrival in sorted(arrivals.items()):
            if day not in known:
                context.log.warning(f"objects for {day} lie outside the partitions; skipped")
                continue
            metadata: dict[str, dg.RawMetadataValue] = {
                "new_objects": len(arrival.objects),
                "new_rows": arrival.rows,
                "new_bytes": arrival.bytes,
                "min_event_time": _iso(arrival.min_event_time),
                "max_event_time": _iso(arrival.max_event_time),
                "last_manifest": arrival.last_manifest,
            }
            events.append(dg.AssetMaterialization(RAW_EVENTS, partition=day, metadata=metadata))
            requests.append(
                dg.RunRequest(run_key=f"{day}:{arrival.last_manifest}", partition_key=day)
            )
        return dg.SensorResult(
            run_requests=requests,
            asset_events=events,
            cursor=json.dumps({"after": cursor}) if cursor else context.cursor,
        )

    return sensor
