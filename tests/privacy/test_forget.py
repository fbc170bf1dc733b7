"""``tributary forget`` on what the real stream wrote: search store, raw zone, curated lake.

Events go through the five processes (``tests.pipeline_rig``), the curated chain runs for
their dates into a local Iceberg catalog, then one user is erased through the CLI. Nothing of
theirs may be left anywhere the platform wrote it, in any file of the lake's warehouse (not
only in the current snapshot), and nothing of anyone else may be lost; the aggregates are
recomputed without them, the audit says what went where, and a second request removes
nothing and names the first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import dagster as dg
import polars as pl
import pytest

from cli.processes import child_env
from contract.search import DEADLETTERS, EVENTS, index_pattern
from platform_assets.definitions import build_definitions
from platform_assets.runs import materialize_days
from privacy.forget import (
    LAKE,
    RAW_ZONE,
    SEARCH,
    audit_rows,
    forget,
    recorded_dates,
    subject_digest,
)
from privacy.trace import Hints, Stage, State, Tracer
from resources.lake import make_catalog
from resources.search import make_search_store
from resources.settings import LakeSettings, PlatformSettings, Profile
from streaming.reconcile import Reconciler
from tests.pipeline_rig import Feed, settle, start_rig
from tests.streaming.batch_helpers import read_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS_SENT = 1500
TABLES = (
    "staging.validated_events",
    "staging.deduplicated_events",
    "staging.stg_events",
    "marts.fct_events",
    "marts.fct_sessions",
    "marts.fct_order_lines",
    "marts.dim_users",
)


@dataclass
class Lake:
    settings: PlatformSettings
    days: list[str]
    user: str
    work: Path


def raw_rows(settings: PlatformSettings) -> pl.DataFrame:
    """Every row of the raw zone, with the key of its object."""
    objects, _ = read_lake(settings.s3, settings.s3.raw_prefix)
    frames = []
    for o in objects:
        frame = pl.from_arrow(o.table)
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame.with_columns(object=pl.lit(o.key)))
    return pl.concat(frames)


def of_user(frame: pl.DataFrame, user: str) -> pl.DataFrame:
    return frame.filter(pl.col("context").str.json_path_match("$.user_id") == user)


def table(settings: PlatformSettings, name: str) -> pl.DataFrame:
    frame = pl.from_arrow(make_catalog(settings).load_table(name).scan().to_arrow())
    assert isinstance(frame, pl.DataFrame)
    return frame


def search_count(settings: PlatformSettings, family: str, query: dict[str, object]) -> int:
    store = make_search_store(settings.search)
    pattern = index_pattern(settings.search.index_prefix, family)
    store.refresh(pattern)
    return store.count(pattern, query)


def mine(frame: pl.DataFrame, user: str, ids: set[str]) -> pl.Expr:
    """The rows of ``user`` in a curated table: by user id, else user key, else event id."""
    if "user_id" in frame.columns:
        return pl.col("user_id") == user
    if "user_key" in frame.columns:
        return pl.col("user_key") == f"u:{user}"
    return pl.col("event_id").is_in(ids)


def warehouse_files_holding(settings: PlatformSettings, user: str, ids: set[str]) -> list[str]:
    """The Parquet files of the lake's warehouse (of any snapshot) with a row of ``user``."""
    held = []
    for path in sorted((settings.lake.local_root / "warehouse").rglob("*.parquet")):
        frame = pl.read_parquet(path)
        leaks = {
            "user_id": pl.col("user_id") == user,
            "user_key": pl.col("user_key") == f"u:{user}",
            "event_id": pl.col("event_id").is_in(ids),
            "context": pl.col("context").str.json_path_match("$.user_id") == user,
        }
        if any(frame.filter(leak).height for c, leak in leaks.items() if c in frame.columns):
            held.append(str(path))
    return held


