"""The topics' observations read the stream workers' /metrics; a worker down is reported."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.observe import observe

from platform_assets.assets.streaming.topics import (
    ENRICHED,
    ENRICHED_DLQ,
    RAW,
    RAW_DLQ,
    topic_assets,
)
from resources.settings import TopicNames
from runtime.metrics import WorkerMetrics, serve_metrics
from runtime.worker import WorkerEndpoints
from stack.private import free_port

pytestmark = pytest.mark.unit

STATS = """{"topics": {"%s": {"partitions": {
  "0": {"desired": true, "ls_offset": 120, "hi_offset": 120, "committed_offset": 100},
  "1": {"desired": true, "ls_offset": 50, "hi_offset": 50, "committed_offset": -1001},
  "-1": {"desired": false, "ls_offset": -1, "hi_offset": -1, "committed_offset": -1001}}}}}"""


def test_lag_and_dead_letter_rate_are_observed_and_a_down_worker_is_reported() -> None:
    names = TopicNames()
    metrics = WorkerMetrics("enricher")
    metrics.started("host-1")
    metrics.on_stats(STATS % names.raw)
    metrics.committed([(names.raw, 1, 45)])  # a transactional commit librdkafka cannot see
    metrics.records_in.labels(names.raw).inc(200)
    metrics.dead_letters.labels("schema_violation").inc(8)
    metrics.dead_letters.labels("enrichment_failed").inc(2)
    down = free_port()
    with serve_metrics(metrics, 0) as server:
        endpoints = WorkerEndpoints.model_validate(
            {
                "enricher": {"metrics_port": server.server_address[1]},
                "realtime_loader": {"metrics_port": down},
                "batch_loader": {"metrics_port": down},
            }
        )
        assets = topic_assets(names, endpoints=endpoints)
        observable = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
        result = observe(observable)
    assert result.success
    seen = {e.asset_key: e.asset_observation_data.asset_observation.metadata for e in
            result.get_asset_observation_events()}  # fmt: skip
    raw = seen[RAW]
    assert raw["enricher_status"].value == "up"
    assert raw["enricher_lag"].value == 20 + 5
    assert raw["enricher_lag_by_partition"].value == {"0": 20, "1": 5}
    dlq = seen[ENRICHED_DLQ]
    assert dlq["enricher_dead_letters"].value == 10
    assert dlq["enricher_dead_letters_by_reason"].value == {
        "schema_violation": 8,
        "enrichment_failed": 2,
    }
    assert dlq["enricher_dead_letter_rate"].value == pytest.approx(0.05)
    enriched = seen[ENRICHED]
    for worker in ("realtime_loader", "batch_loader"):
        status = str(enriched[f"{worker}_status"].value)
        assert status.startswith("down (ConnectError") and str(down) in status
    # The collector's dead letters: the real-time loader's lag on them (it indexes them).
    status = str(seen[RAW_DLQ]["realtime_loader_status"].value)
    assert status.startswith("down (ConnectError") and str(down) in status
