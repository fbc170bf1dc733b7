"""The enrichment API's ASGI application: ``POST /v1/enrich``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError

import enrichment
from enrichment import metrics
from enrichment.config import EnrichmentSettings
from enrichment.service import EnrichedResult, Enricher, EnrichRequest, EnrichResponse
from resources.metrics import render_metrics


async def get_enricher(request: Request) -> Enricher:
    enricher: Enricher = request.app.state.enricher
    return enricher


async def get_settings(request: Request) -> EnrichmentSettings:
    settings: EnrichmentSettings = request.app.state.settings
    return settings


EnricherDep = Annotated[Enricher, Depends(get_enricher)]
SettingsDep = Annotated[EnrichmentSettings, Depends(get_settings)]


def create_app(settings: EnrichmentSettings | None = None) -> FastAPI:
    settings = settings or EnrichmentSettings()
    options = settings.enrichment

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.enricher = Enricher(options)
        # Batches run off the event loop, so a batch past its budget can be answered with 503.
        app.state.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="enrich")
        try:
            yield
        finally:
            app.state.executor.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(
        title="Tributary enrichment",
        version=enrichment.__version__,
        description="Enriches batches of events: user agent, IP country, amounts in EUR and "
        "a bot probability from a versioned model.",
        lifespan=lifespan,
    )

    @app.post(
        "/v1/enrich",
        response_model=EnrichResponse,
        tags=["enrichment"],
        responses={413: {"description": "Too many events"}, 503: {"description": "Retry"}},
    )
    async def enrich(
        request: Request, body: EnrichRequest, enricher: EnricherDep, settings: SettingsDep
    ) -> EnrichResponse:
        opts = settings.enrichment
        if len(body.events) > opts.max_batch_events:
            raise HTTPException(
                413, detail=f"{len(body.events)} events; at most {opts.max_batch_events}"
            )
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        future = loop.run_in_executor(request.app.state.executor, enricher.enrich, body.events)
        try:
            results: list[EnrichedResult] = await asyncio.wait_for(
                future, opts.latency_budget_ms / 1000
            )
        except TimeoutError:
            raise HTTPException(
                503,
                detail=f"batch not enriched within {opts.latency_budget_ms:g} ms; retry later",
                headers={"Retry-After": str(opts.retry_after_s)},
            ) from None
        metrics.BATCH_LATENCY.observe(time.perf_counter() - started)
        metrics.EVENTS.inc(len(results))
        metrics.REQUESTS.labels(200).inc()
        return EnrichResponse(model_version=enricher.model_version, results=results)

    @app.get("/healthz", tags=["operations"], summary="The process is alive, the model loaded")
    async def healthz(enricher: EnricherDep) -> dict[str, str]:
        return {"status": "ok", "model_version": enricher.model_version}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        from fastapi.responses import JSONResponse

        metrics.REQUESTS.labels(exc.status_code).inc()
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        from fastapi.responses import JSONResponse

        errors: list[dict[str, Any]] = [
            {
                "field": "/" + "/".join(str(p) for p in e.get("loc", ())[1:]),
                "reason": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        metrics.REQUESTS.labels(422).inc()
        return JSONResponse({"detail": "malformed request", "errors": errors}, 422)

    return app
