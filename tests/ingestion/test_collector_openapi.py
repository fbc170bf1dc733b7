"""The OpenAPI document against what the collector answers: schemathesis, every check on.

Requests are generated from the document (valid ones, and ones that break it), sent to the
real collector process (``tributary run collector`` on the suite's Kafka), and each answer is
checked against the document: no 5xx, only documented statuses, content types, headers and
bodies, valid data accepted, invalid data refused, requests without a key refused. An
in-process variant (the real app, an in-memory producer) runs the same checks in the unit
layer.

What JSON Schema cannot say is left to the collector and told in words in the document: an
event's timestamp must lie within the skew of *now*, so valid events get the current time.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi

from ingestion.api.main import create_app
from ingestion.core.config import ApiKey, CollectorOptions, CollectorSettings
from ingestion.core.delivery import ProducerFactory
from tests.ingestion.collector_helpers import WRITE_KEY, CollectorProcess, api_keys
from tests.ingestion.inprocess_helpers import FakeProducer

Case = schemathesis.Case[Any]

AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}

CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "enabled": True,
            # Refusing a document-breaking request: with the statuses the document gives.
            # A batch in which only some events break it is answered 207, each event with its
            # own status (the others are accepted); a batch over maxItems is 413.
            "negative_data_rejection": {
                "expected-statuses": ["207", "400", "401", "403", "413", "415"]
            },
            "max_response_time": 10.0,  # seconds; a delivery report waits 5 s at most here
        },
    }
)


def with_current_timestamps(case: Case) -> None:
    """Give the events of a document-valid request the current time (see the module doc)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    body = case.body
    now = datetime.now(UTC).isoformat()
    for item in body if isinstance(body, list) else [body]:
        if isinstance(item, dict) and "event_timestamp" in item:
            item["event_timestamp"] = now


def check(case: Case, **kwargs: Any) -> None:
    with_current_timestamps(case)
    case.call_and_validate(headers=AUTH, **kwargs)


def collector_document() -> dict[str, Any]:
    """The document of a collector with the default settings, as the real process serves it.

    Built at import, so that schemathesis can make one test per operation at collection
    (the real process starts later, with the first test that needs it; a schema loaded
    from a fixture, ``schemathesis.pytest.from_fixture``, does not run under pytest 9).
    ``test_the_real_collector_serves_the_document_tested_here`` checks it is the same.
    """
    options = CollectorOptions(grpc_port=0)
    return create_app(CollectorSettings(collector=options)).openapi()


DOCUMENT = collector_document()
# Copies: schemathesis changes the document it is given as it generates requests.
SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)


def examples(n: int) -> settings:
    """``n`` generated requests per operation (on top of schemathesis's coverage cases)."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.mark.integration
def test_the_real_collector_serves_the_document_tested_here(collector: CollectorProcess) -> None:
    served = httpx.get(f"{collector.url}/openapi.json", timeout=10).json()
    assert served == DOCUMENT


@pytest.mark.integration
@pytest.mark.slow
@SCHEMA.parametrize()
@examples(300)  # about 20 s; 1,500 (1,048 accepted, 652 refused) took 77 s and found nothing
def test_the_real_collector_answers_as_its_document_says(
    case: Case, collector: CollectorProcess
) -> None:
    check(case, base_url=collector.url)


def in_process_document() -> schemathesis.BaseSchema:
    """The document, to be sent to the real app in this process with an in-memory producer."""
    collector_settings = CollectorSettings(
        collector=CollectorOptions(grpc_port=0, api_keys=[ApiKey(**k) for k in api_keys()])
    )
    fake = FakeProducer({collector_settings.topics.raw, collector_settings.topics.collector_dlq})
    schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)
    # As schemathesis.openapi.from_asgi does, without starting the app at import: its
    # lifespan starts with the first request, as under uvicorn.
    schema.app = create_app(
        collector_settings, producer_factory=cast(ProducerFactory, fake.factory)
    )
    return schema


IN_PROCESS = in_process_document()


@pytest.fixture()
def stopped_afterwards() -> Iterator[None]:
    yield
    asgi.shutdown_lifespans()


@pytest.mark.unit
@IN_PROCESS.parametrize()
@examples(50)
def test_the_app_answers_as_its_document_says(case: Case, stopped_afterwards: None) -> None:
    check(case)
