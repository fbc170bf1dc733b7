"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaException
from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from ingestion.api.deps import CollectorDep
from ingestion.api.models import Readiness
from ingestion.api.responses import JSONBytes
from resources.metrics import render_metrics

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Kafka is reachable and the topics exist",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Kafka or a topic is missing."}},
)
async def readyz(collector: CollectorDep) -> JSONBytes:
    topics = [collector.raw_topic, collector.dlq_topic]
    try:
        present = await asyncio.get_running_loop().run_in_executor(
            None, collector.bridge.probe, topics
        )
    except KafkaException as exc:
        return JSONBytes({"status": "unavailable", "kafka": str(exc)}, status_code=503)
    ready = all(present.values())
    return JSONBytes(
        {"status": "ready" if ready else "unavailable", "kafka": "reachable", "topics": present},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "The Prometheus text exposition format."}},
)
async def prometheus() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
