"""Validate a compose file offline as Compose does: interpolate, then check the compose-spec.

Compose (v2, the ``docker compose`` plugin) loads a file in this order: YAML (merge keys
resolved), interpolation of ``${...}`` from the environment and the env file, then validation
against the Compose Specification's JSON Schema. Here the schema is the compose-spec file that
check-jsonschema vendors and keeps current (``vendor.compose-spec``), checked with the
``jsonschema`` library; the interpolation follows the spec's rules
(https://github.com/compose-spec/compose-spec/blob/main/12-interpolation.md).
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

# ``$$`` (a literal dollar), ``$NAME`` or ``${...}``.
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[^}]*)\})"
)
_BRACED = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:\?|\?|:-|-|:\+|\+)(?P<arg>.*))?$"
)


class InterpolationError(ValueError):
    """A required variable is unset (``${NAME:?message}``), or a reference is malformed."""


def compose_schema() -> dict[str, Any]:
    path = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a Compose env file (comments, blank lines and quotes handled)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def interpolate_text(text: str, env: dict[str, str], unset: set[str]) -> str:
    """One string with its references resolved; names that defaulted to "" go to ``unset``."""

    def resolve(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            name = match.group("named")
            if name not in env:
                unset.add(name)
            return env.get(name, "")
        braced = _BRACED.match(match.group("braced"))
        if braced is None:
            raise InterpolationError(f"invalid interpolation format: {match.group(0)!r}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        is_set = name in env
        non_empty = is_set and env[name] != ""
        if op == ":?" and not non_empty:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        if op == "?" and not is_set:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        if op == ":-":
            return env[name] if non_empty else arg
        if op == "-":
            return env[name] if is_set else arg
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if is_set else ""
        if not is_set:
            unset.add(name)
        return env.get(name, "")

    return _TOKEN.sub(resolve, text)


def interpolate(value: Any, env: dict[str, str], unset: set[str]) -> Any:
    """Every string value of a loaded compose document interpolated (keys are left as they are)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, unset) for v in value]
    if isinstance(value, str):
        return interpolate_text(value, env, unset)
    return value


def schema_errors(document: dict[str, Any]) -> list[str]:
    """What the compose-spec schema refuses in ``document``, one line per error."""
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
