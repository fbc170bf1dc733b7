"""The Dagster code location: every asset, check, sensor, schedule and resource."""

from __future__ import annotations

import dagster as dg

from platform_assets.assets.lake.curated import (
    CURATED_ASSETS,
    daily_marts_job,
    daily_marts_schedule,
    validated_events,
)
from platform_assets.assets.lake.quality import (
    QUALITY_CHECKS,
    freshness_job,
    freshness_schedule,
)
from platform_assets.assets.lake.raw_zone import raw_zone_asset
from platform_assets.assets.query.reporting import reporting_assets, reporting_views_job
from platform_assets.assets.search.indices import index_assets
from platform_assets.assets.streaming.topics import (
    stream_observation_job,
    stream_observation_schedule,
    topic_assets,
)
from platform_assets.jobs.privacy import erasure_definitions
from platform_assets.resources import resources_for
from platform_assets.sensors.alerts import alert_sensor, stream_alert
from platform_assets.sensors.raw_zone import raw_zone_sensor
from resources.settings import PlatformSettings


def build_definitions(settings: PlatformSettings) -> dg.Definitions:
    forget_person, recompute_after_erasure = erasure_definitions(settings)
    return dg.Definitions(
        assets=[
            *topic_assets(settings.topics, settings.kafka),
            *index_assets(settings.search),
            raw_zone_asset(settings.s3),
            *CURATED_ASSETS,
            *reporting_assets(settings),
        ],
        asset_checks=QUALITY_CHECKS,
        sensors=[
            raw_zone_sensor(
                settings.s3,
                dg.AssetSelection.assets(validated_events),
                settings.lake.trigger_interval_s,
            ),
            alert_sensor(settings.alerts),
            recompute_after_erasure,
            dg.AutomationConditionSensorDefinition(
                "curated_automation",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=settings.lake.trigger_interval_s,
            ),
        ],
        jobs=[
            daily_marts_job,
            stream_alert,
            forget_person,
            freshness_job,
            reporting_views_job,
            stream_observation_job,
        ],
        schedules=[daily_marts_schedule, freshness_schedule, stream_observation_schedule],
        resources=resources_for(settings),
        # One process per run, not per step: a step's process would import Dagster, polars
        # and pyiceberg again (seconds each on a small machine) only to hand data over
        # through the lake anyway; the steps of a run share the machine's cores regardless.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    # Settings are read when Dagster loads the code location, not at import time.
    return build_definitions(PlatformSettings())
