"""The nesting bound on JSON from outside a process, and the dead letters it keeps whole."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contract.failures import ErrorDetail, FailedEvent, FailureType, OriginalPayload, Stage
from contract.jsontext import (
    DEFAULT_MAX_DEPTH,
    MAX_DEPTH_CEILING,
    JsonRefused,
    check_depth,
    loads,
    loads_events,
)
from resources.settings import PlatformSettings

pytestmark = pytest.mark.unit


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested(levels: int, kind: str = "array") -> bytes:
    if kind == "array":
        return b"[" * levels + b"]" * levels
    return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        (b"1", 0),
        (b'"[[[{{{"', 0),
        (b"[]", 1),
        (b'{"payload": {"page_url": "https://shop.example.com/[1]"}}', 2),
        (b'[{"payload": {"items": [{"sku": "a"}]}}]', 5),
        (b'{"a": "\\"[[", "b": [[]]}', 3),
        (b'{"a": "\\\\", "b": "]]]", "c": [[[]]]}', 4),
    ],
)
def test_depth_is_counted_on_the_text_outside_strings(text: bytes, levels: int) -> None:
    assert depth(orjson.loads(text)) == levels
    check_depth(text, levels)
    if levels:
        with pytest.raises(JsonRefused, match=f"more than {levels - 1} levels"):
            check_depth(text, levels - 1)


# Strings full of what could be mistaken for structure: brackets, quotes, escapes.
tricky_text = st.text(alphabet='[]{}"\\,:aé\n', max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values, slack=st.integers(-2, 2))
def test_the_bound_agrees_with_the_parsed_depth_however_the_json_is_written(
    value: Any, slack: int
) -> None:
    limit = max(0, depth(value) + slack)
    # orjson writes UTF-8 and few escapes; the standard library escapes everything non-ASCII.
    for text in (
        orjson.dumps(value),
        json.dumps(value).encode(),
        json.dumps(value, indent=2).encode(),
    ):
        if depth(value) <= limit:
            assert loads(text, limit) == value
        else:
            with pytest.raises(JsonRefused):
                loads(text, limit)


@pytest.mark.parametrize("levels", [300, 600, 1_000, 5_000, 10_000, 1_000_000])
@pytest.mark.parametrize("kind", ["array", "object"])
def test_deep_text_is_refused_before_any_parser_recurses(levels: int, kind: str) -> None:
    text = nested(levels, kind)
    with pytest.raises(JsonRefused) as refused:
        loads(text, DEFAULT_MAX_DEPTH)
    assert refused.value.reason == "nested more than 32 levels deep (the limit)"
    # The parsers behind the platform's stages, unguarded, fail otherwise than with a refusal.
    if levels >= 1_000:
        with pytest.raises(RecursionError):
            json.loads(text)
        with pytest.raises(RecursionError):
            msgspec.json.decode(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"[", "not valid JSON"),  # unbalanced, shallow: the parser names the fault
        (b"]]][[", "not valid JSON"),
        (b'{"a": "unterminated [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', "not valid JSON"),
        (b"[" * 40, "more than 32 levels"),  # unclosed, but already deeper than allowed
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_text_that_is_not_json_is_refused_either_way(text: bytes, reason: str) -> None:
    with pytest.raises(JsonRefused, match=reason):
        loads(text, DEFAULT_MAX_DEPTH)


def test_a_batch_may_nest_one_level_more_than_its_events() -> None:
    event_at_limit = nested(DEFAULT_MAX_DEPTH, "object")
    assert loads_events(event_at_limit, DEFAULT_MAX_DEPTH) is not None
    assert loads_events(b" [" + event_at_limit + b"]", DEFAULT_MAX_DEPTH) is not None
    too_deep = nested(DEFAULT_MAX_DEPTH + 1, "object")
    with pytest.raises(JsonRefused, match=r"more than 32 levels deep \(the limit\)"):
        loads_events(too_deep, DEFAULT_MAX_DEPTH)
    with pytest.raises(JsonRefused, match="32 per event, one more for the batch's array"):
        loads_events(b"[" + too_deep + b"]", DEFAULT_MAX_DEPTH)


@pytest.mark.parametrize("levels", [DEFAULT_MAX_DEPTH, DEFAULT_MAX_DEPTH + 1, 300, 10_000])
def test_a_dead_letter_keeps_deep_json_as_bytes_and_always_round_trips(levels: int) -> None:
    raw = nested(levels, "object")
    original = OriginalPayload.from_bytes(raw, DEFAULT_MAX_DEPTH)
    if levels <= DEFAULT_MAX_DEPTH:
        assert original.encoding == "json"
        assert orjson.loads(original.to_bytes()) == orjson.loads(raw)
    else:
        assert original.encoding == "base64" and original.to_bytes() == raw
    failed = FailedEvent(
        failure_type=FailureType.MALFORMED,
        stage=Stage.COLLECTOR,
        errors=[ErrorDetail(field="/", reason="nested too deep")],
        original=original,
    )
    assert FailedEvent.model_validate_json(failed.model_dump_json()) == failed


def test_every_parser_and_serialiser_handles_a_dead_letter_at_the_ceiling() -> None:
    """The ceiling is safe: an event at it, wrapped in its dead letter, passes everywhere."""
    event = orjson.loads(nested(MAX_DEPTH_CEILING, "object"))
    failed = FailedEvent(
        failure_type=FailureType.SCHEMA_VIOLATION,
        stage=Stage.ENRICHER,
        errors=[],
        original=OriginalPayload(encoding="json", data=event),
    )
    text = failed.model_dump_json().encode()
    assert depth(orjson.loads(text)) == MAX_DEPTH_CEILING + 2
    assert FailedEvent.model_validate_json(text) == failed
    assert orjson.loads(orjson.dumps(failed.model_dump(mode="json"))) == orjson.loads(text)
    assert msgspec.json.decode(text) == json.loads(text)
    assert failed.original.to_bytes() == orjson.dumps(event)


@pytest.mark.parametrize(("value", "ok"), [(4, True), (128, True), (3, False), (129, False)])
def test_the_limit_is_a_setting_within_what_the_platform_handles(
    monkeypatch: pytest.MonkeyPatch, value: int, ok: bool
) -> None:
    monkeypatch.setenv("TRIBUTARY_MAX_JSON_DEPTH", str(value))
    if ok:
        assert PlatformSettings().max_json_depth == value
    else:
        with pytest.raises(ValidationError, match="max_json_depth"):
            PlatformSettings()
