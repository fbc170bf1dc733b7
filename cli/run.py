"""``tributary run <process>``: start one of the platform's long-running processes.

Every process starts through ``runtime.process.run_process``: one logging format naming the
process, quiet client libraries, a stop event set by SIGTERM/SIGINT, the heap frozen after
start-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import typer

app = typer.Typer(help="Run one of the platform's processes in the foreground.")


def _load(settings_cls: Any) -> Any:
    """The process's one settings object (invalid settings end it through ``cli.main.main``)."""
    return settings_cls()


def _serve(
    name: str, app_path: str, host: str, port: int, workers: int, **uvicorn_options: Any
) -> None:
    """Serve an ASGI app factory with uvicorn; several workers share one metrics folder.

    uvicorn handles the stop signals itself (it drains requests in flight), and applies the
    logging configuration in every worker process; the app freezes its heap on start-up.
    """
    import uvicorn

    from runtime.process import logging_config, run_process

    metrics_dir = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker counts in its own files; /metrics adds them up.
        metrics_dir = tempfile.mkdtemp(prefix="tributary-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        run_process(
            name,
            lambda _stop: uvicorn.run(
                app_path,
                factory=True,
                host=host,
                port=port,
                workers=workers,
                # Client addresses come from our own trusted-proxy rule, not uvicorn's.
                proxy_headers=False,
                access_log=False,
                log_level="info",
                log_config=logging_config(name),
                # A server process answers the supervisor's ping only once it has imported
                # the app: on a loaded machine that took longer than uvicorn's default 5 s, and
                # the supervisor killed and restarted its workers in a loop.
                timeout_worker_healthcheck=30,
                **uvicorn_options,
            ),
            freeze=False,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def collector() -> None:
    """The HTTP (and gRPC) collector, with the configured number of worker processes."""
    from ingestion.core.config import CollectorSettings

    options = _load(CollectorSettings).collector
    _serve(
        "collector",
        "ingestion.api.main:create_app",
        options.host,
        options.port,
        options.workers,
        timeout_graceful_shutdown=int(options.delivery_timeout_s) + 5,
    )


@app.command("enrichment-api")
def enrichment_api() -> None:
    """The enrichment API: user agent, geolocation, currency, and the bot-score model."""
    from enrichment.config import EnrichmentSettings

    settings = _load(EnrichmentSettings)
    _serve(
        "enrichment-api",
        "enrichment.api:create_app",
        settings.host,
        settings.port,
        settings.workers,
    )


def _worker(name: str, settings_cls: Any, run: Any) -> None:
    """Run a stream worker until SIGTERM/SIGINT, then let it finish its batch and close."""
    from runtime.process import run_process

    settings = _load(settings_cls)
    run_process(name, lambda stop: run(settings, stop))


@app.command()
def enricher() -> None:
    """Validate raw events against their schemas, enrich them, write them exactly once."""
    from streaming.enricher import EnricherSettings
    from streaming.enricher import run as run_enricher

    _worker("enricher", EnricherSettings, run_enricher)


@app.command("batch-loader")
def batch_loader() -> None:
    """Write the enriched stream to the lake's raw zone as Parquet, partitioned by event hour."""
    from streaming.batch_loader import BatchLoaderSettings
    from streaming.batch_loader import run as run_batch_loader

    _worker("batch-loader", BatchLoaderSettings, run_batch_loader)


@app.command("realtime-loader")
def realtime_loader() -> None:
    """Index enriched events and dead letters into the search store, by event day, exactly once."""
    from streaming.realtime_loader import RealtimeLoaderSettings
    from streaming.realtime_loader import run as run_realtime_loader

    _worker("realtime-loader", RealtimeLoaderSettings, run_realtime_loader)
