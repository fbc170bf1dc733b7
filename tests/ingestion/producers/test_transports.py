"""Transports: what the requests look like, and which answers are retried, final or fatal.

The collector's answers are simulated with ``httpx.MockTransport`` here; the tests against the
real collector are in ``test_delivery.py``.
"""

from __future__ import annotations

import gzip
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import grpc
import httpx
import orjson
import pytest

from ingestion.producers.config import ProducerSettings
from ingestion.producers.transports import (
    FatalError,
    GrpcTransport,
    Rejection,
    RestTransport,
    RetryableError,
    classify_grpc,
    make_transport,
    parse_retry_after,
)
from resources.settings import local_folder

pytestmark = pytest.mark.unit

E1 = b'{"event_id":"5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11","payload":{}}'
E2 = b'{"event_id":"not-a-uuid","payload":{}}'
RAW = b'{"event_id":"6b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11","pay'


def rest(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> RestTransport:
    return RestTransport(
        "http://collector.test/", "secret-key", transport=httpx.MockTransport(handler), **kw
    )


def answer(status: int, body: Any = None, **headers: str) -> Callable[..., httpx.Response]:
    return lambda request: httpx.Response(status, content=orjson.dumps(body), headers=headers)


def test_retry_after_is_parsed_from_seconds_or_nothing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now=now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0


# -- REST: the request ---------------------------------------------------------------------


def test_rest_posts_a_gzipped_json_array_with_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"request_id": "r1", "accepted": 2, "rejected": 0})

    result = rest(handler).send([E1, E2])
    assert result.accepted == 2 and result.rejected == [] and result.request_id == "r1"
    (request,) = seen
    assert request.method == "POST" and str(request.url) == "http://collector.test/v1/events"
    assert request.headers["authorization"] == "Bearer secret-key"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["user-agent"].startswith("tributary-producer")
    assert request.headers["x-request-id"]
    assert gzip.decompress(request.content) == b"[" + E1 + b"," + E2 + b"]"
    assert orjson.loads(gzip.decompress(request.content))[1]["event_id"] == "not-a-uuid"

    seen.clear()
    rest(handler, gzip=False).send([E1, E2])
    assert "content-encoding" not in seen[0].headers
    assert seen[0].content == b"[" + E1 + b"," + E2 + b"]"


def test_rest_sends_non_json_events_alone_and_counts_their_refusal() -> None:
    bodies: list[tuple[bool, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        gzipped = request.headers.get("content-encoding") == "gzip"
        body = gzip.decompress(request.content) if gzipped else request.content
        bodies.append((gzipped, body))
        if body.startswith(b"["):
            return httpx.Response(
                207,
                json={
                    "request_id": "r",
                    "accepted": 1,
                    "rejected": 1,
                    "events": [
                        {"index": 0, "event_id": E1[13:49].decode(), "status": "accepted"},
                        {"index": 1, "event_id": "not-a-uuid", "status": "rejected",
                         "reason": "envelope_violation", "errors": []},
                    ],
                },
            )  # fmt: skip
        return httpx.Response(400, json={"detail": "not JSON", "reason": "malformed"})

    result = rest(handler).send([RAW, E1, E2])
    # The collector dead-letters a refused body as received: the raw event goes uncompressed.
    assert bodies == [(True, b"[" + E1 + b"," + E2 + b"]"), (False, RAW)]
    assert result.accepted == 1
    assert result.rejected == [
        Rejection(0, None, "malformed"),
        Rejection(2, "not-a-uuid", "envelope_violation"),
    ]
    index, event_id, reason = result.rejected[1]  # a (index, event_id, reason) tuple
    assert (index, event_id, reason) == (2, "not-a-uuid", "envelope_violation")


# -- REST: the answers ---------------------------------------------------------------------


def test_rest_400_with_events_is_a_terminal_answer() -> None:
    body = {
        "request_id": "r",
        "accepted": 0,
        "rejected": 2,
        "events": [
            {"index": 0, "event_id": "a", "status": "rejected", "reason": "unknown_schema"},
            {"index": 1, "event_id": "b", "status": "rejected", "reason": "envelope_violation"},
        ],
    }
    result = rest(answer(400, body)).send([E1, E2])
    assert result.accepted == 0
    assert [r.reason for r in result.rejected] == ["unknown_schema", "envelope_violation"]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_rest_retryable_statuses(status: int) -> None:
    with pytest.raises(RetryableError) as caught:
        rest(answer(status, {"detail": "busy"}, **{"Retry-After": "2"})).send([E1])
    assert caught.value.status == status and caught.value.retry_after == 2.0


def test_rest_503_without_retry_after() -> None:
    with pytest.raises(RetryableError) as caught:
        rest(answer(503, {"detail": "Kafka unavailable"})).send([E1])
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"detail": "body is not valid JSON", "reason": "malformed"}),
        (400, {"detail": "the batch is empty", "reason": "envelope_violation"}),
        (401, {"detail": "missing or invalid API key"}),
        (403, {"detail": "producer 'x' may not send events"}),
        (413, {"detail": "the batch has 2000 events", "reason": "size_violation"}),
        (415, {"detail": "unsupported encoding br", "reason": "malformed"}),
        (422, {"detail": []}),
        (404, {"detail": "Not Found"}),
    ],
)
def test_rest_fatal_statuses(status: int, body: dict[str, Any]) -> None:
    with pytest.raises(FatalError) as caught:
        rest(answer(status, body)).send([E1, E2])
    assert caught.value.status == status
    assert caught.value.too_large is (status == 413)


