"""A curated lake of its own on the real stack: REST catalog, Dagster assets, a Trino catalog.

``curated_lake`` writes a synthetic raw zone (the batch loader's layout) to S3 under a prefix
of its own, materialises the curated chain for its event dates (by default a day and the
tail of the day before; with ``days``, that many whole days of their own seeds and a shared
user pool, so that users return) with the ``stack`` profile's resources into a fresh
warehouse (an S3 table bucket of its own, served by SeaweedFS's REST
catalog), and mounts that warehouse in Trino as a catalog of its own (``CREATE CATALOG``), so
the test never touches the platform's lake and Trino reads exactly what Dagster wrote. Its
search indices (a prefix of its own, empty) are provisioned as the stack provisions them.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from platform_assets.assets.lake.curated import CURATED_ASSETS
from platform_assets.resources import resources_for
from resources.lake import make_catalog
from resources.s3 import ensure_buckets
from resources.settings import PlatformSettings, Profile
from resources.trino import run_trino
from simulator.raw_zone import SyntheticConfig, upload_raw_zone, write_raw_zone
from stack.provision import provision_search
from stack.services.trino import iceberg_catalog

DAY = date(2026, 3, 14)


@dataclass
class CuratedLake:
    settings: PlatformSettings
    """The lake's settings: ``stack`` profile, its own warehouse and Trino catalog."""
    days: list[date]

    def mart(self, name: str) -> pl.DataFrame:
        """The mart as pyiceberg reads it from the REST catalog."""
        frame = pl.from_arrow(
            make_catalog(self.settings).load_table(f"marts.{name}").scan().to_arrow()
        )
        assert isinstance(frame, pl.DataFrame)
        return frame


def _quoted(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# Each day's volume in a lake of several days: a week's ups and downs, so trends have a shape.
DAILY_VOLUME = (0.8, 1.0, 0.9, 1.15, 1.3, 0.7, 0.6)


@contextmanager
def curated_lake(
    servers: PlatformSettings, events: int, day: date = DAY, days: int | None = None
) -> Iterator[CuratedLake]:
    """A curated lake ending on ``day``: ``events`` on it and the tail of the day before, or,
    with ``days``, about ``events`` on each of ``days`` days (varied by ``DAILY_VOLUME``)."""
    tag = uuid.uuid4().hex[:8]
    catalog = f"lake_{tag}"
    settings = servers.model_copy(
        update={
            # model_copy skips validation: the suite's servers run with the local secrets.
            "profile": Profile.STACK,
            "s3": servers.s3.model_copy(
                update={"warehouse_bucket": f"test-lake-{tag}", "raw_prefix": f"test-lake/{tag}/"}
            ),
            "search": servers.search.model_copy(update={"index_prefix": f"lake-{tag}"}),
            "trino": servers.trino.model_copy(update={"iceberg_catalog": catalog}),
        }
    )
    ensure_buckets(settings.s3)
    provision_search(settings)  # as the stack does: the live views name the aliases
    if days is None:
        partitions = [day - timedelta(days=1), day]
        configs = [SyntheticConfig(day=day, events=events, seed=5)]
    else:
        partitions = [day - timedelta(days=n) for n in reversed(range(days))]
        users = max(50, events // 12)  # one pool: users come back on the days after
        configs = [
            SyntheticConfig(
                day=d,
                events=round(events * DAILY_VOLUME[n % len(DAILY_VOLUME)]),
                seed=5 + n,
                users=users,
            )
            for n, d in enumerate(partitions)
        ]
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            write_raw_zone(config, Path(tmp), name=f"day-{config.day}")
        upload_raw_zone(Path(tmp), settings.s3)
    for partition in partitions:
        result = dg.materialize(
            CURATED_ASSETS,
            partition_key=partition.isoformat(),
            resources=resources_for(settings),
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success, partition
    properties = {k: v for k, v in iceberg_catalog(settings).items() if k != "connector.name"}
    with_clause = ", ".join(f'"{k}" = {_quoted(v)}' for k, v in properties.items())
    run_trino(settings.trino, f"create catalog {catalog} using iceberg with ({with_clause})")
    try:
        yield CuratedLake(settings, partitions)
    finally:
        run_trino(settings.trino, f"drop catalog if exists {catalog}")
