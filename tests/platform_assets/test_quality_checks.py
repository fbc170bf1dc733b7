"""The volume and freshness checks, run by Dagster against a real (ephemeral) instance.

The checks read what the instance recorded (materializations and their row counts), so the
history is reported as the raw-zone sensor and earlier runs would have recorded it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from platform_assets.assets.lake.curated import KPIS, VALIDATED
from platform_assets.assets.lake.quality import (
    FRESHNESS_CHECKS,
    expected_kpi_day,
    row_counts,
    volume_anomaly,
)
from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from platform_assets.partitions import daily

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 20)


def report(instance: dg.DagsterInstance, asset: dg.AssetKey, day: date, rows: int) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=asset, partition=day.isoformat(), metadata={"dagster/row_count": rows}
        )
    )


def run_volume_check(instance: dg.DagsterInstance, rows: int) -> dg.AssetCheckEvaluation:
    """Materialise the day's validated events (``rows`` of them) with the volume check."""

    @dg.asset(key=VALIDATED, partitions_def=daily)
    def validated() -> dg.MaterializeResult[None]:
        return dg.MaterializeResult(metadata={"dagster/row_count": rows})

    result = dg.materialize(
        [validated, volume_anomaly], partition_key=DAY.isoformat(), instance=instance
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.mark.parametrize(
    ("rows", "passes"), [(1000, True), (1400, True), (1600, False), (400, False)]
)
def test_volume_against_the_trailing_average(rows: int, passes: bool) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for back, n in enumerate([900, 1100, 1000, 1000], start=1):
        report(instance, VALIDATED, DAY - timedelta(days=back), n)
    # A later day and an older re-run must not count: only the 7 days before, latest run.
    report(instance, VALIDATED, DAY + timedelta(days=1), 50_000)
    report(instance, VALIDATED, DAY - timedelta(days=9), 50_000)
    evaluation = run_volume_check(instance, rows)
    assert evaluation.passed is passes
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["trailing_average"].value == 1000
    assert evaluation.metadata["current"].value == rows


def test_volume_passes_without_enough_history_and_uses_the_latest_rerun() -> None:
    instance = dg.DagsterInstance.ephemeral()
    report(instance, VALIDATED, DAY - timedelta(days=1), 10)
    report(instance, VALIDATED, DAY - timedelta(days=1), 1000)  # a re-run replaced it
    assert row_counts(instance, VALIDATED, [(DAY - timedelta(days=1)).isoformat()]) == {
        (DAY - timedelta(days=1)).isoformat(): 1000
    }
    evaluation = run_volume_check(instance, 5)
    assert evaluation.passed
    assert evaluation.metadata["reason"].value == "not enough history"


def freshness(instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    specs = [
        dg.AssetSpec(RAW_EVENTS, partitions_def=daily),
        dg.AssetSpec(KPIS, partitions_def=daily),
    ]
    result = dg.materialize(
        [*specs, *FRESHNESS_CHECKS],
        selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS),
        instance=instance,
    )
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_freshness_fails_until_data_arrives_then_passes() -> None:
    instance = dg.DagsterInstance.ephemeral()
    stale = freshness(instance)
    assert not stale["s3/raw_events"].passed
    assert not stale["iceberg/marts/agg_daily_kpis"].passed
    assert stale["iceberg/marts/agg_daily_kpis"].severity == dg.AssetCheckSeverity.ERROR

    now = datetime.now(UTC)
    report(instance, RAW_EVENTS, now.date(), 10)
    # The day before the expected one does not make the KPIs fresh.
    report(instance, KPIS, expected_kpi_day(now) - timedelta(days=1), 1)
    partly = freshness(instance)
    assert partly["s3/raw_events"].passed
    assert not partly["iceberg/marts/agg_daily_kpis"].passed

    report(instance, KPIS, expected_kpi_day(now), 1)
    assert freshness(instance)["iceberg/marts/agg_daily_kpis"].passed


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 28, 2, 59, tzinfo=UTC), date(2026, 11, 26)),
        (datetime(2026, 11, 28, 3, 0, tzinfo=UTC), date(2026, 11, 27)),
    ],
)
def test_the_kpis_are_expected_for_yesterday_after_the_deadline(
    now: datetime, expected: date
) -> None:
    assert expected_kpi_day(now) == expected
