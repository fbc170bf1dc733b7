"""The curated lake: validate, deduplicate, sessionise, model — one event date per partition.

Each asset calls one step of the curated chain (``platform_assets.curation.pipeline`` lists
them; ``curate_partition`` runs the same steps in the same order) and is stored as an Iceberg
table by the lake IO manager (key ``iceberg/<namespace>/<table>``), partitioned by
``event_date``, so re-materialising a partition replaces its rows and never duplicates them.
Checks that guard correctness run inside the step that produces the data, for exactly the
partition that ran, and are blocking: downstream does not materialise on bad data.

The chain starts from the raw-zone sensor (``validated_events``); the rest follows through
declarative automation (``AutomationCondition.eager``), and the daily schedule re-runs the
marts of the day before.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import dagster as dg
import polars as pl

from contract.records import UserAgentInfo
from contract.registry import SchemaRegistry
from contract.search import DEADLETTERS, index_name
from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from platform_assets.curation import checks, marts
from platform_assets.curation.dedupe import deduplicate
from platform_assets.curation.pipeline import stage
from platform_assets.curation.sessions import SESSION_VENDORS
from platform_assets.curation.validate import validate_events
from platform_assets.partitions import FIRST_DAY, daily
from platform_assets.resources import RawZoneResource
from resources.dagster_resources import SearchResource
from resources.lake import (
    DEDUPLICATED_EVENTS,
    FCT_EVENTS,
    FCT_SESSIONS,
    PARTITION_COLUMN,
    QUARANTINED_EVENTS,
    VALIDATED_EVENTS,
)
from resources.lake import STG_EVENTS as STG_EVENTS_TABLE

PARTITIONED = {"partition_expr": PARTITION_COLUMN}
PREVIOUS_AND_CURRENT_DAY = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0)
# Days back from the latest partition that automation still curates: late events land in
# the raw zone's earlier dates, and the sensor requests those dates too.
LATE_DAYS = 3
# Eager, with two changes: it acts on the last LATE_DAYS partitions (not the latest only), and
# a missing lookback partition (the day before the first data, or the 30 days of the KPIs'
# user history) does not hold a partition back: the lookback is read as it is, and the
# partition is recomputed when an earlier day is updated.
FOLLOW = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .replace(
        dg.AutomationCondition.in_latest_time_window(),
        dg.AutomationCondition.in_latest_time_window(timedelta(days=LATE_DAYS)),
    )
)
GROUP = "curated"


# Accepted values of stg_events: the registry's event types, the enrichment's device classes.
EVENT_TYPES = sorted({f"{k.vendor}/{k.name}" for k in SchemaRegistry.from_directory()})
DEVICE_CLASSES = list(get_args(UserAgentInfo.model_fields["device_class"].annotation))


def key(namespace: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["iceberg", namespace, table])


VALIDATED = key(*VALIDATED_EVENTS)
QUARANTINED = key(*QUARANTINED_EVENTS)
DEDUPLICATED = key(*DEDUPLICATED_EVENTS)
STG_EVENTS = key(*STG_EVENTS_TABLE)


def _day(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _signed(dtype: Any) -> Any:
    """``dtype`` with unsigned integers widened to signed ones: Iceberg has no unsigned types."""
    if dtype in (pl.UInt8, pl.UInt16):
        return pl.Int32()
    if dtype in (pl.UInt32, pl.UInt64):
        return pl.Int64()
    if isinstance(dtype, pl.List):
        return pl.List(_signed(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _signed(f.dtype) for f in dtype.fields})
    return dtype


def with_partition(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    """The frame as its Iceberg table stores it: signed integers, and the partition column.

    Every daily-partitioned asset writes its output through this; so does a writer that
    builds the same tables without Dagster (``benchmarks/bench_query.py``).
    """
    casts = {name: _signed(dtype) for name, dtype in frame.schema.items()}
    changed: dict[str, Any] = {n: t for n, t in casts.items() if t != frame.schema[n]}
    return frame.with_columns(
        *(pl.col(n).cast(t) for n, t in changed.items()), pl.lit(day).alias(PARTITION_COLUMN)
    )


def _split(frame: pl.DataFrame, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The partition's rows, and the rows of the days before it (the lookback)."""
    current = pl.col(PARTITION_COLUMN) == day
    return frame.filter(current).drop(PARTITION_COLUMN), frame.filter(~current).drop(
        PARTITION_COLUMN
    )


