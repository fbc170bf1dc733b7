"""How a batch of events reaches the collector: REST or gRPC, and what its answer means.

``send`` returns a ``SendResult`` when the collector gave every event a terminal answer
(accepted into the raw topic, or rejected into its dead-letter topic). It raises
``RetryableError`` when the batch may succeed later as it is (the collector or Kafka is
unreachable, busy or slow) and ``FatalError`` when resending it unchanged cannot help (a bad
key, a refused request). A retry resends the same bytes, so a batch that reached the collector
before the answer was lost arrives twice with the same event ids, which later stages drop.
"""

from __future__ import annotations

import gzip as gzip_lib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, Protocol

import grpc
import httpx
import orjson

from ingestion.grpc import collector_pb2 as pb
from ingestion.grpc import collector_pb2_grpc as pb_grpc
from ingestion.producers.config import ProducerOptions

try:
    USER_AGENT = f"tributary-producer/{version('tributary')}"
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    USER_AGENT = "tributary-producer"


@dataclass(frozen=True, order=True)
class Rejection:
    """One event the collector refused: its position in the batch, its id, the failure type."""

    index: int
    event_id: str | None
    reason: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.event_id, self.reason))


@dataclass
class SendResult:
    accepted: int
    rejected: list[Rejection] = field(default_factory=list)
    request_id: str | None = None


