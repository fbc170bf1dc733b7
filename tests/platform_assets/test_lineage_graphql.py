"""The lineage graph as the Dagster webserver serves it (GraphQL), from HTTP ingestion to marts."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ingestion.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } isMaterializable } }"


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dagster-home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    log = home / "webserver.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env["DAGSTER_HOME"] = str(home)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-webserver"),
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def graph(url: str) -> dict[str, dict[str, Any]]:
    # The code location loads in the background: ask until its assets are there.
    deadline = time.monotonic() + 120
    while True:
        answer = httpx.post(f"{url}/graphql", json={"query": QUERY}, timeout=30).json()
        nodes = answer.get("data", {}).get("assetNodes") or []
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    return {
        "/".join(n["assetKey"]["path"]): {
            "deps": {"/".join(d["path"]) for d in n["dependencyKeys"]},
            "materializable": n["isMaterializable"],
        }
        for n in nodes
    }


def test_one_flow_from_ingestion_to_the_marts(webserver: str) -> None:
    nodes = graph(webserver)
    chain = [
        "kafka/events_raw",
        "kafka/events_enriched",
        "s3/raw_events",
        "iceberg/staging/validated_events",
        "iceberg/staging/deduplicated_events",
        "iceberg/staging/stg_events",
        "iceberg/marts/agg_daily_kpis",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert upstream in nodes[downstream]["deps"], (downstream, nodes[downstream]["deps"])
    assert "kafka/events_enriched" in nodes["opensearch/events"]["deps"]
    assert "kafka/events_enriched_dlq" in nodes["opensearch/deadletters"]["deps"]
    for name in ("fct_events", "fct_sessions", "fct_order_lines", "dim_users", "dim_products"):
        assert "iceberg/staging/stg_events" in nodes[f"iceberg/marts/{name}"]["deps"]
    # What the stream writes is external; what Dagster computes is materializable.
    assert not nodes["kafka/events_raw"]["materializable"]
    assert not nodes["s3/raw_events"]["materializable"]
    assert not nodes["opensearch/events"]["materializable"]
    assert nodes["iceberg/marts/agg_daily_kpis"]["materializable"]
