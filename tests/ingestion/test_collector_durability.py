"""What the collector acknowledges is in Kafka: through a Kafka outage and a SIGTERM."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from resources.settings import PlatformSettings
from stack.config import StackSettings
from stack.manager import Stack
from stack.private import free_port
from tests.ingestion.collector_helpers import (
    WRITE_KEY,
    CollectorProcess,
    collector_env,
    event,
)
from tests.kafka_helpers import end_offsets, read_since

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def post(url: str, batch: list[dict[str, object]]) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/events",
        content=orjson.dumps(batch),
        headers={"content-type": "application/json", "authorization": f"Bearer {WRITE_KEY}"},
        timeout=30,
    )


@pytest.fixture()
def private_kafka(tmp_path: Path) -> Iterator[tuple[Stack, PlatformSettings]]:
    """A Kafka of this test's own, which it may stop and start at will."""
    port, controller = free_port(), free_port()
    settings = StackSettings.model_validate(
        {
            "kafka": {"bootstrap_servers": f"127.0.0.1:{port}"},
            "stack": {"state_dir": tmp_path / "state", "kafka_controller_port": controller},
        }
    )
    stack = Stack(settings)
    stack.up(["kafka"])
    yield stack, settings
    stack.down(["kafka"])


def test_kafka_outage_gives_503_and_recovers_without_restart(
    private_kafka: tuple[Stack, PlatformSettings], tmp_path: Path
) -> None:
    stack, settings = private_kafka
    start = end_offsets(settings.kafka, settings.topics.raw)
    collector = CollectorProcess(
        collector_env(settings, free_port(), free_port()),
        0,
        0,
        tmp_path / "collector.log",
    )
    collector.port = int(collector.env["TRIBUTARY_COLLECTOR__PORT"])
    collector.grpc_port = int(collector.env["TRIBUTARY_COLLECTOR__GRPC_PORT"])
    collector.start()
    acknowledged: set[str] = set()
    try:
        before = [event() for _ in range(20)]
        assert post(collector.url, before).status_code == 202
        acknowledged |= {e["event_id"] for e in before}

        stack.down(["kafka"])
        refused = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = [event() for _ in range(5)]
            resp = post(collector.url, batch)
            if resp.status_code == 202:
                acknowledged |= {e["event_id"] for e in batch}
                continue
            assert resp.status_code == 503, resp.text
            assert int(resp.headers["retry-after"]) > 0
            refused += 1
            if refused >= 3:
                break
            time.sleep(0.5)
        assert refused >= 3, "the collector kept answering 2xx with Kafka down"
        ready = httpx.get(f"{collector.url}/readyz", timeout=10)
        assert ready.status_code == 503

        stack.up(["kafka"])
        recovered = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = [event() for _ in range(5)]
            resp = post(collector.url, batch)
            if resp.status_code == 202:
                acknowledged |= {e["event_id"] for e in batch}
                recovered = True
                break
            time.sleep(1)
        assert recovered, "the collector did not recover after Kafka came back"
    finally:
        collector.stop()

    on_topic = {
        orjson.loads(m.value() or b"")["event_id"]
        for m in read_since(settings.kafka, settings.topics.raw, start, len(acknowledged))
    }
    assert acknowledged <= on_topic, f"{len(acknowledged - on_topic)} acknowledged events lost"


def test_sigterm_under_load_loses_no_acknowledged_event(
    own_collector: CollectorProcess, kafka: PlatformSettings
) -> None:
    start = end_offsets(kafka.kafka, kafka.topics.raw)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            batch = [event() for _ in range(20)]
            try:
                resp = post(own_collector.url, batch)
            except httpx.HTTPError:
                continue
            if resp.status_code == 202:
                with lock:
                    acknowledged.extend(e["event_id"] for e in batch)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(2)
    assert acknowledged, "no load reached the collector"
    began = time.monotonic()
    code = own_collector.stop(signal.SIGTERM, timeout=60)
    shutdown_s = time.monotonic() - began
    stop.set()
    for t in threads:
        t.join()
    assert code == 0, f"collector exited with {code}"
    assert shutdown_s < 30

    ids = set(acknowledged)
    on_topic = {
        orjson.loads(m.value() or b"")["event_id"]
        for m in read_since(kafka.kafka, kafka.topics.raw, start, len(ids))
    }
    assert ids <= on_topic, f"{len(ids - on_topic)} of {len(ids)} acknowledged events lost"
