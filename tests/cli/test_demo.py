from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import PlatformSettings


@pytest.mark.e2e
def test_demo_accounts_for_every_event(
    kafka: PlatformSettings, s3: PlatformSettings, opensearch: PlatformSettings
) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "tributary"),
            "demo",
            "--events",
            "600",
            "--iot-events",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every event is accounted for" in result.stdout
    assert "Reconciliation" in result.stdout
    sent_row = next(line for line in result.stdout.splitlines() if "events sent" in line)
    assert "800" in sent_row