def test_rest_single_event_body_refused_and_dead_lettered_is_its_outcome() -> None:
    result = rest(answer(413, {"detail": "too big", "reason": "size_violation"})).send([E1])
    assert result.rejected == [Rejection(0, E1[13:49].decode(), "size_violation")]
    with pytest.raises(FatalError):  # 401 is about the key, not the event
        rest(answer(401, {"detail": "no"})).send([E1])


def test_rest_answer_that_does_not_add_up_is_fatal() -> None:
    with pytest.raises(FatalError, match="accounts for 1 of 2"):
        rest(answer(202, {"request_id": "r", "accepted": 1, "rejected": 0})).send([E1, E2])
    with pytest.raises(FatalError):
        rest(lambda r: httpx.Response(202, content=b"<html>proxy</html>")).send([E1])


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_rest_connection_failures_are_retryable(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(RetryableError):
        rest(handler).send([E1])


def test_rest_against_a_closed_port_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = RestTransport(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(RetryableError):
        transport.send([E1])
    transport.close()


# -- gRPC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.UNAVAILABLE, "events not accepted: Kafka is unreachable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "the producer queue is full"),
    ],
)
def test_grpc_retryable_codes(code: grpc.StatusCode, details: str) -> None:
    assert isinstance(classify_grpc(code, details), RetryableError)


@pytest.mark.parametrize(
    ("code", "details", "too_large"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API key", False),
        (grpc.StatusCode.PERMISSION_DENIED, "may not send", False),
        (grpc.StatusCode.INVALID_ARGUMENT, "the batch is empty", False),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "the batch has 2000 events, the limit is 1000", True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max (9 vs. 5)", True),
    ],
)
def test_grpc_fatal_codes(code: grpc.StatusCode, details: str, too_large: bool) -> None:
    error = classify_grpc(code, details)
    assert isinstance(error, FatalError) and error.too_large is too_large


def test_grpc_without_a_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = GrpcTransport(f"127.0.0.1:{port}", "k", timeout_s=3)
    with pytest.raises(RetryableError, match="UNAVAILABLE"):
        transport.send([E1])
    transport.close()


# -- settings ------------------------------------------------------------------------------


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRIBUTARY_PRODUCER__"):
            monkeypatch.delenv(name)
    defaults = ProducerSettings().producer
    assert defaults.collector_url == "http://127.0.0.1:8000"
    assert defaults.grpc_target == "127.0.0.1:50051"
    assert (defaults.batch_size, defaults.gzip, defaults.retry.initial_s) == (100, True, 0.2)
    assert defaults.retry.max_s == 10
    # In the project's folder, wherever the producer runs from.
    assert defaults.spool_file("clickstream") == local_folder("spool") / "clickstream.sqlite"
    assert defaults.spool_file("clickstream").is_absolute()

    monkeypatch.setenv("TRIBUTARY_PRODUCER__API_KEY", "from-env")
    monkeypatch.setenv("TRIBUTARY_PRODUCER__COLLECTOR_URL", "http://collector:9000")
    monkeypatch.setenv("TRIBUTARY_PRODUCER__BATCH_SIZE", "250")
    monkeypatch.setenv("TRIBUTARY_PRODUCER__SPOOL_PATH", "/var/spool/{name}.db")
    options = ProducerSettings().producer
    assert options.api_key is not None and options.api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(options)
    assert options.batch_size == 250
    assert str(options.spool_file("iot")) == "/var/spool/iot.db"
    transport = make_transport("rest", options)
    assert isinstance(transport, RestTransport)
    assert transport.endpoint == "http://collector:9000/v1/events"
    transport.close()
