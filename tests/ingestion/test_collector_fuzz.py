"""Hypothesis against the running collector: no input yields a 500, none vanishes."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingestion.collector_helpers import WRITE_KEY, CollectorProcess, event

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
