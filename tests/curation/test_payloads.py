"""The lake's payload checks agree with the JSON Schemas they are derived from.

For every registered event type, its schema's examples pass, and for every rule of the schema
(each required property, type, enum, pattern, format and bound, also inside array items) a
payload breaking that rule alone is generated: the contract's validator and the lake's
validation must both refuse it, and the lake must name the rule.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from contract.registry import SchemaKey, SchemaRegistry
from platform_assets.curation.payloads import PayloadSchemaError, payload_rules
from platform_assets.curation.validate import validate_events
from tests.curation.rows import frame, row

pytestmark = pytest.mark.unit

REGISTRY = SchemaRegistry.from_directory()
SHOP_EVENTS = {"page_view", "product_view", "add_to_cart", "checkout_started", "purchase"}


def _breaking(node: dict[str, Any], value: Any) -> Iterator[tuple[str, Any]]:
    """(keyword, a value breaking only it) for each rule of the property schema ``node``."""
    kind = node["type"] if isinstance(node["type"], str) else node["type"][0]
    yield "decodes", ({"wrong": "type"} if kind != "object" else "wrong type")
    if "minLength" in node and node["minLength"] > 0:
        yield "minLength", "x" * (node["minLength"] - 1)
    if "maxLength" in node:
        yield "maxLength", "x" * (node["maxLength"] + 1)
    if "pattern" in node:
        yield "pattern", "~not matching~"
    if "enum" in node:
        yield "enum", "not-a-member"
    if node.get("format") == "uri":
        yield "format", "not a uri"
    if "minimum" in node:
        yield "minimum", node["minimum"] - 1
    if "maximum" in node:
        yield "maximum", node["maximum"] + 1
    if "minItems" in node:
        yield "minItems", value[: node["minItems"] - 1]
    if "maxItems" in node:
        yield "maxItems", value * (node["maxItems"] + 1)
    item = node.get("items", {})
    for name, prop in item.get("properties", {}).items():
        if name in item.get("required", []):
            broken = copy.deepcopy(value)
            del broken[0][name]
            yield f"[].{name}.required", broken
        for keyword, bad in _breaking(prop, value[0][name]):
            if keyword != "decodes":
                broken = copy.deepcopy(value)
                broken[0][name] = bad
                yield f"[].{name}.{keyword}", broken


def _cases() -> Iterator[tuple[SchemaKey, str, dict[str, Any]]]:
    for key in REGISTRY:
        schema = REGISTRY.get(key).schema
        example = schema["examples"][0]
        for name in schema.get("required", []):
            broken = {k: v for k, v in example.items() if k != name}
            yield key, f"{name}.not_nullable", broken
        for name, prop in schema["properties"].items():
            base = example.get(name, schema["examples"][-1].get(name))
            for keyword, bad in _breaking(prop, base):
                check = "decodes" if keyword == "decodes" else f"{name}.{keyword}"
                yield key, check, {**example, name: bad}


CASES = list(_cases())


def _raw(key: SchemaKey, payload: dict[str, Any]) -> dict[str, Any]:
    name = key.name if key.name in SHOP_EVENTS else "page_view"
    return row(
        name,
        payload=payload,
        event_type=key.uri,
        event_vendor=key.vendor,
        event_name=key.name,
        event_version=str(key.version),
    )


def _lake_reasons(cases: list[tuple[SchemaKey, dict[str, Any]]]) -> list[set[str]]:
    """The lake's quarantine reasons of each payload, validated together as one partition."""
    rows = [_raw(key, payload) for key, payload in cases]
    result = validate_events(frame(rows))
    by_id = dict(
        zip(
            result.quarantine.get_column("event_id").to_list(),
            result.quarantine.get_column("quarantine_reasons").to_list(),
            strict=True,
        )
    )
    # "payload.decodes" -> "decodes", "payload.price.minimum" -> "price.minimum"
    return [
        {
            f"{r['column']}.{r['check']}".removeprefix("payload.")
            for r in by_id.get(raw["event_id"], [])
        }
        for raw in rows
    ]


@pytest.fixture(scope="module")
def refused() -> dict[int, set[str]]:
    return dict(enumerate(_lake_reasons([(key, payload) for key, _, payload in CASES])))


@pytest.mark.parametrize("key", list(REGISTRY), ids=str)
def test_the_schema_examples_pass(key: SchemaKey) -> None:
    examples = REGISTRY.get(key).schema["examples"]
    assert all(REGISTRY.get(key).is_valid(example) for example in examples)
    assert _lake_reasons([(key, example) for example in examples]) == [set()] * len(examples)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{k}:{c}" for k, c, _ in CASES])
def test_a_payload_breaking_one_rule_is_refused_by_both_and_named(
    case: int, refused: dict[int, set[str]]
) -> None:
    key, check, payload = CASES[case]
    assert not REGISTRY.get(key).is_valid(payload), "the case breaks no rule of the schema"
    assert check in refused[case]


def test_every_rule_of_every_schema_has_a_case() -> None:
    """The cases cover each derived check, so no rule escapes the agreement test."""
    covered = {(k.uri, c) for k, c, _ in CASES}
    for key in REGISTRY:
        rules = payload_rules(key, REGISTRY.get(key).schema)
        for check in rules.reasons:
            assert (key.uri, check) in covered, (key.uri, check)


def test_a_keyword_the_lake_cannot_check_is_refused() -> None:
    key = SchemaKey.parse("iglu:com.example/thing/jsonschema/1-0-0")
    schema = {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 2}}}
    with pytest.raises(PayloadSchemaError, match="multipleOf"):
        payload_rules(key, schema)
