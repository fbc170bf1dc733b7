"""Tributary's curated lake, one event date per run, driven by Airflow.

The run for the data interval ``[D, D+1)`` (UTC) starts after midnight ending it and
materialises Dagster partition ``D``, Airflow's logical date ``{{ ds }}``: the
validated, deduplicated and sessionised events of that day and the day's marts. The
dimensions, rebuilt from every partition, are left to Dagster's own automation, which
follows the day's update (see docs/airflow.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_bridge.operators import DagsterAssetOperator

# The partitioned assets of the curated chain, in the order they run (Dagster orders them).
DAILY_CHAIN = [
    "iceberg/staging/validated_events",
    "iceberg/staging/quarantined_events",  # the same step as validated_events: both or neither
    "iceberg/staging/deduplicated_events",
    "iceberg/staging/stg_events",
    "iceberg/marts/fct_events",
    "iceberg/marts/fct_sessions",
    "iceberg/marts/fct_order_lines",
    "iceberg/marts/agg_daily_kpis",
]

with DAG(
    dag_id="tributary_daily",
    description="Materialise the curated lake's partition of each day in Dagster",
    # Intervals [D 00:00, D+1 00:00) UTC, logical date D: the partitions' days.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),  # the first partition
    catchup=False,
    max_active_runs=1,
    tags=["tributary", "dagster"],
) as dag:
    DagsterAssetOperator(
        task_id="materialise_curated_day",
        location="tributary",
        asset_keys=DAILY_CHAIN,
        partition_key="{{ ds }}",
    )
