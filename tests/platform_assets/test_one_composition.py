"""The Dagster assets and ``curate_partition`` are one composition of the curated chain.

Two generated days (shop events with duplicates, late and broken rows, plus IoT readings)
go to the raw zone on S3; the real assets are materialised for both days into a local
Iceberg catalog, and every table they wrote must equal, row for row, what
``curate_partition`` (what the unit tests and the benchmarks run) gives for the same days.
If an asset and the composition ever call a step differently again, this fails.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from platform_assets.assets.lake.curated import CURATED_ASSETS, with_partition
from platform_assets.curation import marts
from platform_assets.curation.pipeline import CurationResult, curate_partition
from platform_assets.partitions import FIRST_DAY
from platform_assets.resources import resources_for
from resources.lake import PARTITION_COLUMN, make_catalog
from resources.settings import LakeSettings, PlatformSettings, Profile
from simulator.raw_zone import SyntheticConfig, synthetic_partition, upload_raw_zone
from tests.curation.rows import frame, reading, row

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = date(2026, 3, 14)
DAYS = [DAY - timedelta(days=1), DAY]

# Per table: its key, the sort of a row-for-row comparison.
PARTITIONED = {
    "staging.validated_events": ["event_id", "kafka_partition", "kafka_offset"],
    "staging.quarantined_events": ["kafka_partition", "kafka_offset"],
    "staging.deduplicated_events": ["event_id"],
    "staging.stg_events": ["event_id"],
    "marts.fct_events": ["event_id"],
    "marts.fct_sessions": ["session_id", "session_date"],
    "marts.fct_order_lines": ["order_id", "line_number"],
    "marts.agg_daily_kpis": ["date"],
    "marts.agg_daily_device_readings": ["device_id", "sensor", "reading_date"],
}
DIMENSIONS = {"marts.dim_users": ["user_key"], "marts.dim_products": ["product_id"]}


@dataclass
class Curated:
    settings: PlatformSettings
    composed: dict[date, CurationResult]


def _raw_days() -> dict[date, pl.DataFrame]:
    part = synthetic_partition(
        SyntheticConfig(
            day=DAY, events=3000, seed=8, invalid_share=0.05, cross_partition_share=0.05
        )
    )
    rows = pl.concat([part.lookback, part.current])
    start = datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=UTC)
    iot = [
        reading(f"barometer-{d}", 990.0 + d + k, at=start - timedelta(hours=12 * k))
        for d in range(5)
        for k in range(3)
    ]
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    # A session across midnight: its start and id come from the day before's lookback.
    night = [row(at=midnight + timedelta(minutes=m), user_id="night-owl") for m in (-10, 5, 15)]
    rows = pl.concat([rows, frame(iot + night)])
    day = pl.col("event_timestamp").dt.date()
    return {d: rows.filter(day == d) for d in DAYS}


def _write(raw: dict[date, pl.DataFrame], root: Path) -> None:
    for d, rows in raw.items():
        for (hour,), part in rows.group_by(pl.col("event_timestamp").dt.hour()):
            folder = root / f"event_date={d}" / f"event_hour={hour:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            part.write_parquet(folder / "part.parquet")


@pytest.fixture(scope="module")
def curated(
    s3: PlatformSettings, opensearch: PlatformSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Curated]:
    tag = uuid.uuid4().hex[:8]
    settings = s3.model_copy(
        update={
            "profile": Profile.LOCAL,
            "s3": s3.s3.model_copy(update={"raw_prefix": f"test-composition/{tag}/"}),
            # An index prefix of its own: no stream dead letters, as curate_partition's None.
            "search": s3.search.model_copy(update={"index_prefix": f"composition-{tag}"}),
            "lake": LakeSettings(local_root=tmp_path_factory.mktemp("lake")),
        }
    )
    raw = _raw_days()
    with tempfile.TemporaryDirectory() as tmp:
        _write(raw, Path(tmp))
        upload_raw_zone(Path(tmp), settings.s3)
    for d in DAYS:
        result = dg.materialize(
            CURATED_ASSETS,
            partition_key=d.isoformat(),
            resources=resources_for(settings),
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success, d
    first = curate_partition(raw[DAYS[0]], DAYS[0])
    second = curate_partition(
        raw[DAY],
        DAY,
        validated_before=first.validated_events,
        deduplicated_before=first.deduplicated_events,
        previous_users=first.dim_users,
        previous_products=first.dim_products,
    )
    yield Curated(settings, {DAYS[0]: first, DAY: second})


def _table(settings: PlatformSettings, name: str) -> pl.DataFrame:
    table = pl.from_arrow(make_catalog(settings).load_table(name).scan().to_arrow())
    assert isinstance(table, pl.DataFrame)
    return table


def _assert_same(written: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Equal row for row, as Iceberg stores them.

    Iceberg stores the small integers (Int8, Int16) as Int32, and pyiceberg reads a null list
    back as an empty one.
    """
    assert written.columns == expected.columns
    lists = [n for n, t in expected.schema.items() if isinstance(t, pl.List)]
    expected = expected.with_columns(pl.col(n).fill_null([]) for n in lists)
    small = {pl.Int8, pl.Int16}
    widened = {n: pl.Int32 for n, t in expected.schema.items() if t in small}
    assert all(written.schema[n] == pl.Int32 for n in widened)
    assert_frame_equal(written, expected.cast(widened))  # type: ignore[arg-type]


def _composed(result: CurationResult, name: str) -> pl.DataFrame:
    attribute = name.split(".")[1]
    if attribute == "quarantined_events":
        return result.quarantine
    table: pl.DataFrame = getattr(result, attribute)
    return table


@pytest.mark.parametrize("name", list(PARTITIONED))
def test_each_partitioned_table_equals_the_composition_row_for_row(
    curated: Curated, name: str
) -> None:
    table = _table(curated.settings, name)
    keys = PARTITIONED[name]
    rows = 0
    for d, result in curated.composed.items():
        written = table.filter(pl.col(PARTITION_COLUMN) == d).sort(keys)
        expected = with_partition(_composed(result, name), d).sort(keys)
        _assert_same(written, expected)
        rows += written.height
    assert rows > 0, name


@pytest.mark.parametrize("name", list(DIMENSIONS))
def test_each_dimension_equals_the_composition_after_both_days(curated: Curated, name: str) -> None:
    keys = DIMENSIONS[name]
    written = _table(curated.settings, name).sort(keys)
    expected = _composed(curated.composed[DAY], name).sort(keys)
    assert written.height > 0
    _assert_same(written, expected)


def test_the_calendar_is_the_step_of_today(curated: Curated) -> None:
    written = _table(curated.settings, "marts.dim_date").sort("date")
    today = datetime.now(UTC).date()
    _assert_same(written, marts.dim_date(date.fromisoformat(FIRST_DAY), today))


def test_the_generated_days_exercise_every_step(curated: Curated) -> None:
    """The comparison means something: each day has duplicates, quarantine and IoT rows."""
    for result in curated.composed.values():
        assert result.dedup.removed_rows > 0
        assert result.quarantine.height > 0
        assert result.agg_daily_device_readings.height == 5
    assert curated.composed[DAY].sessions.sessions_continued > 0
    assert curated.composed[DAY].dedup.removed_seen_in_lookback > 0
