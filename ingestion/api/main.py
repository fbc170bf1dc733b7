"""The collector's ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from contract.registry import SchemaRegistry
from ingestion.api.models import SECURITY_SCHEMES, event_schemas
from ingestion.api.responses import JSONBytes
from ingestion.api.routes import events, health
from ingestion.core.auth import KeyStore
from ingestion.core.config import CollectorSettings
from ingestion.core.delivery import KafkaBridge, KafkaUnavailable, ProducerFactory
from ingestion.core.ingest import Collector
from resources.kafka import make_kafka_producer
from runtime.process import freeze_heap

log = logging.getLogger(__name__)


async def _watch_kafka(collector: Collector) -> None:
    """While Kafka is marked unreachable, probe it every second and recover without restart."""
    loop = asyncio.get_running_loop()
    topics = [collector.raw_topic]
    while True:
        await asyncio.sleep(1)
        if collector.bridge.available:
            continue
        with contextlib.suppress(Exception):
            await loop.run_in_executor(None, collector.bridge.probe, topics)
            if collector.bridge.available:
                log.warning("Kafka reachable again")


class CollectorApp(FastAPI):
    """The collector's FastAPI application, which answers ``POST /v1/events`` first itself.

    That request goes straight to ``events.events_endpoint``; every other request (and that
    path with another method, or under a root path) goes through FastAPI as usual.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == events.EVENTS_PATH
            and scope["method"] == "POST"
            and not self.root_path
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await events.events_endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: CollectorSettings | None = None,
    *,
    producer_factory: ProducerFactory = make_kafka_producer,
) -> FastAPI:
    """The collector's application; ``uvicorn --factory`` calls it with no arguments.

    Args:
        settings: The process's settings; read from the environment when not given.
        producer_factory: Builds the Kafka producer at start-up (tests pass an in-memory one).
    """
    settings = settings or CollectorSettings()
    registry = SchemaRegistry.from_directory()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        options = settings.collector
        bridge = KafkaBridge(
            settings.kafka,
            options.delivery_timeout_s,
            options.queue_max_messages,
            options.linger_ms,
            producer_factory,
        )
        collector = Collector(settings, registry, bridge)
        app.state.settings = settings
        app.state.collector = collector
        app.state.keys = KeyStore(options.api_keys)
        grpc_server = None
        if options.grpc_port:
            from ingestion.grpc.server import start_grpc_server

            grpc_server = await start_grpc_server(collector, settings, app.state.keys)
        watcher = asyncio.create_task(_watch_kafka(collector))
        freeze_heap()
        try:
            yield
        finally:
            # Requests in flight have finished (the server drained them); deliver the rest.
            watcher.cancel()
            if grpc_server is not None:
                await grpc_server.stop(grace=options.delivery_timeout_s)
            left = bridge.close(options.delivery_timeout_s)
            if left:
                log.error("%d messages were still undelivered at shutdown", left)

    app = CollectorApp(
        title="Tributary collector",
        version="1.0.0",
        description="Receives events over HTTP, checks their envelope, and writes them to "
        "Kafka: the raw topic, or the dead-letter topic with the reasons.",
        lifespan=lifespan,
    )
    app.include_router(events.router, tags=["events"])
    app.include_router(health.router, tags=["operations"])
    app.openapi = _document(app, settings, registry)  # type: ignore[method-assign]

    @app.exception_handler(KafkaUnavailable)
    async def kafka_unavailable(request: Request, exc: KafkaUnavailable) -> JSONBytes:
        return events.unavailable(exc, settings)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONBytes:
        return events.http_error(exc)

    return app


def _document(
    app: FastAPI, settings: CollectorSettings, registry: SchemaRegistry
) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document plus what the routes cannot declare.

    That is the event schemas (with the registered event types and this collector's limits)
    and the API keys.
    """
    build = app.openapi
    options = settings.collector

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            rules = options.envelope_rules()
            limits = (
                f"Its timestamp lies at most {rules.max_past_skew} in the past and "
                f"{rules.max_future_skew} in the future (h:mm:ss); it is at most "
                f"{options.max_event_bytes} bytes and nests at most {settings.max_json_depth} "
                "levels of arrays and objects."
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(
                event_schemas([k.uri for k in registry], options.max_batch_events, limits)
            )
            components["securitySchemes"] = SECURITY_SCHEMES
        return app.openapi_schema or {}

    return document
