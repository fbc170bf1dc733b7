"""A worker's metrics and health endpoints, served for real on a loopback port."""

from __future__ import annotations

import httpx
import orjson
import pytest

from runtime.metrics import MetricsPortUnavailable, WorkerMetrics, parse_metrics, serve_metrics

pytestmark = pytest.mark.unit


def stats(topic: str, **partitions: tuple[int, int]) -> str:
    """librdkafka statistics: per partition (last stable offset, committed offset)."""
    parts = {
        p: {"desired": True, "ls_offset": end, "hi_offset": end + 3, "committed_offset": done}
        for p, (end, done) in partitions.items()
    }
    parts["-1"] = {"desired": False, "ls_offset": -1, "hi_offset": -1, "committed_offset": -1001}
    return orjson.dumps({"topics": {topic: {"partitions": parts}}}).decode()


def test_lag_is_the_last_stable_offset_past_the_best_known_commit() -> None:
    metrics = WorkerMetrics("enricher")
    metrics.on_stats(stats("raw", **{"0": (100, 90), "1": (40, -1001), "2": (7, -1001)}))
    assert metrics.lag() == {("raw", 0): 10, ("raw", 1): 40, ("raw", 2): 7}
    # A commit made through a transactional producer, unseen by librdkafka's consumer.
    metrics.committed([("raw", 1, 38), ("raw", 0, 80)])
    assert metrics.lag() == {("raw", 0): 10, ("raw", 1): 2, ("raw", 2): 7}
    metrics.forget([("raw", 2)])  # revoked: another member's lag now
    assert ("raw", 2) not in metrics.lag()
    metrics.on_stats(stats("raw", **{"0": (100, 100)}))  # the next statistics replace these
    assert metrics.lag() == {("raw", 0): 0}


def test_healthz_follows_the_loop_and_metrics_are_scraped() -> None:
    now = [0.0]
    metrics = WorkerMetrics("batch-loader", clock=lambda: now[0])
    metrics.watch_breaker(lambda: "half-open")
    metrics.on_stats(stats("enriched", **{"0": (5, 2)}))
    metrics.records_in.labels("enriched").inc(5)
    metrics.dead_letters.labels("loader_rejection").inc()
    with serve_metrics(metrics, 0, stale_after_s=10) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert httpx.get(f"{base}/healthz").status_code == 503  # not started yet
        metrics.started("host-a")
        now[0] = 9.0
        ok = httpx.get(f"{base}/healthz")
        assert ok.status_code == 200 and ok.json()["last_poll_age_s"] == 9.0
        now[0] = 10.5  # the loop has not polled for longer than allowed
        assert httpx.get(f"{base}/healthz").status_code == 503
        metrics.beat()
        assert httpx.get(f"{base}/healthz").status_code == 200
        scrape = parse_metrics(httpx.get(f"{base}/metrics").text)
        metrics.stopped()
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/nothing").status_code == 404
    assert scrape.total("tributary_worker_records_in_total") == 5
    assert scrape.by("tributary_worker_dead_letters_total", "reason") == {"loader_rejection": 1}
    assert scrape.values("tributary_worker_consumer_lag")[0].labels == {
        "topic": "enriched",
        "partition": "0",
    }
    assert scrape.total("tributary_worker_consumer_lag") == 3
    states = {s.labels["tributary_worker_breaker_state"]: s.value for s in
              scrape.values("tributary_worker_breaker_state")}  # fmt: skip
    assert states == {"closed": 0, "open": 0, "half-open": 1}
    info = scrape.values("tributary_worker_info")[0].labels
    assert info == {"worker": "batch-loader", "instance_id": "host-a"}


def test_a_taken_port_is_one_clear_error() -> None:
    first = WorkerMetrics("enricher")
    with serve_metrics(first, 0) as server:
        port = server.server_address[1]
        with (
            pytest.raises(MetricsPortUnavailable, match=f"127.0.0.1:{port}.*metrics_port"),
            serve_metrics(WorkerMetrics("enricher"), port),
        ):
            pass
