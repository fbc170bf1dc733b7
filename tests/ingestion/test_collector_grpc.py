"""The gRPC transport: same validation, metadata, auth and routing as REST."""

from __future__ import annotations

import grpc
import orjson
import pytest

from ingestion.grpc import collector_pb2 as pb
from ingestion.grpc import collector_pb2_grpc as pb_grpc
from tests.ingestion.collector_helpers import (
    READ_ONLY_KEY,
    WRITE_KEY,
    CollectorProcess,
    Topics,
    event,
)

pytestmark = pytest.mark.integration


def stub(collector: CollectorProcess) -> pb_grpc.CollectorStub:
    return pb_grpc.CollectorStub(grpc.insecure_channel(collector.grpc_target))  # type: ignore[no-untyped-call]


AUTH = (("authorization", f"Bearer {WRITE_KEY}"), ("user-agent-x", "ignored"))


def test_send_events_routes_like_rest(collector: CollectorProcess, topics: Topics) -> None:
    good = [event(), event()]
    bad = event(event_timestamp="2026-01-01T00:00:00")
    request = pb.SendEventsRequest(
        events=[orjson.dumps(good[0]), orjson.dumps(bad), b"{not json", orjson.dumps(good[1])]
    )
    response = stub(collector).SendEvents(
        request, metadata=(*AUTH, ("x-request-id", "grpc-req-1")), timeout=30
    )
    assert (response.accepted, response.rejected) == (2, 2)
    assert response.request_id == "grpc-req-1"
    statuses = {s.index: s for s in response.events}
    assert statuses[1].reason == "envelope_violation"
    assert statuses[1].errors[0].field == "/event_timestamp"
    assert statuses[2].reason == "malformed"
    assert statuses[0].accepted and statuses[3].accepted
    raw = topics.raw(2)
    assert {r["event_id"] for r in raw} == {g["event_id"] for g in good}
    assert all(r["collector"]["path"] == "grpc" for r in raw)
    assert all(r["collector"]["client_ip"] == "127.0.0.1" for r in raw)
    assert all(r["collector"]["producer"] == "test-producer" for r in raw)
    dead = topics.dlq(2)
    assert sorted(d["failure_type"] for d in dead) == ["envelope_violation", "malformed"]
    malformed = next(d for d in dead if d["failure_type"] == "malformed")
    assert malformed["original"]["encoding"] == "base64"


def test_stream_events_accumulates_batches(collector: CollectorProcess, topics: Topics) -> None:
    batches = [[event() for _ in range(10)] for _ in range(5)]
    requests = iter(pb.SendEventsRequest(events=[orjson.dumps(e) for e in b]) for b in batches)
    response = stub(collector).StreamEvents(requests, metadata=AUTH, timeout=30)
    assert (response.accepted, response.rejected) == (50, 0)
    assert len(topics.raw(50)) == 50


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer nope"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Bearer {READ_ONLY_KEY}"),), grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_auth_through_call_metadata(
    collector: CollectorProcess,
    topics: Topics,
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub(collector).SendEvents(
            pb.SendEventsRequest(events=[orjson.dumps(event())]), metadata=metadata
        )
    assert info.value.code() == code
    assert topics.raw(0) == []


def test_limits(collector: CollectorProcess, topics: Topics) -> None:
    with pytest.raises(grpc.RpcError) as empty:
        stub(collector).SendEvents(pb.SendEventsRequest(events=[]), metadata=AUTH)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as many:
        stub(collector).SendEvents(
            pb.SendEventsRequest(events=[orjson.dumps(event())] * 1001), metadata=AUTH
        )
    assert many.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert topics.dlq(1)[0]["failure_type"] == "size_violation"


def test_deeply_nested_events_are_rejected_alone_as_malformed(
    collector: CollectorProcess, topics: Topics
) -> None:
    good = event()
    deep = [
        b"[" * levels + b"]" * levels for levels in (300, 5_000)
    ] + [  # a valid event whose payload nests one level too deep for the limit (32)
        orjson.dumps(event(payload="@")).replace(b'"@"', b'{"a":' * 31 + b"{}" + b"}" * 31)
    ]
    request = pb.SendEventsRequest(events=[orjson.dumps(good), *deep])
    response = stub(collector).SendEvents(request, metadata=AUTH, timeout=30)
    assert (response.accepted, response.rejected) == (1, 3)
    for status in response.events[1:]:
        assert status.reason == "malformed"
        assert status.errors[0].reason == "the event is nested more than 32 levels deep (the limit)"
    assert [r["event_id"] for r in topics.raw(1)] == [good["event_id"]]
    dead = topics.dlq(3)
    assert [d["failure_type"] for d in dead] == ["malformed"] * 3
    assert all(d["original"]["encoding"] == "base64" for d in dead)
