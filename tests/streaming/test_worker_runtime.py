"""The stream workers on the worker runtime, as ``tributary run <name>`` runs them.

Real Kafka and OpenSearch: metrics and health follow the stream, a crashed enricher that is
restarted is back within seconds (static membership), and outages and rebalances are a line
per change of state in the log, never a traceback.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cli.processes import PlatformProcess, child_env
from resources.kafka import TopicReader
from resources.search import make_search_store
from resources.settings import PlatformSettings, TopicNames
from stack.private import free_port
from tests.kafka_helpers import read_committed
from tests.streaming.enricher_helpers import (
    EnrichmentApi,
    committed_through,
    ids_of,
    produce,
    raw_records,
    settings_for,
)
from tests.streaming.realtime_helpers import (
    all_docs,
    drop_indices,
    drop_topics,
    enriched_event,
    unique_settings,
)
from tests.streaming.realtime_helpers import (
    produce as produce_enriched,
)
from tests.streaming.worker_helpers import TcpProxy, breaker_state, healthz, lag, scrape, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# librdkafka's default session.timeout.ms: how long a dynamic member's crash stalls its
# partitions. The bound below is well under it.
SESSION_TIMEOUT_S = 45
RECOVERY_BOUND_S = 20


def test_enricher_metrics_follow_an_api_outage_with_one_line_per_change(
    kafka: PlatformSettings, topics: TopicNames, tmp_path: Path
) -> None:
    values, valid_ids, expected = raw_records(600, bad_share=0.1)
    api_port, port = free_port(), free_port()
    settings = settings_for(
        kafka,
        topics,
        enrichment_enabled=True,
        enrichment_url=f"http://127.0.0.1:{api_port}",
        request_timeout_s=3,
        retry={"initial_s": 0.2, "max_s": 1},
        breaker_failures=2,
        breaker_reset_s=1,
        dead_letter_after_s=600,
        metrics_port=port,
        stats_interval_ms=200,
        instance_id="metrics-test",
    )
    log = tmp_path / "enricher.log"
    enricher = PlatformProcess(
        "enricher",
        child_env(settings, inherit=False),
        log,
        ready_url=f"http://127.0.0.1:{port}/healthz",
    )
    api = EnrichmentApi(api_port, tmp_path / "api.log")
    enricher.start()
    try:
        before = scrape(port)
        assert before.total("tributary_worker_up") == 1
        assert before.total("tributary_worker_records_in_total") == 0
        produce(kafka, topics.raw, values)

        # The API is down: the batch in hand waits, consumption pauses, nothing is committed.
        def waiting() -> bool:
            m = scrape(port)
            return (
                m.total("tributary_worker_retries_total") >= 3
                and m.total("tributary_worker_paused_partitions") == 3
                and lag(m, topics.raw) == len(values)
                and breaker_state(m) in ("open", "half-open")
            )

        wait_for(waiting, 60, "back-pressure while the API is down")
        during = scrape(port)
        assert 0 < during.total("tributary_worker_records_in_total") <= len(values)
        assert during.total("tributary_worker_records_out_total") == 0
        assert during.total("tributary_worker_buffered_bytes") > 0
        assert healthz(port) == 200  # the loop polls while it waits

        api.start()

        def caught_up() -> bool:
            m = scrape(port)
            out = m.by("tributary_worker_records_out_total", "destination")
            return lag(m, topics.raw) == 0 and out.get(topics.enriched) == len(valid_ids)

        wait_for(caught_up, 120, "the enricher to catch up")
        after = scrape(port)
        assert after.total("tributary_worker_records_in_total") == len(values)
        assert after.by("tributary_worker_dead_letters_total", "reason") == {
            "schema_violation": expected["schema_violation"]
        }
        assert after.total("tributary_worker_paused_partitions") == 0
        assert breaker_state(after) == "closed"
    finally:
        enricher.stop()
        api.stop()
    text = log.read_text()
    assert text.count("enrichment API unavailable (") == 1, text[-3000:]
    assert text.count("enrichment API available again after") == 1, text[-3000:]
    assert text.count(f"paused {topics.raw}[0,1,2]") == 1
    assert text.count(f"resumed {topics.raw}[0,1,2]") == 1
    assert text.count(f"assigned {topics.raw}[0,1,2]") == 1
    assert "Traceback" not in text


def test_a_crashed_enricher_restarted_under_its_member_id_is_back_within_seconds(
    kafka: PlatformSettings, topics: TopicNames, tmp_path: Path
) -> None:
    values, valid_ids, _ = raw_records(15000, bad_share=0.0)
    port = free_port()
    settings = settings_for(
        kafka, topics, batch_size=200, metrics_port=port, instance_id="crash-test"
    )
    log = tmp_path / "enricher.log"
    enricher = PlatformProcess(
        "enricher",
        child_env(settings, inherit=False),
        log,
        ready_url=f"http://127.0.0.1:{port}/healthz",
    )

    def feed() -> None:  # about 1,000 events a second: events in flight at the crash
        for start in range(0, len(values), 500):
            produce(kafka, topics.raw, values[start : start + 500])
            time.sleep(0.5)

    enricher.start()
    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        wait_for(
            lambda: scrape(port).by("tributary_worker_records_out_total", "destination").get(
                topics.enriched, 0
            ) > 1000,
            60,
            "the enricher to make progress",
        )  # fmt: skip
        enricher.stop(signal.SIGKILL)  # most likely mid-transaction
        time.sleep(1)
        with TopicReader(settings.kafka, topics.enriched) as reader:
            restarted = time.monotonic()
            enricher.start()
            while not reader.read(timeout=1):
                assert time.monotonic() - restarted < SESSION_TIMEOUT_S + 30, "nothing enriched"
            recovery = time.monotonic() - restarted
        feeder.join()
        wait_for(lambda: committed_through(settings), 180, "the enricher to catch up")
    finally:
        feeder.join()
        enricher.stop()
    print(f"first output {recovery:.1f}s after the restart")
    assert recovery < RECOVERY_BOUND_S, f"first output {recovery:.1f}s after the restart"
    ids = ids_of(read_committed(kafka.kafka, topics.enriched))
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} events enriched twice"
    assert set(ids) == valid_ids, f"{len(valid_ids - set(ids))} events lost"
    text = log.read_text()
    assert text.count(f"assigned {topics.raw}[0,1,2]") == 2  # once per start
    assert "member crash-test, transactional id" in text


def test_a_search_store_outage_is_one_line_down_and_one_back(
    kafka: PlatformSettings, opensearch: PlatformSettings, tmp_path: Path
) -> None:
    real = urlsplit(opensearch.search.opensearch.url)
    proxy = TcpProxy((real.hostname or "127.0.0.1", real.port or 9200))
    port = free_port()
    via_proxy = kafka.model_copy(
        update={
            "search": opensearch.search.model_copy(
                update={
                    "opensearch": opensearch.search.opensearch.model_copy(
                        update={"url": f"http://127.0.0.1:{proxy.port}"}
                    )
                }
            )
        }
    )
    settings = unique_settings(
        via_proxy,
        metrics_port=port,
        instance_id="outage-test",
        retry={"initial_s": 0.2, "max_s": 1},
    )
    client = make_search_store(opensearch.search)
    prefix = settings.search.index_prefix
    source = f"shop-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "realtime-loader.log"
    loader = PlatformProcess(
        "realtime-loader",
        child_env(settings, inherit=False),
        log,
        ready_url=f"http://127.0.0.1:{port}/healthz",
    )
    proxy.up()
    loader.start()
    try:
        first = [enriched_event(source) for _ in range(100)]
        produce_enriched(settings, settings.topics.enriched, first)
        wait_for(
            lambda: scrape(port).total("tributary_worker_records_out_total") == 100, 60, "indexing"
        )
        proxy.down()
        during = [enriched_event(source) for _ in range(100)]
        produce_enriched(settings, settings.topics.enriched, during)
        wait_for(
            lambda: scrape(port).total("tributary_worker_retries_total") >= 4, 30, "the retries"
        )
        down = scrape(port)
        assert down.total("tributary_worker_paused_partitions") > 0
        assert lag(down, settings.topics.enriched) == 100
        assert healthz(port) == 200
        proxy.up()
        wait_for(
            lambda: scrape(port).total("tributary_worker_records_out_total") == 200, 60, "recovery"
        )
        assert lag(scrape(port), settings.topics.enriched) == 0
    finally:
        loader.stop()
        proxy.down()
    try:
        docs = all_docs(client, f"{prefix}-events-*")
        assert {d["_id"] for d in docs} == {e.event_id for e in first + during}
    finally:
        drop_indices(client, prefix)
        drop_topics(settings)
    text = log.read_text()
    assert text.count("OpenSearch unavailable (") == 1, text[-3000:]
    assert text.count("OpenSearch available again after") == 1, text[-3000:]
    assert text.count("paused ") == 1 and text.count("resumed ") == 1
    assert "assigned " in text and "revoked " in text
    assert "Traceback" not in text