def _table_metadata(frame: pl.DataFrame, **extra: Any) -> dict[str, Any]:
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_cols=12,
        fmt_str_lengths=40,
    ):
        preview = str(frame.head(5)) if frame.height else "(empty)"
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
        ),
        "preview": dg.MetadataValue.md(preview),
        **extra,
    }


def check_result(
    spec_key: dg.AssetKey,
    name: str,
    outcome: checks.CheckOutcome,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    **extra: Any,
) -> dg.AssetCheckResult:
    """The Dagster result of a check function's outcome (see ``curation.checks``)."""
    return dg.AssetCheckResult(
        asset_key=spec_key,
        check_name=name,
        passed=outcome.passed,
        severity=severity,
        description=outcome.description or None,
        metadata={
            **{
                k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v
                for k, v in outcome.metadata.items()
            },
            **extra,
        },
    )


@dg.multi_asset(
    outs={
        "validated_events": dg.AssetOut(
            key=VALIDATED,
            metadata=PARTITIONED,
            description="Raw-zone rows that passed the envelope schema (pandera) and their "
            "event type's payload checks.",
            group_name=GROUP,
            kinds={"iceberg", "polars"},
        ),
        "quarantined_events": dg.AssetOut(
            key=QUARANTINED,
            metadata=PARTITIONED,
            description="Raw-zone rows that failed validation, with every reason "
            "(column, check); never dropped silently.",
            group_name=GROUP,
            kinds={"iceberg", "polars"},
        ),
    },
    deps=[RAW_EVENTS],
    partitions_def=daily,
    check_specs=[
        dg.AssetCheckSpec(
            "raw_equals_valid_plus_quarantined",
            asset=VALIDATED,
            blocking=True,
            description="Every raw row of the partition is either valid or quarantined.",
        )
    ],
)
def validated_events(
    context: dg.AssetExecutionContext, raw_zone: RawZoneResource
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    day = _day(context)
    raw, objects = raw_zone.read(day.isoformat())
    result = validate_events(raw)
    stats = result.stats.as_metadata()
    yield dg.Output(
        with_partition(result.valid, day),
        output_name="validated_events",
        metadata=_table_metadata(
            result.valid,
            raw_objects=len(objects),
            validation=dg.MetadataValue.json(stats),
        ),
    )
    yield dg.Output(
        with_partition(result.quarantine, day),
        output_name="quarantined_events",
        metadata=_table_metadata(
            result.quarantine,
            failures_by_check=dg.MetadataValue.json(stats["failures_by_check"]),
        ),
    )
    yield check_result(
        VALIDATED,
        "raw_equals_valid_plus_quarantined",
        checks.check_validation_reconciles(raw.height, result),
    )


@dg.asset(
    key=DEDUPLICATED,
    ins={"validated": dg.AssetIn(VALIDATED, partition_mapping=PREVIOUS_AND_CURRENT_DAY)},
    partitions_def=daily,
    metadata=PARTITIONED,
    automation_condition=FOLLOW,
    group_name=GROUP,
    kinds={"iceberg", "polars"},
    description="Validated events once per event_id: the earliest received copy wins; the "
    "day before is the lookback that catches late and replayed copies.",
    check_specs=[
        dg.AssetCheckSpec(
            "removed_only_duplicates",
            asset=DEDUPLICATED,
            blocking=True,
            description="Every removed row shares its event_id with a kept one.",
        )
    ],
)
def deduplicated_events(
    context: dg.AssetExecutionContext, validated: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    day = _day(context)
    current, lookback = _split(validated, day)
    result = deduplicate(current, lookback)
    yield dg.Output(
        with_partition(result.events, day),
        metadata=_table_metadata(
            result.events, dedup=dg.MetadataValue.json(result.stats.as_metadata())
        ),
    )
    yield check_result(
        DEDUPLICATED,
        "removed_only_duplicates",
        checks.check_dedup_removed_only_duplicates(current, result, lookback),
    )


@dg.asset(
    key=STG_EVENTS,
    ins={"deduplicated": dg.AssetIn(DEDUPLICATED, partition_mapping=PREVIOUS_AND_CURRENT_DAY)},
    partitions_def=daily,
    metadata=PARTITIONED,
    automation_condition=FOLLOW,
    group_name=GROUP,
    kinds={"iceberg", "polars"},
    description="Deduplicated events with sessions (30-minute inactivity gap), user and "
    "device attributes, and typed payload fields: the staging table of the marts.",
    check_specs=[
        dg.AssetCheckSpec("event_id_unique", asset=STG_EVENTS, blocking=True),
        dg.AssetCheckSpec("keys_not_null", asset=STG_EVENTS, blocking=True),
        dg.AssetCheckSpec("sessions_assigned", asset=STG_EVENTS, blocking=True),
        dg.AssetCheckSpec(
            "accepted_values",
            asset=STG_EVENTS,
            blocking=True,
            description="event_vendor/event_name is a registered event type, and device_class "
            "one of the enrichment's classes.",
        ),
    ],
)
def stg_events(
    context: dg.AssetExecutionContext, deduplicated: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    day = _day(context)
    current, lookback = _split(deduplicated, day)
    staged = stage(current, lookback)
    stg = staged.events
    yield dg.Output(
        with_partition(stg, day),
        metadata=_table_metadata(stg, sessions=dg.MetadataValue.json(staged.stats.as_metadata())),
    )
    yield check_result(STG_EVENTS, "event_id_unique", checks.check_unique(stg, ["event_id"]))
    yield check_result(
        STG_EVENTS,
        "keys_not_null",
        checks.check_not_null(stg, ["event_id", "event_timestamp", "user_key"]),
    )
    # Only the shop's events are sessionised (IoT readings and logs have no sessions).
    shop = stg.filter(pl.col("event_vendor").is_in(list(SESSION_VENDORS)))
    yield check_result(STG_EVENTS, "sessions_assigned", checks.check_not_null(shop, ["session_id"]))
    types = stg.select(event_type=pl.concat_str("event_vendor", "event_name", separator="/"))
    registered = checks.check_accepted_values(types, "event_type", EVENT_TYPES, allow_null=False)
    devices = checks.check_accepted_values(stg, "device_class", DEVICE_CLASSES)
    yield check_result(
        STG_EVENTS,
        "accepted_values",
        checks.CheckOutcome(
            passed=registered.passed and devices.passed,
            metadata={
                "unexpected_event_types": registered.metadata["unexpected_values"],
                "unexpected_device_classes": devices.metadata["unexpected_values"],
            },
            description="registered event types; known device classes",
        ),
    )


def _mart(name: str, description: str, build: Any, keys: list[str]) -> dg.AssetsDefinition:
    asset_key = key("marts", name)

    @dg.asset(
        key=asset_key,
        ins={"stg": dg.AssetIn(STG_EVENTS)},
        partitions_def=daily,
        metadata=PARTITIONED,
        automation_condition=FOLLOW,
        group_name="marts",
        kinds={"iceberg", "polars"},
        description=description,
        check_specs=[dg.AssetCheckSpec("key_unique", asset=asset_key, blocking=True)],
    )
    def mart(
        context: dg.AssetExecutionContext, stg: pl.DataFrame
    ) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
        day = _day(context)
        frame = build(stg, day)
        yield dg.Output(with_partition(frame, day), metadata=_table_metadata(frame))
        yield check_result(asset_key, "key_unique", checks.check_unique(frame, keys))

    return mart


fct_events = _mart(
    FCT_EVENTS[1], "One row per shop event.", lambda stg, day: marts.fct_events(stg), ["event_id"]
)
fct_sessions = _mart(
    FCT_SESSIONS[1],
    "One row per session and day: duration, events, funnel steps reached, revenue.",
    lambda stg, day: marts.fct_sessions(stg, day),
    ["session_id", "session_date"],
)
fct_order_lines = _mart(
    "fct_order_lines",
    "One row per line of a purchase, with EUR amounts.",
    lambda stg, day: marts.fct_order_lines(stg),
    ["order_id", "line_number"],
)


DIM_USERS = key("marts", "dim_users")
DIM_PRODUCTS = key("marts", "dim_products")


def _dimension_output(
    asset_key: dg.AssetKey, frame: pl.DataFrame, keys: list[str]
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    yield dg.Output(frame, metadata=_table_metadata(frame))
    yield check_result(asset_key, "key_unique", checks.check_unique(frame, keys))


@dg.asset(
    key=DIM_USERS,
    ins={"stg": dg.AssetIn(STG_EVENTS)},
    automation_condition=FOLLOW,
    group_name="marts",
    kinds={"iceberg", "polars"},
    description="One row per shop user (logged-in id, else device or anonymous session): "
    "first and last seen, latest country and device class, whether a bot. Rebuilt from every "
    "partition of stg_events (the shop's events only).",
    check_specs=[
        dg.AssetCheckSpec("key_unique", asset=DIM_USERS, blocking=True),
        dg.AssetCheckSpec(
            "facts_user_keys_present",
            asset=DIM_USERS,
            blocking=True,
            description="Every user_key of the shop's events (those of the events and "
            "sessions facts) has a row: referential integrity from the facts.",
        ),
    ],
)
def dim_users(stg: pl.DataFrame) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    frame = marts.dim_users(stg.drop(PARTITION_COLUMN))
    yield from _dimension_output(DIM_USERS, frame, ["user_key"])
    yield check_result(
        DIM_USERS,
        "facts_user_keys_present",
        checks.check_referential_integrity(marts.shop_events(stg), frame, "user_key"),
    )


@dg.asset(
    key=DIM_PRODUCTS,
    ins={"stg": dg.AssetIn(STG_EVENTS), "order_lines": dg.AssetIn(key("marts", "fct_order_lines"))},
    automation_condition=FOLLOW,
    group_name="marts",
    kinds={"iceberg", "polars"},
    description="One row per product, attributes from its latest sighting, EUR price. "
    "Rebuilt from every partition.",
    check_specs=[
        dg.AssetCheckSpec("key_unique", asset=DIM_PRODUCTS, blocking=True),
        dg.AssetCheckSpec(
            "facts_product_ids_present",
            asset=DIM_PRODUCTS,
            blocking=True,
            description="Every product_id of fct_order_lines and of the events has a row: "
            "referential integrity from the facts.",
        ),
    ],
)
def dim_products(
    stg: pl.DataFrame, order_lines: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    frame = marts.dim_products(stg.drop(PARTITION_COLUMN), order_lines.drop(PARTITION_COLUMN))
    yield from _dimension_output(DIM_PRODUCTS, frame, ["product_id"])
    referenced = pl.concat([order_lines.select("product_id"), stg.select("product_id")])
    yield check_result(
        DIM_PRODUCTS,
        "facts_product_ids_present",
        checks.check_referential_integrity(referenced, frame, "product_id"),
    )


@dg.asset(
    key=key("marts", "dim_date"),
    # Built when missing, and daily: it runs a year ahead of today.
    automation_condition=dg.AutomationCondition.on_missing()
    | dg.AutomationCondition.on_cron("0 0 * * *", "UTC"),
    group_name="marts",
    kinds={"iceberg", "polars"},
    description="One row per calendar day from the first partition to a year ahead.",
)
def dim_date() -> dg.Output[pl.DataFrame]:
    frame = marts.dim_date(date.fromisoformat(FIRST_DAY), datetime.now(UTC).date())
    return dg.Output(frame, metadata=_table_metadata(frame))


KPIS = key("marts", "agg_daily_kpis")
# New users are those not seen in the 30 days before: the window the KPIs look back over.
USER_LOOKBACK = dg.TimeWindowPartitionMapping(
    start_offset=-30, end_offset=0, allow_nonexistent_upstream_partitions=True
)


@dg.asset(
    key=KPIS,
    ins={
        "stg": dg.AssetIn(STG_EVENTS, partition_mapping=USER_LOOKBACK),
        "sessions": dg.AssetIn(key("marts", "fct_sessions")),
        "validated": dg.AssetIn(VALIDATED),
        "quarantined": dg.AssetIn(QUARANTINED),
        "deduplicated": dg.AssetIn(DEDUPLICATED),
    },
    partitions_def=daily,
    metadata=PARTITIONED,
    automation_condition=FOLLOW,
    group_name="marts",
    kinds={"iceberg", "polars"},
    description="One row per day of the shop: sessions, funnel conversion, revenue (EUR), new "
    "and returning users (shop users only), and the dead-letter rate by reason (stream dead "
    "letters from the search store, plus the lake's quarantine).",
    check_specs=[dg.AssetCheckSpec("one_row", asset=KPIS, blocking=True)],
)
def agg_daily_kpis(
    context: dg.AssetExecutionContext,
    search: SearchResource,
    stg: pl.DataFrame,
    sessions: pl.DataFrame,
    validated: pl.DataFrame,
    quarantined: pl.DataFrame,
    deduplicated: pl.DataFrame,
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    day = _day(context)
    current, earlier = _split(stg, day)
    frame = marts.agg_daily_kpis(
        day,
        current,
        sessions.drop(PARTITION_COLUMN),
        marts.dim_users(earlier) if earlier.height else None,
        validated_rows=validated.height,
        quarantined_rows=quarantined.height,
        deduplicated_rows=deduplicated.height,
        dead_letters=dead_letters_by_reason(search, day),
    )
    yield dg.Output(with_partition(frame, day), metadata=_table_metadata(frame))
    yield dg.AssetCheckResult(
        asset_key=KPIS,
        check_name="one_row",
        passed=frame.height == 1,
        metadata={"rows": frame.height},
    )


DEVICE_READINGS = key("marts", "agg_daily_device_readings")


@dg.asset(
    key=DEVICE_READINGS,
    ins={"deduplicated": dg.AssetIn(DEDUPLICATED)},
    partitions_def=daily,
    metadata=PARTITIONED,
    automation_condition=FOLLOW,
    group_name="marts",
    kinds={"iceberg", "polars"},
    description="The IoT mart: per device, sensor and day, the number of readings, their "
    "minimum, maximum and mean, and the unit.",
    check_specs=[dg.AssetCheckSpec("key_unique", asset=DEVICE_READINGS, blocking=True)],
)
def agg_daily_device_readings(
    context: dg.AssetExecutionContext, deduplicated: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    day = _day(context)
    frame = marts.agg_daily_device_readings(deduplicated.drop(PARTITION_COLUMN))
    yield dg.Output(with_partition(frame, day), metadata=_table_metadata(frame))
    yield check_result(
        DEVICE_READINGS,
        "key_unique",
        checks.check_unique(frame, ["device_id", "sensor", "reading_date"]),
    )


def dead_letters_by_reason(search: SearchResource, day: date) -> pl.DataFrame:
    """The stream's dead letters of ``day`` by failure type, from the real-time store."""
    with search.get_store() as store:
        answer = store.search(
            index_name(store.index_prefix, DEADLETTERS, day),
            {"size": 0, "aggs": {"reasons": {"terms": {"field": "failure_type", "size": 50}}}},
        )
    buckets = answer.get("aggregations", {}).get("reasons", {}).get("buckets", [])
    return pl.DataFrame(
        {"reason": [b["key"] for b in buckets], "count": [b["doc_count"] for b in buckets]},
        schema={"reason": pl.String, "count": pl.Int64},
    )


CURATED_ASSETS = [
    validated_events,
    deduplicated_events,
    stg_events,
    fct_events,
    fct_sessions,
    fct_order_lines,
    dim_users,
    dim_products,
    dim_date,
    agg_daily_kpis,
    agg_daily_device_readings,
]

MARTS = dg.AssetSelection.groups("marts")
daily_marts_job = dg.define_asset_job("daily_marts", selection=MARTS, partitions_def=daily)


# Late events keep arriving for a while: at 01:30 UTC the marts of the day before are rebuilt.
# (build_schedule_from_partitioned_job would pick today's partition: it exists, end_offset=1.)
@dg.schedule(
    job=daily_marts_job,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_marts_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    assert context.scheduled_execution_time is not None
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=f"daily-marts-{day}", partition_key=day)
