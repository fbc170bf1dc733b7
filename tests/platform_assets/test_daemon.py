"""The triggers on a running Dagster: webserver and daemon, on what the real batch loader wrote.

- the raw-zone sensor (run by the daemon) records the new raw partitions and launches their
  validation, and declarative automation carries every date through to the KPIs;
- a backfill over a date range, launched over GraphQL as the UI does, completes;
- the daily schedule's tick, evaluated by the webserver and launched, rebuilds the marts of
  the day before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cli.dagster import INSTANCE_YAML, DagsterServer
from platform_assets.assets.lake.curated import (
    DEDUPLICATED,
    KPIS,
    QUARANTINED,
    VALIDATED,
)
from platform_assets.assets.lake.raw_zone import RAW_EVENTS
from resources.settings import LakeSettings, PlatformSettings, Profile
from tests.streaming.batch_helpers import (
    LoaderThread,
    enriched_event,
    hours_apart,
    loader_settings,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

LOCATION = {"repositoryLocationName": "tributary", "repositoryName": "__repository__"}
# At most two runs at a time: each run is a process that loads the code location. The queue
# is read every second (5 by default) and the triggers tick every 5 s (30 by default): the
# test waits on the chain, not on idle ticks.
INSTANCE = (
    INSTANCE_YAML + "run_coordinator:\n  module: dagster._core.run_coordinator\n"
    "  class: QueuedRunCoordinator\n  config:\n    max_concurrent_runs: 2\n"
    "    dequeue_interval_seconds: 1\n"
)
TICK_S = 5

MATERIALIZATIONS = """
query ($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}"""
RUN = """
query ($id: ID!) {
  runOrError(runId: $id) { ... on Run { status tags { key value } } }
}"""


@dataclass
class Platform:
    server: DagsterServer
    days: list[str]

    def materializations(self, key: dg.AssetKey, days: list[str]) -> list[dict[str, str]]:
        data = self.server.graphql(MATERIALIZATIONS, {"path": key.path, "partitions": days})
        return list(data["assetOrError"]["assetMaterializations"])

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.server.graphql(RUN, {"id": run_id})["runOrError"]
        return {"status": run["status"], "tags": {t["key"]: t["value"] for t in run["tags"]}}

    def wait(self, what: str, done: Any, timeout: float = 600) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = done()
            if value:
                return value
            if time.monotonic() > deadline:
                log = self.server.daemon.log_tail() if self.server.daemon else ""
                raise AssertionError(f"timed out waiting for {what}; daemon log:\n{log}")
            time.sleep(3)


@pytest.fixture(scope="module")
def platform(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    opensearch: PlatformSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    work: Path = tmp_path_factory.mktemp("daemon")
    loader = loader_settings(kafka, s3.s3, flush_max_events=100)
    assert loader.batch_loader.topic is not None
    # Five hours around last midnight: the events fall on yesterday and today.
    midnight = datetime.combine(datetime.now(UTC).date(), clock(0), tzinfo=UTC)
    stamps = hours_apart(midnight - timedelta(hours=3), 400, hours=5)
    produce(
        kafka.kafka, loader.batch_loader.topic, [enriched_event(t, i) for i, t in enumerate(stamps)]
    )
    thread = LoaderThread(loader).start()
    try:
        thread.wait_caught_up()
    finally:
        thread.close()
    settings = PlatformSettings(
        profile=Profile.LOCAL,
        kafka=kafka.kafka,
        s3=loader.s3,
        search=opensearch.search,
        lake=LakeSettings(local_root=work / "lake", trigger_interval_s=TICK_S),
    )
    days = sorted({t.astimezone(UTC).date().isoformat() for t in stamps})
    with DagsterServer(work / "dagster", settings, daemon=True, instance_yaml=INSTANCE) as server:
        yield Platform(server, days)


def test_the_sensor_and_automation_curate_each_new_date(platform: Platform) -> None:
    raw = platform.wait(
        "the sensor's raw partitions",
        lambda: (
            len(platform.materializations(RAW_EVENTS, platform.days)) >= 2
            and platform.materializations(RAW_EVENTS, platform.days)
        ),
    )
    assert {m["partition"] for m in raw} == set(platform.days)

    validated = platform.wait(
        "validation of both dates",
        lambda: (
            len({m["partition"] for m in platform.materializations(VALIDATED, platform.days)}) == 2
            and platform.materializations(VALIDATED, platform.days)
        ),
    )
    sensor_runs = {m["runId"] for m in validated}
    for run_id in sensor_runs:
        assert platform.run(run_id)["tags"].get("dagster/sensor_name") == "raw_zone_sensor"

    # Automation follows through staging to the KPIs, for both dates.
    kpis = platform.wait(
        "automation up to the KPIs",
        lambda: (
            {m["partition"] for m in platform.materializations(KPIS, platform.days)}
            == set(platform.days)
            and platform.materializations(KPIS, platform.days)
        ),
    )
    automated = {
        platform.run(m["runId"])["tags"].get("dagster/from_automation_condition") for m in kpis
    }
    assert automated == {"true"}


def test_a_backfill_over_the_date_range_completes(platform: Platform) -> None:
    before = {m["runId"] for m in platform.materializations(DEDUPLICATED, platform.days)}
    launched = platform.server.graphql(
        """mutation ($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId }
            ... on PythonError { message }
          }
        }""",
        {
            "params": {
                "partitionNames": platform.days,
                # Validation, and deduplication, which reads the day before (a partition
                # mapping the backfill must follow); each further layer would only add the
                # backfill daemon's 30 s between iterations.
                "assetSelection": [
                    {"path": list(k.path)} for k in (VALIDATED, QUARANTINED, DEDUPLICATED)
                ],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def status() -> str | None:
        data = platform.server.graphql(
            "query ($id: String!) { partitionBackfillOrError(backfillId: $id) {"
            " ... on PartitionBackfill { status } } }",
            {"id": backfill_id},
        )
        value = data["partitionBackfillOrError"]["status"]
        return value if value not in ("REQUESTED", "CANCELING", "FAILING") else None

    assert platform.wait("the backfill", status) in ("COMPLETED", "COMPLETED_SUCCESS")
    after = platform.materializations(DEDUPLICATED, platform.days)
    backfilled = [m for m in after if m["runId"] not in before]
    assert {m["partition"] for m in backfilled} == set(platform.days)
    for m in backfilled:
        assert platform.run(m["runId"])["tags"].get("dagster/backfill") == backfill_id


def test_the_daily_schedule_rebuilds_the_marts_of_the_day_before(platform: Platform) -> None:
    today = datetime.now(UTC).date()
    tick = datetime.combine(today, clock(1, 30), tzinfo=UTC)
    dry_run = platform.server.graphql(
        """mutation ($selector: ScheduleSelector!, $ts: Float!) {
          scheduleDryRun(selectorData: $selector, timestamp: $ts) {
            ... on DryRunInstigationTick { evaluationResult {
              runRequests { runKey tags { key value } } skipReason error { message } } }
          }
        }""",
        {"selector": {**LOCATION, "scheduleName": "daily_marts_schedule"}, "ts": tick.timestamp()},
    )["scheduleDryRun"]["evaluationResult"]
    assert not dry_run["error"] and not dry_run["skipReason"], dry_run
    (request,) = dry_run["runRequests"]
    tags = {t["key"]: t["value"] for t in request["tags"]}
    yesterday = (today - timedelta(days=1)).isoformat()
    assert tags["dagster/partition"] == yesterday

    launched = platform.server.graphql(
        """mutation ($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } }
            ... on PythonError { message }
          }
        }""",
        {
            "params": {
                "selector": {**LOCATION, "jobName": "daily_marts"},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    final = platform.wait(
        "the schedule's run",
        lambda: (s := platform.run(run_id)["status"]) in ("SUCCESS", "FAILURE", "CANCELED") and s,
    )
    assert final == "SUCCESS"
    kpis = platform.materializations(KPIS, [yesterday])
    assert run_id in {m["runId"] for m in kpis}
