"""Reliability of the whole stream under faults, reconciled by ``event_id`` afterwards.

The five processes run as a user runs them (``tributary run ...``), on real Kafka, SeaweedFS
and OpenSearch; the SeaweedFS and OpenSearch are the module's own, so stopping them disturbs
no other test. Each test sends events over HTTP (a share of them broken), injects one fault
while they flow, lets the pipeline recover, and then proves with
:class:`streaming.reconcile.Reconciler` that every accepted event is exactly once in the
enriched topic or the dead-letter topic, exactly once in OpenSearch, and exactly once in the
lake with no two objects covering the same offsets.
"""

from __future__ import annotations

import http.server
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resources.settings import PlatformSettings
from stack.config import StackSettings
from stack.manager import Stack
from stack.private import private_stack_settings
from streaming.reconcile import Reconciler, Reconciliation
from tests.pipeline_rig import Feed, Rig, settle, start_rig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 5000
Fault = Callable[[Reconciler], None]
RATE = 500.0  # events/s: the fault lands while events flow


@pytest.fixture(scope="module")
def private(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, StackSettings, Path]]:
    """A SeaweedFS and an OpenSearch of the module's own: the tests stop and restart them."""
    work = tmp_path_factory.mktemp("faults")
    servers = private_stack_settings(work / "state")
    stack = Stack(servers)
    stack.up(["seaweedfs", "opensearch"])
    yield stack, servers, work
    stack.down(["opensearch", "seaweedfs"])


@pytest.fixture(scope="module")
def rig(kafka: PlatformSettings, private: tuple[Stack, StackSettings, Path]) -> Iterator[Rig]:
    _, servers, work = private
    # No outage here lasts long enough to dead-letter anything.
    rig = start_rig(kafka, servers, work, enricher_dead_letter_after_s=600)
    yield rig
    rig.pipeline.stop()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def run_with_fault(rig: Rig, fault: Fault) -> Reconciliation:
    """Send events, apply ``fault`` mid-stream, recover, and return the reconciliation."""
    with Reconciler(rig.settings) as reconciler:
        feed = Feed(rig, EVENTS, RATE).start()
        fault(reconciler)
        stats = feed.join()
        result = settle(reconciler, rig)
    assert not result.problems(), result.problems()
    # Everything the collector acknowledged is on the raw topic, and nothing else.
    assert stats.sent == EVENTS and stats.error is None
    assert len(result.accepted) == stats.accepted
    enriched = set(result.enriched) & set(result.accepted)
    dead = set(result.enriched_dead_letters) & set(result.accepted)
    assert len(enriched) + len(dead) == stats.accepted
    assert len(enriched) > 0.9 * stats.accepted
    assert set(result.enriched_dead_letter_reasons) <= {"schema_violation"}, (
        result.enriched_dead_letter_reasons
    )
    assert sum(result.indexed_events.values()) == len(enriched)
    assert sum(result.lake_rows.values()) == len(enriched)
    return result


def progressed(reconciler: Reconciler, stage: Callable[[Reconciliation], int]) -> bool:
    return stage(reconciler.collect()) > 200


def kill_and_restart(rig: Rig, name: str, stage: Callable[[Reconciliation], int]) -> Fault:
    def fault(reconciler: Reconciler) -> None:
        wait_until(lambda: progressed(reconciler, stage), 60, f"{name} to make progress")
        process = rig.pipeline[name]
        process.stop(signal.SIGKILL)
        time.sleep(2)  # events keep arriving while it is down
        process.start()

    return fault


def test_kill_9_of_the_enricher(rig: Rig) -> None:
    run_with_fault(rig, kill_and_restart(rig, "enricher", lambda r: len(r.enriched)))


def test_kill_9_of_the_realtime_loader(rig: Rig) -> None:
    run_with_fault(
        rig, kill_and_restart(rig, "realtime-loader", lambda r: sum(r.indexed_events.values()))
    )


def test_kill_9_of_the_batch_loader(rig: Rig) -> None:
    result = run_with_fault(
        rig, kill_and_restart(rig, "batch-loader", lambda r: sum(r.lake_rows.values()))
    )
    assert result.lake_objects > 2


def test_enrichment_api_times_out_for_a_while(rig: Rig) -> None:
    """The API freezes (SIGSTOP): every call times out; the enricher waits, then resumes."""
    api = rig.pipeline["enrichment-api"]

    def fault(reconciler: Reconciler) -> None:
        wait_until(lambda: progressed(reconciler, lambda r: len(r.enriched)), 60, "enrichment")
        api.send(signal.SIGSTOP)
        try:
            time.sleep(8)
        finally:
            api.send(signal.SIGCONT)

    run_with_fault(rig, fault)


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(500)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *_: object) -> None:
        pass


def test_enrichment_api_answers_500_for_a_while(rig: Rig) -> None:
    """A broken deployment answers 500 on the API's address; then the real API is back."""
    api = rig.pipeline["enrichment-api"]
    options = rig.settings.enrichment

    def fault(reconciler: Reconciler) -> None:
        wait_until(lambda: progressed(reconciler, lambda r: len(r.enriched)), 60, "enrichment")
        api.stop()
        server = http.server.ThreadingHTTPServer((options.host, options.port), _Failing)
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            time.sleep(6)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        api.start()

    run_with_fault(rig, fault)


def test_opensearch_stopped_for_a_while(
    rig: Rig, private: tuple[Stack, StackSettings, Path]
) -> None:
    def fault(reconciler: Reconciler) -> None:
        wait_until(
            lambda: progressed(reconciler, lambda r: sum(r.indexed_events.values())),
            60,
            "indexing",
        )
        private[0].down(["opensearch"])
        time.sleep(6)
        private[0].up(["opensearch"])

    run_with_fault(rig, fault)


def test_s3_stopped_for_a_while(rig: Rig, private: tuple[Stack, StackSettings, Path]) -> None:
    def fault(reconciler: Reconciler) -> None:
        wait_until(
            lambda: progressed(reconciler, lambda r: sum(r.lake_rows.values())), 60, "the lake"
        )
        private[0].down(["seaweedfs"])
        time.sleep(6)
        private[0].up(["seaweedfs"])

    run_with_fault(rig, fault)
