"""The enrichment API's ASGI application: ``POST /v1/enrich``, ``/healthz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import msgspec
import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError

import enrichment
from contract.enrichment import MODEL_VERSION_HEADER, NDJSON
from contract.jsontext import JsonRefused, check_depth
from enrichment import metrics
from enrichment.config import EnrichmentSettings
from enrichment.service import CollectorIn, Enricher, EnrichRequest, EnrichResponse, EventIn
from resources.metrics import render_metrics
from runtime.process import freeze_heap

WARM_UP_EVENT = EventIn(
    event_id="warm-up",
    event_type="iglu:com.tributary.shop/product_view/jsonschema/1-0-0",
    payload={"product_id": "SKU-1", "price": 1.0, "currency": "USD"},
    event_timestamp="2026-01-01T00:00:00Z",
    context={"session_id": "warm-up"},
    collector=CollectorIn(
        client_ip="8.8.8.8",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36",
    ),
)


async def get_enricher(request: Request) -> Enricher:
    enricher: Enricher = request.app.state.enricher
    return enricher


async def get_settings(request: Request) -> EnrichmentSettings:
    settings: EnrichmentSettings = request.app.state.settings
    return settings


EnricherDep = Annotated[Enricher, Depends(get_enricher)]
SettingsDep = Annotated[EnrichmentSettings, Depends(get_settings)]


_, _REQUEST_SCHEMAS = msgspec.json.schema_components(
    (EnrichRequest,), ref_template="#/components/schemas/{name}"
)
_DECODER = msgspec.json.Decoder(EnrichRequest)
# msgspec's error messages end with where: "... - at `$.events[1].payload`".
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>.*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


def _parse(raw: bytes, max_depth: int) -> EnrichRequest:
    """The request, decoded and validated straight from its bytes by msgspec.

    Its events nest at most ``max_depth`` levels (``PlatformSettings.max_json_depth``), so the
    request two more (``{"events": [...]}``); deeper is refused before msgspec recurses.

    FastAPI would decode the JSON with the standard library, validate the objects with
    pydantic, and then validate and serialise the answer once more through ``response_model``;
    for a 500-event batch that framework work cost as much as the enrichment itself. msgspec
    stops at the first error; it is raised as FastAPI's, with a ``body`` location first and
    a missing field's own name last, so the 422 answer points at the failing field.
    """
    try:
        check_depth(raw, max_depth + 2)
    except JsonRefused as exc:
        raise RequestValidationError([{"loc": ("body",), "msg": exc.reason}]) from None
    try:
        return _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        match = _AT.match(str(exc))
        assert match is not None  # the pattern matches any text
        reason, path = match["reason"], match["path"] or ""
        loc: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
        missing = _MISSING.match(reason)
        if missing:
            loc.append(missing["name"])
            reason = "Field required"
        raise RequestValidationError([{"loc": ("body", *loc), "msg": reason}]) from None


def create_app(settings: EnrichmentSettings | None = None) -> FastAPI:
    settings = settings or EnrichmentSettings()
    options = settings.enrichment

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.enricher = Enricher(options)
        # The first batch pays for lazy set-up (the parser's compiled patterns, the model's
        # first prediction): once here, not within a producer's latency budget (a cold first
        # batch took over 500 ms on a loaded machine and was answered 503).
        app.state.enricher.enrich([WARM_UP_EVENT])
        # Batches run off the event loop, so a batch past its budget can be answered with 503.
        app.state.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="enrich")
        # The model, the parser's regexes, the rate and geo tables stay out of collections.
        freeze_heap()
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
        responses={
            200: {
                "description": "The enrichments. With `Accept: application/x-ndjson`: one "
                "Enrichment per line, in the order of the request's events, and the model's "
                f"version in the `{MODEL_VERSION_HEADER}` header.",
                "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/Enrichment"}}},
            },
            413: {"description": "Too many events"},
            503: {"description": "Retry"},
        },
        # The body is parsed here rather than by FastAPI (see ``_parse``); its schema is
        # declared for the OpenAPI document by hand.
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/EnrichRequest"}}
                },
            }
        },
    )
    async def enrich(request: Request, enricher: EnricherDep, settings: SettingsDep) -> Response:
        body = _parse(await request.body(), settings.max_json_depth)
        opts = settings.enrichment
        if len(body.events) > opts.max_batch_events:
            raise HTTPException(
                413, detail=f"{len(body.events)} events; at most {opts.max_batch_events}"
            )
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        future = loop.run_in_executor(request.app.state.executor, enricher.enrich, body.events)
        budget_s = opts.latency_budget_ms / 1000
        try:
            results: list[dict[str, Any]] = await asyncio.wait_for(future, budget_s)
            # wait_for returns a result that completed before its timer ran, even past the
            # budget (the loop had to wait for the GIL): the budget is kept either way.
            if time.perf_counter() - started > budget_s:
                raise TimeoutError
        except TimeoutError:
            raise HTTPException(
                503,
                detail=f"batch not enriched within {opts.latency_budget_ms:g} ms; retry later",
                headers={"Retry-After": str(opts.retry_after_s)},
            ) from None
        metrics.BATCH_LATENCY.observe(time.perf_counter() - started)
        metrics.EVENTS.inc(len(results))
        metrics.REQUESTS.labels(200).inc()
        if NDJSON in request.headers.get("accept", ""):
            lines = b"\n".join([orjson.dumps(r["enrichment"]) for r in results])
            headers = {MODEL_VERSION_HEADER: enricher.model_version}
            return Response(lines, media_type=NDJSON, headers=headers)
        # Shaped as EnrichResponse (the OpenAPI document's model), serialised as is.
        answer = {"model_version": enricher.model_version, "results": results}
        return Response(orjson.dumps(answer), media_type="application/json")

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate_openapi()
            document.setdefault("components", {}).setdefault("schemas", {}).update(_REQUEST_SCHEMAS)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

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
