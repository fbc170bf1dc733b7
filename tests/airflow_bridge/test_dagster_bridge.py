"""Real Airflow 3 drives a real Dagster webserver: ``airflow dags test tributary_daily <day>``.

Airflow runs from its own virtualenv (``stack.airflow``, created on first use), with only the
``airflow_bridge`` package on its path and the webserver's address in the
``dagster_default`` connection. Dagster runs the platform's code location with the webserver
and the daemon (the default instance queues launched runs; the daemon dequeues them) on the
``local`` profile: Iceberg in SQLite under a temporary folder, the raw zone in SeaweedFS.
SeaweedFS and OpenSearch are the session's, under a raw-zone prefix and an index prefix of
this module's own.

Two days of synthetic shop events are put in the raw zone. On the first the whole chain
succeeds; on the second one order id is used by two purchases, so the order lines' blocking
``key_unique`` check fails the Dagster run, and with it the Airflow task and ``dags test``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cli.dagster import DagsterServer
from platform_assets.assets.lake.curated import CURATED_ASSETS
from platform_assets.resources import RawZoneResource, resources_for
from resources.lake import make_catalog
from resources.s3 import ensure_buckets, make_s3_client
from resources.settings import LakeSettings, PlatformSettings, Profile, S3Settings
from simulator.raw_zone import SyntheticConfig, write_raw_zone
from stack.airflow import AirflowHome, airflow_venv
from stack.config import StackSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

DAG_ID = "tributary_daily"
DAY_OK = "2026-11-20"
DAY_BAD = "2026-11-21"
# The daemon's sensors would launch runs of their own for the raw zone, downstream of
# Airflow's runs (automation) and for alerts: stopped, as docs/airflow.md advises when Airflow
# drives the chain.
SENSORS_OFF = ("raw_zone_sensor", "curated_automation", "stream_alert_sensor")
PARTITIONED = {
    "/".join(key.path)
    for assets in CURATED_ASSETS
    if assets.partitions_def is not None
    for key in assets.keys
}
DIMENSIONS = {
    "/".join(key.path)
    for assets in CURATED_ASSETS
    if assets.partitions_def is None
    for key in assets.keys
}


@dataclass
class Bridge:
    settings: PlatformSettings
    dagster: DagsterServer
    airflow: AirflowHome
    raw: dict[str, pl.DataFrame]


def upload_day(s3: S3Settings, root: Path, day: str) -> None:
    """Put the day's Parquet objects in the raw zone, laid out as the batch loader does."""
    client = make_s3_client(s3)
    for path in sorted((root / f"event_date={day}").rglob("*.parquet")):
        key = f"{s3.raw_prefix}{path.relative_to(root)}"
        client.put_object(Bucket=s3.raw_bucket, Key=key, Body=path.read_bytes())


def reuse_an_order_id(root: Path, day: str) -> None:
    """Add a second purchase (a new event) carrying an order id that is already taken."""
    rows = pl.read_parquet(root / f"event_date={day}" / "*" / "*.parquet")
    purchase = rows.filter(pl.col("event_name") == "purchase").head(1)
    assert purchase.height == 1
    again = purchase.with_columns(pl.lit(str(uuid.uuid4())).alias("event_id"))
    hour = root / f"event_date={day}" / "event_hour=23"
    hour.mkdir(parents=True, exist_ok=True)
    again.write_parquet(hour / "reused-order-id.parquet", compression="zstd")


def stop_sensors(server: DagsterServer, names: tuple[str, ...]) -> None:
    sensors = server.graphql(
        """{ sensorsOrError(repositorySelector: {repositoryLocationName: "tributary",
             repositoryName: "__repository__"}) { ... on Sensors { results { id name } } } }"""
    )["sensorsOrError"]["results"]
    ids = {s["name"]: s["id"] for s in sensors}
    for name in names:
        answer = server.graphql(
            "mutation($id: String) { stopSensor(id: $id) { __typename"
            " ... on StopSensorMutationResult { instigationState { status } } } }",
            {"id": ids[name]},
        )["stopSensor"]
        assert answer["instigationState"]["status"] == "STOPPED", answer