@pytest.fixture(scope="module")
def lake(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    opensearch: PlatformSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lake]:
    work = tmp_path_factory.mktemp("forget")
    rig = start_rig(kafka, s3, work)
    start = datetime.now(UTC) - timedelta(hours=2)
    try:
        with Reconciler(rig.settings) as reconciler:
            stats = Feed(rig, EVENTS_SENT, None, seed=23, start=start).start().join()
            result = settle(reconciler, rig, producers=[stats])
        assert result.settled, result.problems()
    finally:
        rig.pipeline.stop()
    settings = PlatformSettings(
        profile=Profile.LOCAL,
        kafka=rig.settings.kafka,
        topics=rig.settings.topics,
        s3=rig.settings.s3,
        search=rig.settings.search,
        lake=LakeSettings(local_root=work / "lake"),
    )
    rows = raw_rows(settings)
    days = sorted({d.isoformat() for d in rows["event_timestamp"].dt.date().to_list()})
    results = materialize_days(settings, days, dg.DagsterInstance.ephemeral())
    assert all(r.success for r in results.values()), results
    # The user with the most events: on every stage, with sessions and (likely) purchases.
    users = (
        rows.select(user=pl.col("context").str.json_path_match("$.user_id"))
        .drop_nulls()
        .group_by("user")
        .len()
        .sort("len", "user", descending=True)
    )
    yield Lake(settings, days, users["user"][0], work)


