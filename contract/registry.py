"""Versioned event schemas: SchemaVer keys, and a registry of compiled validators.

Schemas follow Snowplow Iglu's conventions: an event type is named by the URI
``iglu:<vendor>/<name>/jsonschema/<MODEL>-<REVISION>-<ADDITION>`` and stored at
``schemas/<vendor>/<name>/jsonschema/<version>.json``. SchemaVer's three parts mean:

- ADDITION: a change that is compatible with all data valid under the previous version
  (for example a new optional property in a closed object);
- REVISION: a change that may invalidate some historical data;
- MODEL: a breaking change of the event's meaning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMAS_DIR = Path(__file__).parent / "schemas"

_SCHEMAVER = re.compile(
    r"^(?P<model>[1-9][0-9]*)-(?P<revision>0|[1-9][0-9]*)-(?P<addition>0|[1-9][0-9]*)$"
)
_NAME = r"[a-zA-Z0-9_-]+"
_VENDOR = r"[a-zA-Z0-9_.-]+"
_IGLU_URI = re.compile(
    rf"^iglu:(?P<vendor>{_VENDOR})/(?P<name>{_NAME})/(?P<format>jsonschema)/(?P<version>[^/]+)$"
)


class SchemaError(ValueError):
    """A schema key or schema file is not well formed."""


@dataclass(frozen=True, order=True)
class SchemaVer:
    model: int
    revision: int
    addition: int

    @classmethod
    def parse(cls, text: str) -> SchemaVer:
        match = _SCHEMAVER.match(text)
        if match is None:
            raise SchemaError(f"'{text}' is not a SchemaVer version (MODEL-REVISION-ADDITION)")
        return cls(int(match["model"]), int(match["revision"]), int(match["addition"]))

    def __str__(self) -> str:
        return f"{self.model}-{self.revision}-{self.addition}"


@dataclass(frozen=True, order=True)
class SchemaKey:
    vendor: str
    name: str
    version: SchemaVer
    format: str = "jsonschema"

    @classmethod
    def parse(cls, uri: str) -> SchemaKey:
        match = _IGLU_URI.match(uri)
        if match is None:
            raise SchemaError(
                f"'{uri}' is not an event type URI (iglu:<vendor>/<name>/jsonschema/<version>)"
            )
        return cls(match["vendor"], match["name"], SchemaVer.parse(match["version"]))

    @property
    def uri(self) -> str:
        return f"iglu:{self.vendor}/{self.name}/{self.format}/{self.version}"

    @property
    def family(self) -> tuple[str, str]:
        """The (vendor, name) pair shared by every version of this event type."""
        return (self.vendor, self.name)

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class FieldError:
    """One reason why a value was refused: where (a JSON Pointer) and why."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def _pointer(parts: Iterator[str | int] | list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class CompiledSchema:
    """One schema and its compiled validator."""

    def __init__(self, key: SchemaKey, schema: Mapping[str, Any]) -> None:
        self.key = key
        self.schema = schema
        self._validator = jsonschema_rs.validator_for(dict(schema), validate_formats=True)

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))

    def errors(self, instance: Any, prefix: str = "") -> list[FieldError]:
        """Return every violation, each with the JSON Pointer of the failing field."""
        found = []
        for error in self._validator.iter_errors(instance):
            path = list(error.instance_path)
            kind = error.kind
            # A missing property is reported at its parent; point at the property itself.
            if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
                path.append(str(kind.property).strip('"'))
            found.append(FieldError(prefix + _pointer(path), error.message))
        return found


class SchemaRegistry:
    """Every known event schema, compiled once, looked up by key."""

    def __init__(self, schemas: Mapping[SchemaKey, Mapping[str, Any]]) -> None:
        self._compiled = {key: CompiledSchema(key, s) for key, s in schemas.items()}
        self._by_uri = {key.uri: c for key, c in self._compiled.items()}

    @classmethod
    def from_directory(cls, root: Path = SCHEMAS_DIR) -> SchemaRegistry:
        schemas: dict[SchemaKey, Mapping[str, Any]] = {}
        for path in sorted(root.glob("*/*/jsonschema/*.json")):
            vendor, name = path.parts[-4], path.parts[-3]
            key = SchemaKey(vendor, name, SchemaVer.parse(path.stem))
            schema = json.loads(path.read_text())
            declared = schema.get("self", {})
            expected = {
                "vendor": vendor,
                "name": name,
                "format": "jsonschema",
                "version": str(key.version),
            }
            if declared != expected:
                raise SchemaError(f"{path}: 'self' is {declared}, its path says {expected}")
            schemas[key] = schema
        if not schemas:
            raise SchemaError(f"no schemas found under {root}")
        return cls(schemas)

    def __contains__(self, key: object) -> bool:
        return key in self._compiled

    def __len__(self) -> int:
        return len(self._compiled)

    def __iter__(self) -> Iterator[SchemaKey]:
        return iter(self.keys())

    def keys(self) -> list[SchemaKey]:
        return sorted(self._compiled)

    def get(self, key: SchemaKey) -> CompiledSchema:
        return self._compiled[key]

    def lookup(self, uri: str) -> CompiledSchema | None:
        """Return the compiled schema for an event type URI, or None when it is unknown."""
        return self._by_uri.get(uri)

    @cached_property
    def families(self) -> dict[tuple[str, str], list[SchemaKey]]:
        """Every event type with its versions, oldest first."""
        out: dict[tuple[str, str], list[SchemaKey]] = {}
        for key in self.keys():
            out.setdefault(key.family, []).append(key)
        return out

    def latest(self, vendor: str, name: str) -> SchemaKey:
        return self.families[(vendor, name)][-1]
