"""Each event type's payload rules as polars types and pandera checks, read from its JSON Schema.

The JSON Schemas of ``contract/schemas`` (through ``contract.registry``) are the one statement
of what a payload holds; this module translates each schema into

- a polars ``Struct`` of its properties (``payload_fields``), the types the payload is decoded
  with: ``string`` -> String, ``integer`` -> Int64, ``number`` -> Float64, ``boolean`` ->
  Boolean, ``array`` -> List, ``object`` -> Struct;
- a pandera (polars) schema over the decoded fields (``PayloadRules.schema``): a ``required``
  property must not be null, and every bound becomes a check named after its keyword
  (``minLength``, ``maxLength``, ``pattern``, ``enum``, ``format``, ``minimum``,
  ``maximum``, ``minItems``, ``maxItems``); the rules of an array's items are checked on
  every item (``[].<property>.<keyword>``).

A keyword the translation does not know raises ``PayloadSchemaError`` when this module is
imported, so a schema can never carry a rule the lake silently skips. ``additionalProperties``
is the one rule left to the enricher (it validates every payload against the schema itself):
decoding with the declared properties drops any other key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandera.polars as pa
import polars as pl

from contract.registry import SchemaKey, SchemaRegistry

Rule = Callable[[pl.Expr], pl.Expr]
"""A rule over a value: an expression true where the value passes (null when it is null)."""

# Keywords that describe a schema without constraining its values.
_ANNOTATIONS = frozenset({"$schema", "$id", "self", "title", "description", "examples"})
# A URI per RFC 3986: a scheme, a colon and no white space (what ``format: uri`` accepts).
_URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$"
_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
}


class PayloadSchemaError(ValueError):
    """A JSON Schema uses a keyword (or a type) the lake's payload checks cannot express."""


@dataclass(frozen=True)
class PayloadCheck:
    """One derived rule of a property: its check name, reason and expression."""

    name: str
    reason: str
    rule: Rule


def _type(node: Mapping[str, Any], where: str) -> tuple[str, bool]:
    """The JSON type of ``node`` and whether it also allows null."""
    declared = node.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    nullable = "null" in types
    types = [t for t in types if t != "null"]
    if len(types) != 1:
        raise PayloadSchemaError(f"{where}: needs exactly one non-null type, has {declared!r}")
    return types[0], nullable


def dtype_of(node: Mapping[str, Any], where: str = "payload") -> pl.DataType:
    """The polars type a JSON value of schema ``node`` decodes to."""
    kind, _ = _type(node, where)
    if kind in _TYPES:
        return _TYPES[kind]
    if kind == "array":
        return pl.List(dtype_of(node.get("items", {}), f"{where}[]"))
    if kind == "object":
        properties = node.get("properties", {})
        return pl.Struct({n: dtype_of(p, f"{where}.{n}") for n, p in properties.items()})
    raise PayloadSchemaError(f"{where}: unsupported type {kind!r}")


def _min_length(v: Any) -> Rule:
    return lambda e: e.str.len_chars() >= v


def _max_length(v: Any) -> Rule:
    return lambda e: e.str.len_chars() <= v


def _pattern(v: Any) -> Rule:
    return lambda e: e.str.contains(v)


def _format(v: Any) -> Rule:
    if v != "uri":
        raise PayloadSchemaError(f"format {v!r} is not translated")
    return lambda e: e.str.contains(_URI_PATTERN)


def _enum(v: Any) -> Rule:
    allowed = [x for x in v if x is not None]
    return lambda e: e.is_in(allowed)


def _minimum(v: Any) -> Rule:
    return lambda e: e >= v


def _maximum(v: Any) -> Rule:
    return lambda e: e <= v


def _min_items(v: Any) -> Rule:
    return lambda e: e.list.len() >= v


def _max_items(v: Any) -> Rule:
    return lambda e: e.list.len() <= v


# keyword -> (the reason, given the keyword's value; the rule, given the value)
_KEYWORDS: dict[str, tuple[Callable[[Any], str], Callable[[Any], Rule]]] = {
    "minLength": (lambda v: f"is shorter than {v}", _min_length),
    "maxLength": (lambda v: f"is longer than {v}", _max_length),
    "pattern": (lambda v: f"does not match {v}", _pattern),
    "format": (lambda v: f"is not a {v}", _format),
    "enum": (lambda v: f"is not one of {', '.join(str(x) for x in v if x is not None)}", _enum),
    "minimum": (lambda v: f"is below {v}", _minimum),
    "maximum": (lambda v: f"is above {v}", _maximum),
    "minItems": (lambda v: f"has fewer than {v} items", _min_items),
    "maxItems": (lambda v: f"has more than {v} items", _max_items),
}
# Keywords of the structure, translated by ``dtype_of`` and ``_object_checks``.
_STRUCTURE = frozenset({"type", "items", "properties", "required", "additionalProperties"})


