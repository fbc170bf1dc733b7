"""Checks of the curated lake that look beyond the step that wrote the data.

(Referential integrity from the facts to the dimensions is checked where each dimension is
rebuilt, in ``curated.py``: that is the one moment both sides are current.)

- **Volume anomaly**, a partitioned check (it evaluates the partition of its run only): the
  partition's validated rows against the trailing days' average, read from the
  materializations' ``dagster/row_count`` (no data is reloaded). A spike or a drop is a
  warning, not a reason to hold data back.
- **Freshness**: the raw zone must receive objects regularly (Dagster's last-update
  freshness check), and yesterday's KPIs must exist once the daily schedule has had time to
  run; a schedule evaluates both every ten minutes.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from platform_assets.assets.lake.curated import KPIS, VALIDATED, check_result
from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from platform_assets.curation import checks
from platform_assets.partitions import daily

# The volume check: a day within half of the trailing week's average, once three days exist.
VOLUME_TRAILING_DAYS = 7
VOLUME_TOLERANCE = 0.5
VOLUME_MIN_HISTORY = 3

# Freshness: new raw objects at least every hour while the stream runs; yesterday's KPIs by
# 03:00 UTC (the daily schedule rebuilds them at 01:30).
RAW_ZONE_MAX_SILENCE = timedelta(hours=1)
KPIS_DEADLINE = time(3, 0)


def _previous_days(day: date, n: int) -> list[str]:
    return [(day - timedelta(days=i)).isoformat() for i in range(1, n + 1)]


@dg.asset_check(
    asset=VALIDATED,
    name="volume_within_trailing_average",
    partitions_def=daily,
    blocking=False,
    description=f"The partition's validated rows lie within {VOLUME_TOLERANCE:.0%} of the "
    f"average of the {VOLUME_TRAILING_DAYS} days before (once {VOLUME_MIN_HISTORY} exist).",
)
def volume_anomaly(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    day = date.fromisoformat(context.partition_key)
    counts = row_counts(context.instance, VALIDATED, [day.isoformat()])
    trailing = row_counts(context.instance, VALIDATED, _previous_days(day, VOLUME_TRAILING_DAYS))
    current = counts.get(day.isoformat())
    if current is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="the partition has no materialization to compare",
        )
    outcome = checks.check_volume_anomaly(
        current,
        list(trailing.values()),
        tolerance=VOLUME_TOLERANCE,
        min_history=VOLUME_MIN_HISTORY,
    )
    return check_result(
        VALIDATED, "volume_within_trailing_average", outcome, dg.AssetCheckSeverity.WARN
    )


def row_counts(
    instance: dg.DagsterInstance, asset: dg.AssetKey, partitions: Sequence[str]
) -> dict[str, int]:
    """The ``dagster/row_count`` of each partition's latest materialization (when it has one)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=list(partitions)),
        limit=len(partitions) * 20,
        ascending=True,
    ).records
    counts: dict[str, int] = {}
    for record in records:  # oldest first: a re-run's count replaces the earlier one
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        value = materialization.metadata.get("dagster/row_count")
        if value is not None:
            counts[materialization.partition] = int(value.value)  # type: ignore[arg-type]
    return counts


def expected_kpi_day(now: datetime) -> date:
    """The latest day whose KPIs must exist at ``now``: yesterday once the deadline passed."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=1 if now.astimezone(UTC).time() >= KPIS_DEADLINE else 2)


@dg.asset_check(
    asset=KPIS,
    name="kpis_fresh",
    description=f"The KPIs of yesterday exist by {KPIS_DEADLINE:%H:%M} UTC (the day before "
    "until then).",
)
def kpis_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    # Dagster's time-partition freshness factory expects the *open* partition (the partitions
    # end a day ahead so that today's raw data can be curated), so the rule is spelt out here.
    day = expected_kpi_day(datetime.now(UTC)).isoformat()
    counts = row_counts(context.instance, KPIS, [day])
    return dg.AssetCheckResult(
        passed=day in counts,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"KPIs of {day} {'present' if day in counts else 'missing'}",
        metadata={"expected_partition": day},
    )


FRESHNESS_CHECKS = [
    *dg.build_last_update_freshness_checks(
        assets=[RAW_EVENTS], lower_bound_delta=RAW_ZONE_MAX_SILENCE
    ),
    kpis_fresh,
]

# The checks that run with the curated chain's own runs, and the scheduled ones.
LAKE_CHECKS = [volume_anomaly]
QUALITY_CHECKS = [*LAKE_CHECKS, *FRESHNESS_CHECKS]

freshness_job = dg.define_asset_job(
    "freshness_checks", selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS)
)
freshness_schedule = dg.ScheduleDefinition(
    job=freshness_job,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
