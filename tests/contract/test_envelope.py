"""The envelope contract: every bad event gets a specific reason, no input raises."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.envelope import EnvelopeRules, check_envelope
from contract.failures import FailureType
from contract.registry import SchemaRegistry
from tests.contract.envelope_helpers import event

pytestmark = pytest.mark.unit

REGISTRY = SchemaRegistry.from_directory()
RULES = EnvelopeRules()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_valid_event_passes() -> None:
    result = check_envelope(event(), REGISTRY, RULES, now=NOW)
    assert result.ok, result.errors
    assert result.envelope is not None
    assert result.envelope.event_timestamp == datetime(2026, 6, 1, 11, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "failure", "field", "reason"),
    [
        ({"event_id": ...}, FailureType.ENVELOPE_VIOLATION, "/event_id", "Field required"),
        ({"event_id": "not-a-uuid"}, FailureType.ENVELOPE_VIOLATION, "/event_id", "UUID"),
        ({"event_id": 12}, FailureType.ENVELOPE_VIOLATION, "/event_id", "UUID"),
        ({"event_type": ...}, FailureType.ENVELOPE_VIOLATION, "/event_type", "Field required"),
        ({"event_type": ""}, FailureType.ENVELOPE_VIOLATION, "/event_type", "at least 1"),
        (
            {"event_type": "page_view"},
            FailureType.UNKNOWN_SCHEMA,
            "/event_type",
            "not an event type URI",
        ),
        (
            {"event_type": "iglu:com.tributary.shop/page_view/jsonschema/9-0-0"},
            FailureType.UNKNOWN_SCHEMA,
            "/event_type",
            "no schema",
        ),
        (
            {"event_type": "iglu:com.tributary.shop/page_view/jsonschema/1-0"},
            FailureType.UNKNOWN_SCHEMA,
            "/event_type",
            "SchemaVer",
        ),
        (
            {"event_timestamp": "2026-06-01T12:00:00"},
            FailureType.ENVELOPE_VIOLATION,
            "/event_timestamp",
            "RFC 3339",
        ),
        (
            {"event_timestamp": 1780000000},
            FailureType.ENVELOPE_VIOLATION,
            "/event_timestamp",
            "RFC 3339",
        ),
        (
            {"event_timestamp": "yesterday"},
            FailureType.ENVELOPE_VIOLATION,
            "/event_timestamp",
            "RFC 3339",
        ),
        (
            {"event_timestamp": "2026-06-01T12:30:00Z"},
            FailureType.ENVELOPE_VIOLATION,
            "/event_timestamp",
            "in the future",
        ),
        (
            {"event_timestamp": "2026-05-01T12:00:00Z"},
            FailureType.ENVELOPE_VIOLATION,
            "/event_timestamp",
            "in the past",
        ),
        ({"source": ...}, FailureType.ENVELOPE_VIOLATION, "/source", "Field required"),
        ({"source": ""}, FailureType.ENVELOPE_VIOLATION, "/source", "at least 1"),
        ({"payload": ...}, FailureType.ENVELOPE_VIOLATION, "/payload", "Field required"),
        ({"payload": [1, 2]}, FailureType.ENVELOPE_VIOLATION, "/payload", "dictionary"),
        ({"payload": "x"}, FailureType.ENVELOPE_VIOLATION, "/payload", "dictionary"),
        ({"context": "x"}, FailureType.ENVELOPE_VIOLATION, "/context", ""),
        ({"context": {"user_id": 7}}, FailureType.ENVELOPE_VIOLATION, "/context/user_id", "string"),
        ({"surprise": 1}, FailureType.ENVELOPE_VIOLATION, "/surprise", "unknown top-level field"),
    ],
)
def test_each_violation_names_its_field(
    changes: dict[str, Any], failure: FailureType, field: str, reason: str
) -> None:
    result = check_envelope(event(**changes), REGISTRY, RULES, now=NOW)
    assert not result.ok
    assert result.failure_type is failure
    assert any(e.field == field and reason in e.reason for e in result.errors), result.errors


@pytest.mark.parametrize("body", [[], "x", 1, None, True])
def test_a_non_object_event_is_refused(body: Any) -> None:
    result = check_envelope(body, REGISTRY, RULES, now=NOW)
    assert result.failure_type is FailureType.ENVELOPE_VIOLATION
    assert result.errors[0].field == "/"


def test_size_limit_applies_before_anything_else() -> None:
    rules = EnvelopeRules(max_event_bytes=100)
    result = check_envelope(event(), REGISTRY, rules, size_bytes=101, now=NOW)
    assert result.failure_type is FailureType.SIZE_VIOLATION
    assert "101 bytes" in result.errors[0].reason
    assert check_envelope(event(), REGISTRY, rules, size_bytes=100, now=NOW).ok


def test_skew_is_configurable() -> None:
    late = event(event_timestamp="2026-05-20T12:00:00Z")
    assert not check_envelope(late, REGISTRY, EnvelopeRules(), now=NOW).ok
    wide = EnvelopeRules(max_past_skew=timedelta(days=30))
    assert check_envelope(late, REGISTRY, wide, now=NOW).ok


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"user_id": "u", "session_id": "s", "device_id": "d"}, "user_id:u"),
        ({"session_id": "s", "device_id": "d"}, "session_id:s"),
        ({"device_id": "d"}, "device_id:d"),
        ({"locale": "fr"}, "event_id:5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11"),
        (..., "event_id:5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11"),
    ],
)
def test_partition_key_prefers_user_then_session_then_device(context: Any, key: str) -> None:
    result = check_envelope(event(context=context), REGISTRY, RULES, now=NOW)
    assert result.envelope is not None
    assert result.envelope.partition_key() == key


def test_unknown_context_keys_are_carried() -> None:
    result = check_envelope(
        event(context={"locale": "fr", "user_id": "u"}), REGISTRY, RULES, now=NOW
    )
    assert result.envelope is not None and result.envelope.context is not None
    assert result.envelope.context.model_dump(exclude_none=True) == {"locale": "fr", "user_id": "u"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
top_level = st.sampled_from(
    ["event_id", "event_type", "event_timestamp", "source", "payload", "context", "other"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(top_level, json_values) | json_values)
def test_arbitrary_input_never_raises_and_always_has_a_reason(data: Any) -> None:
    result = check_envelope(data, REGISTRY, RULES, now=NOW)
    if not result.ok:
        assert result.failure_type is not None
        assert result.errors and all(e.field.startswith("/") and e.reason for e in result.errors)


@settings(max_examples=200, deadline=None)
@given(
    event_id=st.uuids(),
    offset_s=st.integers(
        -int(RULES.max_past_skew.total_seconds()) + 1,
        int(RULES.max_future_skew.total_seconds()) - 1,
    ),
    tz_minutes=st.integers(-14 * 60, 14 * 60),
    key=st.sampled_from(REGISTRY.keys()),
    source=st.text(min_size=1, max_size=50),
)
def test_any_well_formed_event_is_accepted(
    event_id: uuid.UUID, offset_s: int, tz_minutes: int, key: Any, source: str
) -> None:
    from datetime import timezone

    ts = (NOW + timedelta(seconds=offset_s)).astimezone(timezone(timedelta(minutes=tz_minutes)))
    data = event(
        event_id=str(event_id),
        event_timestamp=ts.isoformat(),
        event_type=key.uri,
        source=source,
        payload={},
    )
    result = check_envelope(data, REGISTRY, RULES, now=NOW)
    assert result.ok, result.errors
    assert result.envelope is not None and result.envelope.event_id == event_id
