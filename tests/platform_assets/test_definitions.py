from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from platform_assets.definitions import build_definitions
from resources.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.slow
def test_workspace_loads_and_validates(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful for code location tributary" in result.stdout + result.stderr


@pytest.mark.unit
def test_topics_are_external_assets_in_data_flow_order() -> None:
    settings = PlatformSettings(
        kafka={"events_retention_days": 3, "dead_letter_retention_days": 14}
    )
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    raw = dg.AssetKey(["kafka", "events_raw"])
    enriched = dg.AssetKey(["kafka", "events_enriched"])
    loader_dlq = dg.AssetKey(["kafka", "events_loader_dlq"])
    assert graph.get(enriched).parent_keys == {raw}
    # The real-time loader may refuse what it loads: events, and both stages' dead letters.
    assert graph.get(loader_dlq).parent_keys == {
        enriched,
        dg.AssetKey(["kafka", "events_enriched_dlq"]),
        dg.AssetKey(["kafka", "events_raw_dlq"]),
    }
    assert graph.get(raw).metadata["topic"] == settings.topics.raw
    # How long each topic keeps personal data, in the UI (docs/privacy.md).
    assert graph.get(raw).metadata["retention_days"] == 3
    assert graph.get(loader_dlq).metadata["retention_days"] == 14
    assert not graph.get(raw).is_materializable, "topics are written by the stream workers"


@pytest.mark.unit
@pytest.mark.parametrize("profile", ["local", "stack"])
def test_each_profile_has_its_resources(profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_PROFILE", profile)
    monkeypatch.setenv("TRIBUTARY_S3__ACCESS_KEY_ID", "team")
    monkeypatch.setenv("TRIBUTARY_S3__SECRET_ACCESS_KEY", "a-real-secret")
    defs = build_definitions(PlatformSettings())
    assert {"kafka", "search", "s3"} <= set(defs.resources or {})
    s3 = (defs.resources or {})["s3"]
    # The secret reaches Dagster as an environment reference, so the UI never shows it.
    assert isinstance(s3.aws_secret_access_key, dg.EnvVar)
    assert s3.aws_secret_access_key.env_var_name == "TRIBUTARY_S3__SECRET_ACCESS_KEY"


@pytest.mark.unit
def test_the_daily_schedule_runs_the_marts_of_the_day_before() -> None:
    from datetime import UTC, datetime

    defs = build_definitions(PlatformSettings())
    schedule = defs.get_schedule_def("daily_marts_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 29, 1, 30, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-11-28"]
    job = defs.get_job_def("daily_marts")
    selected = set(job.asset_layer.asset_graph.executable_asset_keys)
    assert dg.AssetKey(["iceberg", "marts", "agg_daily_kpis"]) in selected
    assert dg.AssetKey(["iceberg", "staging", "stg_events"]) not in selected
