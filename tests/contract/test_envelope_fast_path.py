"""``accepted_key``, the envelope's fast path: it accepts only what ``check_envelope`` accepts.

Whenever it returns a key, ``check_envelope`` must accept the same event and its
``partition_key()`` must be that key; events it declines are left to ``check_envelope``.
Hypothesis perturbs a valid event field by field, with the values producers get wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.envelope import EnvelopeRules, accepted_key, check_envelope
from contract.registry import SchemaRegistry
from tests.contract.envelope_helpers import UUID
from tests.contract.envelope_helpers import event as envelope_event

pytestmark = pytest.mark.unit

REGISTRY = SchemaRegistry.from_directory()
RULES = EnvelopeRules()
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EARLIEST, LATEST = NOW - RULES.max_past_skew, NOW + RULES.max_future_skew
EVENT_TYPES = frozenset(key.uri for key in REGISTRY)


def event(**changes: Any) -> dict[str, Any]:
    """As the platform's producers write it: milliseconds in the timestamp."""
    return envelope_event("2026-06-01T13:59:00.123+02:00", **changes)


def fast(data: Any) -> str | None:
    return accepted_key(data, EVENT_TYPES, EARLIEST, LATEST)


def agrees(data: Any) -> str | None:
    """The fast path's key, after checking that check_envelope agrees with it."""
    key = fast(data)
    if key is not None:
        check = check_envelope(data, REGISTRY, RULES, now=NOW)
        assert check.envelope is not None, (data, check.errors)
        assert check.envelope.partition_key() == key
    return key


def test_a_plain_valid_event_takes_the_fast_path_with_its_partition_key() -> None:
    assert agrees(event()) == "user_id:u-1"
    assert agrees(event(context={"session_id": "s-1", "x": [1]})) == "session_id:s-1"
    assert agrees(event(context={"device_id": "d-1", "user_id": None})) == "device_id:d-1"
    assert agrees(event(context=None)) == f"event_id:{UUID}"
    assert agrees(event(context=...)) == f"event_id:{UUID}"
    assert agrees(event(event_timestamp="2026-06-01T12:00:00Z")) == "user_id:u-1"


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": ...},
        {"event_id": UUID.upper()},  # valid, but its key would be the canonical form
        {"event_id": UUID.replace("-", "")},
        {"event_id": "not-a-uuid"},
        {"event_type": "iglu:com.tributary.shop/page_view/jsonschema/9-9-9"},
        {"event_type": 5},
        {"event_timestamp": "2026-06-01T12:00:00"},  # no offset
        {"event_timestamp": "2026-06-01t12:00:00z"},  # valid, left to pydantic
        {"event_timestamp": "2026-06-01T12:00:00.1234567Z"},  # valid, left to pydantic
        {"event_timestamp": "2026-06-01T12:00:00Z\n"},
        {"event_timestamp": "2026-02-30T12:00:00Z"},
        {"event_timestamp": "2026-06-01T12:00:60Z"},
        {"event_timestamp": "2026-06-01T12:10:01Z"},  # past the future skew
        {"event_timestamp": "2026-05-25T11:59:59Z"},  # past the past skew
        {"event_timestamp": 1780000000},
        {"source": ""},
        {"source": "s" * 257},
        {"payload": []},
        {"payload": ...},
        {"context": []},
        {"context": {"user_id": ""}},
        {"context": {"user_id": 7}},
        {"context": {"session_id": "s" * 257}},
        {"collector": {}},  # an unknown top-level field
    ],
)
def test_anything_else_is_left_to_check_envelope(changes: dict[str, Any]) -> None:
    assert agrees(event(**changes)) is None


def test_the_skew_bounds_are_inclusive_as_in_check_envelope() -> None:
    assert agrees(event(event_timestamp="2026-06-01T12:10:00Z")) is not None
    assert agrees(event(event_timestamp="2026-05-25T12:00:00Z")) is not None


def test_not_an_object_is_left_to_check_envelope() -> None:
    for data in (None, [], "x", 1, [event()]):
        assert agrees(data) is None


_digits = st.text("0123456789", min_size=1, max_size=3)
_timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 5, 20), max_value=datetime(2026, 6, 2), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.builds(
        lambda d, h, m, s, f, z: f"2026-{d}T{h}:{m}:{s}{f}{z}",
        st.sampled_from(["05-31", "06-01", "06-31", "13-01", "06-00"]),
        st.sampled_from(["00", "11", "12", "23", "24", "99"]),
        st.sampled_from(["00", "09", "59", "60", "5x", "\u0665\u0665"]),
        st.sampled_from(["00", "59", "60", "61", " 1"]),
        st.sampled_from(["", ".", ".1", ".12x", ".1 3", ".123", ".123456", ".1234567"]),
        st.sampled_from(
            ["Z", "z", "+00:00", "-00:00", "+23:59", "+24:00", "-12:60", "+0100", "+01:0x"]
        ),
    ),
)
_strings = st.one_of(
    st.text(max_size=3), st.text(min_size=255, max_size=258), st.none(), st.integers()
)
_values = st.one_of(_strings, st.booleans(), st.lists(st.integers(), max_size=2))


@settings(max_examples=800, deadline=None)
@given(
    event_id=st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), _values),
    event_type=st.one_of(st.sampled_from(sorted(EVENT_TYPES)), _values),
    timestamp=st.one_of(_timestamps, _values),
    source=st.one_of(st.just("web"), _values),
    payload=st.one_of(st.just({}), st.dictionaries(st.text(max_size=3), _values), _values),
    context=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["user_id", "session_id", "device_id", "ip"]), _strings, max_size=4
        ),
        _values,
    ),
    drop=st.sets(st.sampled_from(["event_id", "event_timestamp", "context", "payload"])),
    extra=st.booleans(),
)
def test_whatever_the_fast_path_accepts_check_envelope_accepts_with_the_same_key(
    event_id: Any,
    event_type: Any,
    timestamp: Any,
    source: Any,
    payload: Any,
    context: Any,
    drop: set[str],
    extra: bool,
) -> None:
    data = event(
        event_id=event_id,
        event_type=event_type,
        event_timestamp=timestamp,
        source=source,
        payload=payload,
        context=context,
    )
    for name in drop:
        data.pop(name)
    if extra:
        data["extra"] = 1
    agrees(data)


def test_the_fast_path_takes_the_common_case() -> None:
    """The generated events of the platform's producers all take it (else it is no path)."""
    for minutes in range(0, 7 * 24 * 60, 997):
        ts = (NOW - timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
        assert agrees(event(event_timestamp=ts.replace("+00:00", "Z"))) is not None
