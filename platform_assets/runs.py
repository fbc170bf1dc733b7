"""Materialise the curated chain for given event dates in this process (demo, operations).

The runs go to the Dagster instance of ``DAGSTER_HOME``, so the webserver started on the same
home shows them, with their checks and metadata, in the lineage UI.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from platform_assets.assets.lake.curated import CURATED_ASSETS, MARTS
from platform_assets.assets.lake.quality import LAKE_CHECKS
from platform_assets.assets.query.reporting import reporting_assets
from platform_assets.resources import resources_for
from resources.settings import PlatformSettings


def _materialize(
    settings: PlatformSettings,
    day: str,
    instance: dg.DagsterInstance,
    trigger: str,
    selection: dg.AssetSelection | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*CURATED_ASSETS, *LAKE_CHECKS],
        selection=selection,
        partition_key=day,
        resources=resources_for(settings),
        instance=instance,
        tags={"tributary/trigger": trigger},
        raise_on_error=False,
        # Events still reach the instance (and the UI); the console shows warnings only.
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )


def materialize_days(
    settings: PlatformSettings, days: Iterable[str], instance: dg.DagsterInstance
) -> dict[str, dg.ExecuteInProcessResult]:
    """Run the curated assets and the lake checks for each day; stop at the first failed day."""
    results: dict[str, dg.ExecuteInProcessResult] = {}
    for day in sorted(days):
        results[day] = result = _materialize(settings, day, instance, "demo")
        if not result.success:
            break
    return results


def materialize_marts(
    settings: PlatformSettings, days: Iterable[str], instance: dg.DagsterInstance
) -> dict[str, dg.ExecuteInProcessResult]:
    """Re-materialise the marts of each day from its staging tables (after an erasure)."""
    return {day: _materialize(settings, day, instance, "erasure", MARTS) for day in sorted(days)}


def materialize_reporting_views(
    settings: PlatformSettings, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """Create (or replace) the reporting views in Trino, as ``reporting_views_job`` does."""
    return dg.materialize(
        reporting_assets(settings),
        resources=resources_for(settings),
        instance=instance,
        tags={"tributary/trigger": "demo"},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
