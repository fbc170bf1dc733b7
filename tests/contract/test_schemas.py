"""Every shipped schema is valid, versioned by SchemaVer, and ADDITIONs are compatible."""

from __future__ import annotations

import itertools
import json

import jsonschema
import pytest

from contract.compat import addition_problems
from contract.registry import SCHEMAS_DIR, SchemaKey, SchemaRegistry

pytestmark = pytest.mark.unit

REGISTRY = SchemaRegistry.from_directory()
KEYS = REGISTRY.keys()
SHOP_TYPES = {"page_view", "product_view", "add_to_cart", "checkout_started", "purchase"}


def _pairs() -> list[tuple[SchemaKey, SchemaKey]]:
    return [
        (versions[i], versions[i + 1])
        for versions in REGISTRY.families.values()
        for i in range(len(versions) - 1)
    ]


def test_ships_clickstream_and_another_domain() -> None:
    shop = {k.name for k in KEYS if k.vendor == "com.tributary.shop"}
    assert shop == SHOP_TYPES
    assert {k.vendor for k in KEYS} - {"com.tributary.shop"}, "only the shop domain is shipped"


def test_every_schema_file_is_registered() -> None:
    files = list(SCHEMAS_DIR.glob("**/*.json"))
    assert len(files) == len(REGISTRY)


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_schema_is_valid_json_schema(key: SchemaKey) -> None:
    schema = REGISTRY.get(key).schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == key.uri
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False, "payloads are closed objects"


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_examples_are_valid(key: SchemaKey) -> None:
    compiled = REGISTRY.get(key)
    examples = compiled.schema["examples"]
    assert examples, "every schema ships at least one example"
    for example in examples:
        assert compiled.errors(example) == []


@pytest.mark.parametrize("family", sorted(REGISTRY.families), ids=lambda f: f"{f[0]}/{f[1]}")
def test_versions_follow_schemaver(family: tuple[str, str]) -> None:
    versions = [k.version for k in REGISTRY.families[family]]
    assert str(versions[0]) == "1-0-0", "an event type starts at 1-0-0"
    for old, new in itertools.pairwise(versions):
        allowed = {
            (old.model, old.revision, old.addition + 1),
            (old.model, old.revision + 1, 0),
            (old.model + 1, 0, 0),
        }
        assert (new.model, new.revision, new.addition) in allowed, f"{old} -> {new} skips"


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: f"{p[0]}->{p[1].version}")
def test_addition_is_backward_compatible(pair: tuple[SchemaKey, SchemaKey]) -> None:
    old, new = pair
    if (new.version.model, new.version.revision) != (old.version.model, old.version.revision):
        pytest.fail(f"{new} is not an ADDITION; add a compatibility rule for it")
    old_schema, new_schema = REGISTRY.get(old).schema, REGISTRY.get(new).schema
    assert addition_problems(old_schema, new_schema) == []
    # And by data: everything the old version accepted, the new one accepts.
    for example in old_schema["examples"]:
        assert REGISTRY.get(new).errors(example) == []


def test_there_is_at_least_one_addition_to_check() -> None:
    assert _pairs(), "no schema has a second version, so compatibility is never exercised"


BASE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["a"],
    "properties": {"a": {"type": "string", "maxLength": 10}, "n": {"type": "integer"}},
}


def _changed(**changes: object) -> dict[str, object]:
    schema: dict[str, object] = json.loads(json.dumps(BASE))
    schema.update(changes)
    return schema


@pytest.mark.parametrize(
    ("new", "fragment"),
    [
        (_changed(required=["a", "n"]), "became required"),
        (
            _changed(properties={"a": {"type": "integer"}, "n": {"type": "integer"}}),
            "type narrowed",
        ),
        (
            _changed(
                properties={"a": {"type": "string", "maxLength": 5}, "n": {"type": "integer"}}
            ),
            "'maxLength' changed",
        ),
        (_changed(properties={"a": {"type": "string", "maxLength": 10}}), "property removed"),
    ],
)
def test_incompatible_changes_are_named(new: dict[str, object], fragment: str) -> None:
    problems = addition_problems(BASE, new)
    assert any(fragment in p for p in problems), problems


def test_new_property_in_an_open_object_is_refused() -> None:
    old = {**BASE, "additionalProperties": True}
    new = {**old, "properties": {**BASE["properties"], "c": {"type": "string"}}}  # type: ignore[dict-item]
    assert any("open object" in p for p in addition_problems(old, new))


def test_new_optional_property_in_a_closed_object_is_an_addition() -> None:
    new = {**BASE, "properties": {**BASE["properties"], "c": {"type": "string"}}}  # type: ignore[dict-item]
    assert addition_problems(BASE, new) == []
