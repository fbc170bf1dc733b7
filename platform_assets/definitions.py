"""The Dagster code location: every asset, check, sensor, schedule and resource."""

from __future__ import annotations

import dagster as dg

from platform_assets.assets.streaming.topics import topic_assets
from platform_assets.resources import resources_for
from resources.settings import PlatformSettings


def build_definitions(settings: PlatformSettings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*topic_assets(settings.topics)],
        resources=resources_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # Settings are read when Dagster loads the code location, not at import time.
    return build_definitions(PlatformSettings())
