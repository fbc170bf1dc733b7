"""Hypothesis against the running collector: no input yields a 500, none vanishes."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.settings import KafkaSettings
from tests.ingestion.collector_helpers import WRITE_KEY, CollectorProcess, Topics, event
from tests.kafka_helpers import end_offsets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_value = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
    max_leaves=10,
)
FIELDS = ["event_id", "event_type", "event_timestamp", "source", "payload", "context"]


@st.composite
def mutated_event(draw: st.DrawFn) -> Any:
    """A valid event with some fields replaced, removed, or added."""
    e = event()
    for name in draw(st.lists(st.sampled_from([*FIELDS, "extra"]), max_size=3, unique=True)):
        action = draw(st.sampled_from(["replace", "drop"]))
        if action == "drop":
            e.pop(name, None)
        else:
            e[name] = draw(json_value)
    return e


bodies = st.one_of(
    st.binary(max_size=300),
    json_value.map(orjson.dumps),
    mutated_event().map(orjson.dumps),
    st.lists(mutated_event(), min_size=1, max_size=5).map(orjson.dumps),
)

_client = httpx.Client(timeout=30)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_no_input_yields_a_500(collector: CollectorProcess, body: bytes) -> None:
    resp = _client.post(
        f"{collector.url}/v1/events",
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {WRITE_KEY}"},
    )
    assert resp.status_code in (202, 207, 400), (resp.status_code, resp.text)
    data = resp.json()
    if resp.status_code == 400 and "events" not in data:
        # The body as a whole was refused: it says why, and was dead-lettered.
        assert data["reason"] in ("malformed", "envelope_violation")
        assert data["detail"]
        return
    assert data["accepted"] + data["rejected"] >= 1
    for status in data.get("events", []):
        if status["status"] == "rejected":
            assert status["reason"] and status["errors"], status
            assert all(e["field"].startswith("/") and e["reason"] for e in status["errors"])


# -- hostile bodies: deep nesting, very long strings, huge numbers -----------------------------
#
# Written as text: no JSON encoder writes 10,000 levels or a 400-digit integer.

OPEN = {"array": (b"[", b"]"), "object": (b'{"a":', b"}")}


@st.composite
def deep_text(draw: st.DrawFn) -> bytes:
    """Arrays and objects nested up to 12,000 levels, maybe around an event or inside one."""
    levels = draw(st.one_of(st.integers(1, 40), st.integers(250, 12_000)))
    kinds = draw(st.lists(st.sampled_from(sorted(OPEN)), min_size=1, max_size=3))
    opens = b"".join(OPEN[kinds[i % len(kinds)]][0] for i in range(levels))
    closes = b"".join(OPEN[kinds[i % len(kinds)]][1] for i in reversed(range(levels)))
    core = draw(st.sampled_from([b"1", b"{}", b"[]", b'"x"', b"null"]))
    text = opens + core + closes
    where = draw(st.sampled_from(["alone", "payload", "batch", "unclosed"]))
    if where == "payload":
        return orjson.dumps(event(payload="@")).replace(b'"@"', b'{"deep":' + text + b"}")
    if where == "batch":
        return b"[" + orjson.dumps(event()) + b"," + text + b"]"
    if where == "unclosed":
        return opens + core
    return text


NUMBERS = st.one_of(
    st.integers(-(10**400), 10**400).map(lambda n: str(n).encode()),
    st.sampled_from([b"1e400", b"-1e400", b"1e-400", b"1.7976931348623157e308", b"-0", b"0e0"]),
    st.builds(lambda d, e: f"{d}e{e}".encode(), st.integers(1, 9), st.integers(-5000, 5000)),
)


@st.composite
def huge_number_text(draw: st.DrawFn) -> bytes:
    """An event with a huge number in its payload, in place of a field, or as the body."""
    number = draw(NUMBERS)
    field_name = draw(
        st.sampled_from(["payload", "event_id", "event_timestamp", "context", "body"])
    )
    if field_name == "body":
        return number
    if field_name == "payload":
        return orjson.dumps(event(payload="@")).replace(b'"@"', b'{"n":' + number + b"}")
    return orjson.dumps(event(**{field_name: "@"})).replace(b'"@"', number)


@st.composite
def long_string_text(draw: st.DrawFn) -> bytes:
    """An event (or a batch of them) with one very long string: escapes and all."""
    length = draw(st.sampled_from([60_000, 70_000, 300_000, 2_000_000]))
    unit = draw(st.sampled_from(["x", "é", "\\", '"', "\u2028", "\\u0000"]))
    text = unit * (length // len(unit))
    field_name = draw(st.sampled_from(["source", "payload", "context", "event_type"]))
    value: object = {"page_url": text} if field_name == "payload" else text
    if field_name == "context":
        value = {"user_id": text}
    body = event(**{field_name: value})
    return orjson.dumps(draw(st.sampled_from([body, [event(), body]])))


hostile_bodies = st.one_of(deep_text(), huge_number_text(), long_string_text())


def rss(collector: CollectorProcess) -> int:
    """Resident memory of the collector's processes (its server and workers), in bytes."""
    assert collector.proc is not None
    server = psutil.Process(collector.proc.pid)
    return sum(p.memory_info().rss for p in [server, *server.children(recursive=True)])


def test_hostile_bodies_get_a_4xx_or_their_status_a_dead_letter_and_flat_memory(
    collector: CollectorProcess, topics: Topics
) -> None:
    sent = {"raw": 0, "dead": 0}
    warm: list[int] = []  # memory once the first large bodies were served

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=hostile_bodies)
    def send(body: bytes) -> None:
        resp = _client.post(
            f"{collector.url}/v1/events",
            content=body,
            headers={"content-type": "application/json", "authorization": f"Bearer {WRITE_KEY}"},
        )
        assert resp.status_code in (202, 207, 400, 413), (resp.status_code, resp.text[:300])
        data = resp.json()
        if "events" not in data and resp.status_code in (400, 413):
            assert data["reason"] in ("malformed", "size_violation", "envelope_violation")
            sent["dead"] += 1  # refused whole, and dead-lettered whole
        else:
            sent["raw"] += data["accepted"]
            sent["dead"] += data["rejected"]
        if not warm and sent["raw"] + sent["dead"] >= 40:
            warm.append(rss(collector))

    before = rss(collector)
    send()
    after = rss(collector)
    print(
        f"collector memory: {before >> 20} MiB, warm {[w >> 20 for w in warm]}, {after >> 20} MiB"
    )
    # Nothing vanished: every event accepted is on the raw topic, every refusal a dead letter.
    kafka = topics.settings
    assert sent["raw"] == added(kafka.kafka, kafka.topics.raw, topics.raw_start)
    assert sent["dead"] == added(kafka.kafka, kafka.topics.collector_dlq, topics.dlq_start)
    # Memory grows while the first large bodies are served (allocator arenas), then stays.
    assert after - max([before, *warm]) < 64 * 1024 * 1024, (before, warm, after)


def added(kafka: KafkaSettings, topic: str, since: dict[int, int]) -> int:
    return sum(end - since.get(p, 0) for p, end in end_offsets(kafka, topic).items())