def _bounds(node: Mapping[str, Any], where: str) -> list[PayloadCheck]:
    """The checks of one property's own keywords (and of its items, for an array)."""
    kind, _ = _type(node, where)
    checks: list[PayloadCheck] = []
    for keyword, value in node.items():
        if keyword in _ANNOTATIONS or keyword in _STRUCTURE:
            continue
        if keyword not in _KEYWORDS:
            raise PayloadSchemaError(f"{where}: keyword {keyword}={value!r} is not translated")
        reason, rule = _KEYWORDS[keyword]
        checks.append(PayloadCheck(keyword, reason(value), rule(value)))
    if kind == "array" and "items" in node:
        checks += _item_checks(node["items"], f"{where}[]")
    return checks


def _present(e: pl.Expr) -> pl.Expr:
    return e.is_not_null()


def _object_checks(node: Mapping[str, Any], where: str) -> dict[str, list[PayloadCheck]]:
    """Per property of the object ``node``: ``required`` first, then its bounds."""
    required = set(node.get("required", []))
    unknown = required - set(node.get("properties", {}))
    if unknown:
        raise PayloadSchemaError(f"{where}: required {sorted(unknown)} are not properties")
    out: dict[str, list[PayloadCheck]] = {}
    for name, prop in node.get("properties", {}).items():
        own = [PayloadCheck("required", "is missing", _present)]
        out[name] = (own if name in required else []) + _bounds(prop, f"{where}.{name}")
    return out


def _on_items(rule: Rule) -> Rule:
    return lambda e: e.list.eval(rule(pl.element())).list.all()


def _on_item_field(rule: Rule, field: str) -> Rule:
    return lambda e: e.list.eval(rule(pl.element().struct.field(field))).list.all()


def _item_checks(item: Mapping[str, Any], where: str) -> list[PayloadCheck]:
    """The rules of an array's items, each checked on every item of the list."""
    kind, _ = _type(item, where)
    if kind == "object":
        return [
            PayloadCheck(
                f"[].{name}.{check.name}",
                f"an item's {name} {check.reason}",
                _on_item_field(check.rule, name),
            )
            for name, checks in _object_checks(item, where).items()
            for check in checks
        ]
    return [
        PayloadCheck(f"[].{check.name}", f"an item {check.reason}", _on_items(check.rule))
        for check in _bounds(item, where)
    ]


def _pandera_check(check: PayloadCheck) -> pa.Check:
    def fn(data: Any) -> pl.LazyFrame:
        frame: pl.LazyFrame = data.lazyframe
        # A null passes every rule but ``required`` (a missing optional property is fine).
        return frame.select(check.rule(pl.col(data.key)).fill_null(check.name != "required"))

    out = pa.Check(fn)
    out.name = check.name
    out.error = check.name
    return out


@dataclass(frozen=True)
class PayloadRules:
    """One event type's payload: its decode types, pandera schema and the checks' reasons."""

    key: SchemaKey
    fields: pl.Struct
    schema: pa.DataFrameSchema
    reasons: dict[str, str]
    """``<property>.<check>`` -> why a value fails it."""


def payload_rules(key: SchemaKey, schema: Mapping[str, Any]) -> PayloadRules:
    """Translate one event type's JSON Schema (an object) into its payload rules."""
    where = key.uri
    if _type(schema, where)[0] != "object":
        raise PayloadSchemaError(f"{where}: a payload schema must describe an object")
    fields = dtype_of(schema, where)
    assert isinstance(fields, pl.Struct)
    by_property = _object_checks(schema, where)
    columns = {
        name: pa.Column(
            dtype,
            checks=[_pandera_check(c) for c in by_property[name] if c.name != "required"],
            # ``required`` is pandera's own ``not_nullable`` check.
            nullable=not any(c.name == "required" for c in by_property[name]),
        )
        for name, dtype in fields.to_schema().items()
    }
    reasons = {
        f"{name}.{c.name}": c.reason
        for name, checks in by_property.items()
        for c in checks
        if c.name != "required"
    }
    return PayloadRules(
        key=key,
        fields=fields,
        schema=pa.DataFrameSchema(columns, strict=False, name=key.uri),
        reasons=reasons,
    )


def _all_rules(registry: SchemaRegistry) -> dict[str, PayloadRules]:
    return {key.uri: payload_rules(key, registry.get(key).schema) for key in registry}


PAYLOAD_RULES: dict[str, PayloadRules] = _all_rules(SchemaRegistry.from_directory())
"""Per event type URI (every registered version), its payload rules."""

PAYLOAD_FIELDS: dict[str, pl.Struct] = {
    rules.key.name: rules.fields for rules in sorted(PAYLOAD_RULES.values(), key=lambda r: r.key)
}
"""Per event name, the decode types of its latest version (an addition only adds optional
properties, so the latest decodes every version of the same model)."""
