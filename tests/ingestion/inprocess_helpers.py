"""The collector's real application in this process, with an in-memory Kafka producer.

Only the producer is replaced: ``KafkaBridge`` (its poll thread, the per-request delivery
reports, the unavailable flag), the ``Collector`` core, the routes and the exception handlers
all run as in ``tributary run collector``. ``FakeProducer`` keeps what is produced and reports
each delivery from ``poll()``, on the bridge's poll thread, as librdkafka does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException
from fastapi import FastAPI

from contract.failures import FailedEvent
from ingestion.api.main import create_app
from ingestion.core.config import CollectorSettings
from ingestion.core.delivery import ProducerFactory
from resources.settings import KafkaSettings
from tests.ingestion.collector_helpers import WRITE_KEY, api_keys

Report = Callable[[KafkaError | None, Any], None]


@dataclass(frozen=True)
class Produced:
    topic: str
    value: bytes
    key: bytes | None

    def json(self) -> Any:
        return orjson.loads(self.value)


@dataclass(frozen=True)
class _Metadata:
    brokers: dict[int, str]
    topics: dict[str, object]


class FakeProducer:
    """An in-memory ``confluent_kafka.Producer``: the calls ``KafkaBridge`` makes, no more.

    ``refuse`` makes every later delivery report carry that error; ``hold`` keeps the reports
    back (Kafka never answers); ``queue_full`` makes ``produce`` raise ``BufferError``;
    ``brokers_up = False`` makes metadata requests fail, as with no broker reachable.
    """

    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.messages: list[Produced] = []
        self.config: dict[str, Any] = {}
        self.error_cb: Callable[[KafkaError], None] | None = None
        self.refuse: KafkaError | None = None
        self.hold = False
        self.queue_full = False
        self.brokers_up = True
        self._reports: queue.Queue[tuple[Report, KafkaError | None, Produced]] = queue.Queue()

    def factory(self, kafka: KafkaSettings, **config: Any) -> FakeProducer:
        """Stands in for ``make_kafka_producer``: keeps the configuration it was given."""
        self.error_cb = config.pop("error_cb", None)
        self.config = {**kafka.client_config(), **config}
        return self

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: str | bytes | None = None,
        on_delivery: Report | None = None,
    ) -> None:
        if self.queue_full:
            raise BufferError("Local: Queue full")
        message = Produced(topic, value or b"", key.encode() if isinstance(key, str) else key)
        if self.refuse is None:
            self.messages.append(message)
        if on_delivery is not None and not self.hold:
            self._reports.put((on_delivery, self.refuse, message))

    def poll(self, timeout: float = 0) -> int:
        served = 0
        try:
            report, err, message = self._reports.get(timeout=timeout)
            while True:
                report(err, message)
                served += 1
                report, err, message = self._reports.get_nowait()
        except queue.Empty:
            return served

    def flush(self, timeout: float = 0) -> int:
        self.poll(0)
        return 0

    def list_topics(self, timeout: float = 0) -> _Metadata:
        if not self.brokers_up:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "all brokers are down"))
        return _Metadata({1: "127.0.0.1:9092"}, {t: object() for t in self.topics})

    def on(self, topic: str) -> list[Produced]:
        return [m for m in self.messages if m.topic == topic]


def collector_settings(monkeypatch: pytest.MonkeyPatch, **options: Any) -> CollectorSettings:
    """The settings a collector process reads, with no gRPC and the suite's keys.

    The environment's own ``TRIBUTARY_COLLECTOR__*`` are removed, so that only ``options``
    change the defaults.
    """
    for name in [n for n in os.environ if n.startswith("TRIBUTARY_COLLECTOR__")]:
        monkeypatch.delenv(name)
    return CollectorSettings.model_validate(
        {"collector": {"grpc_port": 0, "api_keys": api_keys(), **options}}
    )


@dataclass
class InProcessCollector:
    settings: CollectorSettings
    kafka: FakeProducer
    http: httpx.AsyncClient

    @property
    def raw(self) -> list[Produced]:
        return self.kafka.on(self.settings.topics.raw)

    @property
    def dead_letters(self) -> list[FailedEvent]:
        return [
            FailedEvent.model_validate_json(m.value)
            for m in self.kafka.on(self.settings.topics.collector_dlq)
        ]

    async def post(
        self, body: object | bytes, key: str | None = WRITE_KEY, **headers: str
    ) -> httpx.Response:
        """POST ``body`` (JSON-encoded unless it is bytes) to ``/v1/events`` with ``key``."""
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        sent = {"content-type": "application/json", **headers}
        if key is not None:
            sent.setdefault("authorization", f"Bearer {key}")
        return await self.http.post("/v1/events", content=content, headers=sent)


@contextlib.asynccontextmanager
async def in_process_collector(
    settings: CollectorSettings,
    client: tuple[str, int] = ("198.51.100.20", 40000),
    *,
    through_fastapi: bool = False,
) -> AsyncIterator[InProcessCollector]:
    """``create_app`` started through its lifespan, as uvicorn starts it, and a client to it.

    ``through_fastapi`` sends every request through FastAPI's own handling, ``POST
    /v1/events`` included, which the application otherwise answers before FastAPI.
    """
    fake = FakeProducer({settings.topics.raw, settings.topics.collector_dlq})
    # The fake answers the producer calls the bridge makes; it is no confluent Producer.
    app = create_app(settings, producer_factory=cast(ProducerFactory, fake.factory))
    asgi: Any = functools.partial(FastAPI.__call__, app) if through_fastapi else app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=asgi, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
            yield InProcessCollector(settings, fake, http)
