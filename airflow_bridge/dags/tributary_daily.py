"""Tributary's curated lake, one event date per run, driven by Airflow.

The run for the data interval ``[D, D+1)`` (UTC) starts after the midnight ending it and
materialises Dagster partition ``D``, Airflow's logical date ``{{ ds }}``: the validated,
deduplicated and sessionised events of that day and the day's marts. Then the dimensions,
unpartitioned and rebuilt from every partition, take in the new day (see docs/airflow.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_bridge.operators import DagsterAssetOperator

LOCATION = "tributary"  # the code location's name in workspace.yaml

# The partitioned assets of the curated chain; Dagster runs them in dependency order.
DAILY_CHAIN = [
    "iceberg/staging/validated_events",
    "iceberg/staging/quarantined_events",  # the same step as validated_events: both or neither
    "iceberg/staging/deduplicated_events",
    "iceberg/staging/stg_events",
    "iceberg/marts/fct_events",
    "iceberg/marts/fct_sessions",
    "iceberg/marts/fct_order_lines",
    "iceberg/marts/agg_daily_kpis",
    "iceberg/marts/agg_daily_device_readings",
]
DIMENSIONS = ["iceberg/marts/dim_users", "iceberg/marts/dim_products", "iceberg/marts/dim_date"]

with DAG(
    dag_id="tributary_daily",
    description="Materialise the curated lake's partition of each day in Dagster",
    # Intervals [D 00:00, D+1 00:00) UTC with logical date D: the partitions' days.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),  # the first partition
    catchup=False,
    # Day D looks back at day D-1 (deduplication, sessions): days run in date order.
    max_active_runs=1,
    tags=["tributary", "dagster"],
) as dag:
    day = DagsterAssetOperator(
        task_id="materialise_curated_day",
        location=LOCATION,
        asset_keys=DAILY_CHAIN,
        partition_key="{{ ds }}",
    )
    dimensions = DagsterAssetOperator(
        task_id="rebuild_dimensions",
        location=LOCATION,
        asset_keys=DIMENSIONS,
        partition_key=None,
    )
    day >> dimensions