@pytest.fixture(scope="module")
def bridge(
    s3: PlatformSettings, opensearch: PlatformSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bridge]:
    work = tmp_path_factory.mktemp("airflow-bridge")
    # The session's servers, under a raw-zone prefix and an index prefix of this module's own.
    run = uuid.uuid4().hex[:8]
    raw_zone = s3.s3.model_copy(update={"raw_prefix": f"bridge-{run}/"})
    ensure_buckets(raw_zone)
    settings = PlatformSettings(
        profile=Profile.LOCAL,
        s3=raw_zone,
        search=opensearch.search.model_copy(update={"index_prefix": f"bridge-{run}"}),
        lake=LakeSettings(local_root=work / "lake"),
    )
    venv = airflow_venv(StackSettings().stack.cache_dir)
    with DagsterServer(work / "dagster", settings, daemon=True) as dagster:
        stop_sensors(dagster, SENSORS_OFF)
        for day, seed in ((DAY_OK, 21), (DAY_BAD, 22)):
            root = work / f"raw-{day}"
            config = SyntheticConfig(day=date.fromisoformat(day), events=800, seed=seed)
            write_raw_zone(config, root)
            if day == DAY_BAD:
                reuse_an_order_id(root, day)
            upload_day(raw_zone, root, day)
        zone: RawZoneResource = resources_for(settings)["raw_zone"]
        raw = {day: zone.read(day)[0] for day in (DAY_OK, DAY_BAD)}
        airflow = AirflowHome(
            work / "airflow", venv, {"AIRFLOW_CONN_DAGSTER_DEFAULT": dagster.url}
        ).init()
        yield Bridge(settings, dagster, airflow, raw)


def airflow_runs(bridge: Bridge, tags: dict[str, str]) -> list[dict[str, Any]]:
    """The Dagster runs the DAG launched that carry ``tags``."""
    wanted = {"airflow/dag_id": DAG_ID, **tags}
    answer = bridge.dagster.graphql(
        """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
             ... on Runs { results { runId status assetSelection { path }
                                     tags { key value } } } } }""",
        {"tags": [{"key": k, "value": v} for k, v in wanted.items()]},
    )
    runs: list[dict[str, Any]] = answer["runsOrError"]["results"]
    return runs