def test_forget_erases_the_user_everywhere_and_only_them(lake: Lake) -> None:
    settings, user = lake.settings, lake.user
    before_raw = raw_rows(settings)
    theirs = of_user(before_raw, user)
    assert theirs.height >= 5, "the chosen user has too few events to tell anything"
    their_ids = set(theirs["event_id"].to_list())
    before_tables = {name: table(settings, name) for name in TABLES}
    before_kpis = table(settings, "marts.agg_daily_kpis")
    # What the erasure must remove, present before it: the checks below can fail.
    for name in TABLES:
        assert before_tables[name].filter(mine(before_tables[name], user, their_ids)).height, name
    assert before_tables["marts.dim_users"].filter(pl.col("user_key") == f"u:{user}").height == 1
    assert len(warehouse_files_holding(settings, user, their_ids)) >= len(TABLES)
    in_search = search_count(settings, EVENTS, {"term": {"context.user_id": user}})
    assert in_search == theirs.height
    everyone_in_search = search_count(settings, EVENTS, {"match_all": {}})

    # Through the CLI, as an operator runs it: the marts are recomputed in its process.
    env = {**child_env(settings, inherit=False), "DAGSTER_HOME": str(lake.work / "dagster")}
    command = [sys.executable, "-m", "cli.main", "forget", "--json", "--user-id", user]
    done = subprocess.run(
        [*command, "--requested-by", "dpo@example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["subject_sha256"] == subject_digest("user_id", user)
    assert user not in done.stdout  # the outcome names the person by digest only
    assert outcome["recomputed_dates"] == sorted(
        {d.isoformat() for d in theirs["event_timestamp"].dt.date().to_list()}
    )
    removed = {(r["store"], r["location"]): r["removed"] for r in outcome["removals"]}

    # Search store: none of theirs, everyone else's still there.
    assert search_count(settings, EVENTS, {"term": {"context.user_id": user}}) == 0
    assert search_count(settings, EVENTS, {"match_all": {}}) == everyone_in_search - in_search
    assert removed[(SEARCH, index_pattern(settings.search.index_prefix, EVENTS))] == in_search
    assert (SEARCH, index_pattern(settings.search.index_prefix, DEADLETTERS)) in removed

    # Raw zone: the objects rewritten without their rows, nothing else changed.
    after_raw = raw_rows(settings)
    assert of_user(after_raw, user).height == 0
    assert after_raw.height == before_raw.height - theirs.height
    assert sorted(after_raw["event_id"].to_list()) == sorted(
        before_raw.filter(~pl.col("event_id").is_in(their_ids))["event_id"].to_list()
    )
    raw_removed = sum(v for (store, _), v in removed.items() if store == RAW_ZONE)
    assert raw_removed == theirs.height
    assert {k for s, k in removed if s == RAW_ZONE} == set(theirs["object"].to_list())

    # Curated lake: each table lost exactly the person's rows.
    for name in TABLES:
        before, after = before_tables[name], table(settings, name)
        theirs_in = mine(before, user, their_ids)
        assert after.filter(theirs_in).height == 0, name
        assert after.height == before.height - before.filter(theirs_in).height, name
        assert removed.get((LAKE, name), 0) == before.filter(theirs_in).height, name
        if "event_id" in after.columns:
            assert not set(after["event_id"].to_list()) & their_ids, name

    # No file of the warehouse still holds them: not an old snapshot's data file either.
    assert warehouse_files_holding(settings, user, their_ids) == []

    # The aggregates no longer count them: the KPIs' human events fell by theirs, per day.
    after_kpis = table(settings, "marts.agg_daily_kpis")
    stg = before_tables["staging.stg_events"]
    for day in outcome["recomputed_dates"]:
        date_ = datetime.fromisoformat(day).date()
        theirs_that_day = stg.filter(
            (pl.col("user_key") == f"u:{user}")
            & (pl.col("event_date") == date_)
            & ~pl.col("is_bot")
            & pl.col("event_vendor").eq("com.tributary.shop")
        ).height
        events_before = before_kpis.filter(pl.col("date") == date_)["events"][0]
        events_after = after_kpis.filter(pl.col("date") == date_)["events"][0]
        assert events_after == events_before - theirs_that_day, day

    # The audit: who asked, when, where and how many; never the id in clear.
    rows = audit_rows(make_catalog(settings), outcome["request_id"])
    assert {r["requested_by"] for r in rows} == {"dpo@example.com"}
    assert {r["subject_sha256"] for r in rows} == {subject_digest("user_id", user)}
    assert {(r["store"], r["location"]): r["removed"] for r in rows} == removed
    assert all(user not in json.dumps(r, default=str) for r in rows)

    # A trace of one of their events finds nothing left but Kafka's copies (until retention).
    event = theirs.row(0, named=True)
    with Tracer(settings) as tracer:
        found = tracer.trace(event["event_id"], Hints(day=event["event_timestamp"].date()))
    for stage in (Stage.SEARCH, Stage.RAW_ZONE, Stage.CURATED):
        assert found.step(stage).state is State.ABSENT, found.lines()
    assert found.step(Stage.RAW_TOPIC).state is State.FOUND, found.lines()

    # Again: nothing more is removed, and the outcome names the first request.
    again = forget(settings, "user_id", user, "dpo@example.com")
    assert again.removed == 0
    assert [rid for rid, _ in again.earlier] == [outcome["request_id"]]
    assert any("already erased" in line for line in again.lines())
    assert len(audit_rows(make_catalog(settings), again.request_id)) >= 1
    assert raw_rows(settings).height == after_raw.height


def test_the_dagster_job_erases_and_its_sensor_recomputes_the_marts_of_the_dates(
    lake: Lake,
) -> None:
    """``forget_person`` launched as the UI does; the sensor asks for the marts it touched."""
    settings = lake.settings
    rows = raw_rows(settings)
    users = (
        rows.select(user=pl.col("context").str.json_path_match("$.user_id"))
        .drop_nulls()
        .filter(pl.col("user") != lake.user)
        .group_by("user")
        .len()
        .sort("len", "user", descending=True)
    )
    user = users["user"][0]
    theirs = of_user(rows, user)
    assert theirs.height
    defs = build_definitions(settings)
    job = defs.resolve_job_def("forget_person")
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        run_config={
            "ops": {"erase_person": {"config": {"value": user, "requested_by": "dpo@example.com"}}}
        },
        instance=instance,
    )
    assert result.success
    days = sorted({d.isoformat() for d in theirs["event_timestamp"].dt.date().to_list()})
    assert [d.isoformat() for d in recorded_dates(make_catalog(settings), result.run_id)] == days
    assert of_user(raw_rows(settings), user).height == 0
    assert (
        table(settings, "staging.stg_events").filter(pl.col("user_key") == f"u:{user}").is_empty()
    )
    audit = audit_rows(make_catalog(settings), result.run_id)
    assert sum(r["removed"] for r in audit if r["store"] == RAW_ZONE) == theirs.height

    sensor = defs.resolve_sensor_def("recompute_after_erasure")
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=result.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=run,
    )
    requests = list(cast(Iterator[dg.RunRequest], sensor(context)))
    assert [r.partition_key for r in requests] == days
    assert {r.job_name for r in requests} <= {"daily_marts", None}
    assert len({r.run_key for r in requests}) == len(days)