class TransportError(Exception):
    """Sending failed without a terminal answer for the events."""

    def __init__(self, message: str, status: int | str | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(TransportError):
    """Resend the same batch later, after ``retry_after`` seconds when the server said so."""

    def __init__(
        self, message: str, status: int | str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class FatalError(TransportError):
    """Resending this batch unchanged cannot succeed; ``too_large`` when smaller ones might."""

    def __init__(
        self, message: str, status: int | str | None = None, too_large: bool = False
    ) -> None:
        super().__init__(message, status)
        self.too_large = too_large


class Transport(Protocol):
    def send(self, events: Sequence[bytes]) -> SendResult:
        """Send one batch; every event gets an outcome, or an error is raised."""
        ...

    def close(self) -> None: ...


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _is_json(event: bytes) -> bool:
    try:
        orjson.loads(event)
    except orjson.JSONDecodeError:
        return False
    return True


def _event_id(event: bytes) -> str | None:
    try:
        data = orjson.loads(event)
    except orjson.JSONDecodeError:
        return None
    value = data.get("event_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class RestTransport:
    """``POST /v1/events`` with a JSON array body, gzipped when enabled.

    Events that are not JSON cannot go into an array; each is posted as a body of its own, and
    the collector's refusal of that body (dead-lettered as ``malformed``) is its outcome.

    Args:
        url: Base URL of the collector, e.g. ``http://127.0.0.1:8000``.
        api_key: Sent as ``Authorization: Bearer <key>``.
        gzip: Compress bodies (``Content-Encoding: gzip``).
        timeout_s: Timeout of each request.
        user_agent: The ``User-Agent`` header.
        transport: An httpx transport (tests of the answer handling pass a mock).
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        gzip: bool = True,
        timeout_s: float = 30.0,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/v1/events"
        self.gzip = gzip
        headers = {"content-type": "application/json", "user-agent": user_agent}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, timeout=timeout_s, transport=transport)

    def send(self, events: Sequence[bytes]) -> SendResult:
        if not events:
            return SendResult(0)
        json_indices: list[int] = []
        raw_indices: list[int] = []
        for i, event in enumerate(events):
            (json_indices if _is_json(event) else raw_indices).append(i)
        accepted, rejected, request_id = 0, [], None
        if json_indices:
            body = b"[" + b",".join(events[i] for i in json_indices) + b"]"
            result = self._answer(self._post(body), json_indices, events)
            accepted, rejected, request_id = result.accepted, result.rejected, result.request_id
        for i in raw_indices:
            # Uncompressed: the collector dead-letters a refused body as it received it.
            result = self._answer(self._post(events[i], compress=False), [i], events)
            accepted += result.accepted
            rejected += result.rejected
        return SendResult(accepted, sorted(rejected), request_id)

    def _post(self, body: bytes, compress: bool = True) -> httpx.Response:
        headers = {"x-request-id": str(uuid.uuid4())}
        if self.gzip and compress:
            body = gzip_lib.compress(body, compresslevel=5, mtime=0)
            headers["content-encoding"] = "gzip"
        try:
            return self._client.post(self.endpoint, content=body, headers=headers)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise FatalError(f"cannot send to {self.endpoint}: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc

    def _answer(
        self, response: httpx.Response, indices: list[int], events: Sequence[bytes]
    ) -> SendResult:
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise RetryableError(
                f"HTTP {status}: {_detail(response)}",
                status,
                parse_retry_after(response.headers.get("retry-after")),
            )
        body = _json_body(response)
        if status in (200, 202, 207) or (status == 400 and isinstance(body.get("events"), list)):
            return _outcomes(body, indices, status)
        if len(indices) == 1 and status in (400, 413) and isinstance(body.get("reason"), str):
            # The collector refused and dead-lettered the body, and the body was this one
            # event: that is the event's terminal outcome.
            index = indices[0]
            return SendResult(0, [Rejection(index, _event_id(events[index]), body["reason"])], None)
        raise FatalError(f"HTTP {status}: {_detail(response)}", status, too_large=status == 413)

    def close(self) -> None:
        self._client.close()


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _detail(response: httpx.Response) -> str:
    detail = _json_body(response).get("detail")
    return str(detail) if detail else response.text[:200]


def _outcomes(body: dict[str, Any], indices: list[int], status: int) -> SendResult:
    accepted = body.get("accepted")
    if not isinstance(accepted, int):
        raise FatalError(f"HTTP {status} without an 'accepted' count", status)
    rejected = []
    for outcome in body.get("events") or []:
        if outcome.get("status") == "accepted":
            continue
        position = outcome.get("index")
        if not isinstance(position, int) or not 0 <= position < len(indices):
            raise FatalError(f"HTTP {status} names event {position} of {len(indices)}", status)
        rejected.append(
            Rejection(indices[position], outcome.get("event_id"), str(outcome.get("reason")))
        )
    if accepted + len(rejected) != len(indices):
        raise FatalError(
            f"HTTP {status} accounts for {accepted + len(rejected)} of {len(indices)} events",
            status,
        )
    request_id = body.get("request_id")
    return SendResult(accepted, rejected, request_id if isinstance(request_id, str) else None)


_GRPC_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
}
# RESOURCE_EXHAUSTED means "busy, retry" unless it is about a size limit.
_SIZE_LIMIT_WORDS = ("larger than max", "limit is", "too large")


def classify_grpc(code: grpc.StatusCode, details: str) -> TransportError:
    """The error to raise for a failed call with this status."""
    message = f"gRPC {code.name}: {details}"
    if code in _GRPC_RETRYABLE:
        return RetryableError(message, code.name)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        if any(word in details.lower() for word in _SIZE_LIMIT_WORDS):
            return FatalError(message, code.name, too_large=True)
        return RetryableError(message, code.name)
    return FatalError(message, code.name)


class GrpcTransport:
    """``Collector.SendEvents`` over a gRPC channel; each event is its own bytes field.

    Args:
        target: ``host:port`` of the collector's gRPC server.
        api_key: Sent as ``authorization: Bearer <key>`` metadata.
        gzip: Compress messages.
        timeout_s: Deadline of each call.
        user_agent: Prefix of the ``user-agent`` the collector records.
        secure: Use TLS (with the system's roots).
    """

    def __init__(
        self,
        target: str,
        api_key: str | None = None,
        *,
        gzip: bool = True,
        timeout_s: float = 30.0,
        user_agent: str = USER_AGENT,
        secure: bool = False,
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._metadata: list[tuple[str, str]] = []
        if api_key:
            self._metadata.append(("authorization", f"Bearer {api_key}"))
        options = [
            ("grpc.primary_user_agent", user_agent),
            # Reconnect promptly once a restarted collector is back.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
        compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
        if secure:
            self._channel = grpc.secure_channel(
                target, grpc.ssl_channel_credentials(), options=options, compression=compression
            )
        else:
            self._channel = grpc.insecure_channel(target, options=options, compression=compression)
        self._stub = pb_grpc.CollectorStub(self._channel)  # type: ignore[no-untyped-call]

    def send(self, events: Sequence[bytes]) -> SendResult:
        if not events:
            return SendResult(0)
        metadata = [*self._metadata, ("x-request-id", str(uuid.uuid4()))]
        try:
            response: pb.SendEventsResponse = self._stub.SendEvents(
                pb.SendEventsRequest(events=list(events)),
                timeout=self.timeout_s,
                metadata=metadata,
            )
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call):
                raise classify_grpc(exc.code(), exc.details() or "") from exc
            raise RetryableError(f"gRPC call failed: {exc}") from exc
        rejected = [
            Rejection(s.index, s.event_id or None, s.reason)
            for s in response.events
            if not s.accepted
        ]
        if response.accepted + len(rejected) != len(events):
            raise FatalError(
                f"the collector accounted for {response.accepted + len(rejected)} of "
                f"{len(events)} events"
            )
        return SendResult(response.accepted, rejected, response.request_id or None)

    def close(self) -> None:
        self._channel.close()


TransportKind = Literal["rest", "grpc"]


def make_transport(kind: TransportKind, options: ProducerOptions) -> Transport:
    """The transport named ``kind``, configured from the producer's settings."""
    key = options.api_key.get_secret_value() if options.api_key else None
    if kind == "grpc":
        return GrpcTransport(
            options.grpc_target, key, gzip=options.gzip, timeout_s=options.timeout_s
        )
    return RestTransport(options.collector_url, key, gzip=options.gzip, timeout_s=options.timeout_s)