def tags_of(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def selection_of(run: dict[str, Any]) -> set[str]:
    return {"/".join(k["path"]) for k in run["assetSelection"]}


def latest_unpartitioned(bridge: Bridge, keys: set[str]) -> dict[str, str | None]:
    """Asset key -> the run of its latest materialization (None: never)."""
    nodes = bridge.dagster.graphql(
        """query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) {
             assetKey { path } assetMaterializations(limit: 1) { runId } } }""",
        {"keys": [{"path": k.split("/")} for k in sorted(keys)]},
    )["assetNodes"]
    return {
        "/".join(n["assetKey"]["path"]): (
            n["assetMaterializations"][0]["runId"] if n["assetMaterializations"] else None
        )
        for n in nodes
    }


def latest_materializations(bridge: Bridge, day: str) -> dict[str, str | None]:
    """Asset key -> the run that last materialised its partition ``day`` (None: never)."""
    nodes = bridge.dagster.graphql(
        """query($keys: [AssetKeyInput!], $day: String!) { assetNodes(assetKeys: $keys) {
             assetKey { path }
             latestMaterializationByPartition(partitions: [$day]) { runId partition } } }""",
        {"keys": [{"path": k.split("/")} for k in sorted(PARTITIONED)], "day": day},
    )["assetNodes"]
    found: dict[str, str | None] = {}
    for node in nodes:
        [event] = node["latestMaterializationByPartition"]
        assert event is None or event["partition"] == day
        found["/".join(node["assetKey"]["path"])] = event["runId"] if event else None
    return found


def rows(bridge: Bridge, table: str, day: str) -> pl.DataFrame:
    frame = pl.from_arrow(make_catalog(bridge.settings).load_table(table).scan().to_arrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.filter(pl.col("event_date") == date.fromisoformat(day))


def test_the_dag_materialises_the_partition_of_its_logical_date(bridge: Bridge) -> None:
    assert latest_materializations(bridge, DAY_OK) == dict.fromkeys(PARTITIONED)

    proc = bridge.airflow.dags_test(DAG_ID, DAY_OK)
    assert proc.returncode == 0, proc.stdout[-6000:]

    [run] = airflow_runs(bridge, {"dagster/partition": DAY_OK})
    assert run["status"] == "SUCCESS"
    tags = tags_of(run)
    assert tags["airflow/task_id"] == "materialise_curated_day"
    assert tags["airflow/run_id"] in proc.stdout
    # The day's task selects exactly the curated lake's partitioned assets.
    assert selection_of(run) == PARTITIONED
    # The task's log links the run.
    assert f"{bridge.dagster.url}/runs/{run['runId']}" in proc.stdout

    assert latest_materializations(bridge, DAY_OK) == dict.fromkeys(PARTITIONED, run["runId"])
    assert set(latest_materializations(bridge, DAY_BAD).values()) == {None}

    raw = bridge.raw[DAY_OK]
    assert raw.height > 500
    valid = rows(bridge, "staging.validated_events", DAY_OK)
    quarantined = rows(bridge, "staging.quarantined_events", DAY_OK)
    assert valid.height + quarantined.height == raw.height
    kpis = rows(bridge, "marts.agg_daily_kpis", DAY_OK)
    assert kpis.height == 1
    assert kpis.row(0, named=True)["raw_events"] == raw.height
    stg = rows(bridge, "staging.stg_events", DAY_OK)
    assert stg.height > 0

    # Then the dimensions, unpartitioned, in a run of their own that took in the new day.
    [dims] = airflow_runs(
        bridge, {"airflow/run_id": tags["airflow/run_id"], "airflow/task_id": "rebuild_dimensions"}
    )
    assert dims["status"] == "SUCCESS"
    assert selection_of(dims) == DIMENSIONS
    assert "dagster/partition" not in tags_of(dims)
    assert latest_unpartitioned(bridge, DIMENSIONS) == dict.fromkeys(DIMENSIONS, dims["runId"])
    users = pl.from_arrow(
        make_catalog(bridge.settings).load_table("marts.dim_users").scan().to_arrow()
    )
    assert isinstance(users, pl.DataFrame)
    assert set(stg["user_key"]) <= set(users["user_key"])


def test_a_failed_dagster_run_fails_the_airflow_task(bridge: Bridge) -> None:
    proc = bridge.airflow.dags_test(DAG_ID, DAY_BAD)
    assert proc.returncode != 0, proc.stdout[-6000:]

    [run] = airflow_runs(bridge, {"dagster/partition": DAY_BAD})
    assert run["status"] == "FAILURE"
    # The task's error names the failed step and the check that stopped it.
    failure = next(line for line in proc.stdout.splitlines() if f"{run['runId']} ended" in line)
    assert "FAILURE" in failure and "fct_order_lines" in failure and "key_unique" in failure
    # Upstream of the failed step the day was written; the order lines' check blocked it.
    materialised = latest_materializations(bridge, DAY_BAD)
    assert materialised["iceberg/staging/stg_events"] == run["runId"]
    assert rows(bridge, "staging.validated_events", DAY_BAD).height > 0
    # The dimensions' task never ran: its upstream failed.
    assert airflow_runs(bridge, {"airflow/run_id": tags_of(run)["airflow/run_id"]}) == [run]
