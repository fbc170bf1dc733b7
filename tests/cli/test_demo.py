from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.demo import sample_events
from contract.registry import SchemaRegistry
from resources.settings import PlatformSettings


@pytest.mark.unit
def test_sample_events_are_seeded_and_mix_in_bad_ones() -> None:
    registry = SchemaRegistry.from_directory()
    first = sample_events(registry, 500, 0.2, seed=3)
    assert [json.loads(b)["event_id"] for b in first[:5] if b.startswith(b"{")] == [
        json.loads(b)["event_id"]
        for b in sample_events(registry, 500, 0.2, seed=3)[:5]
        if b.startswith(b"{")
    ]
    not_json = sum(1 for b in first if not b.startswith(b"{"))
    assert 0 < not_json < 100


@pytest.mark.e2e
def test_demo_accounts_for_every_event(
    kafka: PlatformSettings, s3: PlatformSettings, opensearch: PlatformSettings
) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tributary"), "demo", "--events", "400"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every event is accounted for" in result.stdout
    assert "events sent" in result.stdout and "400" in result.stdout
