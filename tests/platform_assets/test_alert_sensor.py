"""The alert sensor over what the real real-time loader indexed, on each real search engine."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from platform_assets.sensors.alerts import alert_sensor, stream_alert
from resources.dagster_resources import SearchResource
from resources.search import make_search_store
from resources.settings import AlertSettings, PlatformSettings
from streaming.realtime_loader import RealtimeLoaderSettings
from tests.streaming.realtime_helpers import (
    caught_up,
    enriched_event,
    failed_event,
    loader_thread,
    produce,
    unique_settings,
)
from tests.streaming.worker_helpers import wait_for

pytestmark = pytest.mark.integration


class Webhook:
    """A receiver of the alerts' POSTs, on a free port."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def indexed(kafka: PlatformSettings, search: PlatformSettings) -> RealtimeLoaderSettings:
    """10 events and 5 dead letters, indexed now by the real-time loader, on each engine."""
    settings = unique_settings(search)
    source = f"shop-{uuid.uuid4().hex[:8]}"
    produce(settings, settings.topics.enriched, [enriched_event(source) for _ in range(10)])
    produce(
        settings, settings.topics.enriched_dlq, [failed_event(str(uuid.uuid4())) for _ in range(5)]
    )
    with loader_thread(settings):
        wait_for(lambda: caught_up(settings), 90, "the loader to index everything")
    # Indexed is not yet searchable: make the documents visible now, not after the next refresh.
    with make_search_store(settings.search) as store:
        store.refresh(f"{settings.search.index_prefix}-*")
    return settings


def evaluate(
    search: PlatformSettings, prefix: str, alerts: AlertSettings, cursor: str | None = None
) -> dg.SensorResult:
    sensor = alert_sensor(alerts)
    engine = search.search.engine
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "search": SearchResource(
                engine=engine.value,
                url=search.search.connection.url,
                username=None,
                password=None,
                ca_certs=None,
                index_prefix=prefix,
            )
        },
        definitions=dg.Definitions(jobs=[stream_alert], sensors=[sensor]),
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


@pytest.mark.slow
def test_a_high_dead_letter_rate_fires_once_per_episode(
    indexed: RealtimeLoaderSettings, webhook: Webhook
) -> None:
    prefix = indexed.search.index_prefix
    alerts = AlertSettings(window_minutes=10, max_dead_letter_rate=0.2, webhook_url=webhook.url)
    first = evaluate(indexed, prefix, alerts)
    requests = first.run_requests or []
    assert [r.tags["tributary/alert"] for r in requests] == ["dead_letter_rate"]
    assert webhook.received and webhook.received[0]["alert"] == "dead_letter_rate"
    assert (webhook.received[0]["events"], webhook.received[0]["dead_letters"]) == (10, 5)
    assert "33.3%" in str(webhook.received[0]["text"])

    # The same episode: no second run, no second webhook.
    again = evaluate(indexed, prefix, alerts, first.cursor)
    assert not again.run_requests and len(webhook.received) == 1

    # Under a higher threshold, nothing fires and the episode is over.
    calm = evaluate(
        indexed, prefix, AlertSettings(window_minutes=10, max_dead_letter_rate=0.5), first.cursor
    )
    assert not calm.run_requests and json.loads(calm.cursor or "{}") == {}


def test_silence_fires(webhook: Webhook, search: PlatformSettings) -> None:
    alerts = AlertSettings(window_minutes=5, webhook_url=webhook.url)
    result = evaluate(search, f"nothing-{uuid.uuid4().hex[:8]}", alerts)
    assert [r.tags["tributary/alert"] for r in result.run_requests or []] == ["silence"]
    assert webhook.received[0]["alert"] == "silence"
