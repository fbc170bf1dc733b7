"""Is a new schema version an ADDITION, i.e. does it accept all data the previous one did?

The check is structural and conservative: it accepts only changes it can prove safe (new
optional properties in a closed object, and wording changes) and names everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keywords that document a schema without constraining data.
_ANNOTATIONS = {"title", "description", "examples", "$comment", "$id", "$schema", "self"}


def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def addition_problems(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "") -> list[str]:
    """Return why data valid under ``old`` might be invalid under ``new`` (empty: compatible)."""
    problems: list[str] = []
    where = path or "/"
    old_types, new_types = _types(old), _types(new)
    if new_types and not old_types <= new_types:
        problems.append(f"{where}: type narrowed from {sorted(old_types)} to {sorted(new_types)}")

    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    for name, old_sub in old_props.items():
        if name not in new_props:
            if new.get("additionalProperties", True) is False:
                problems.append(f"{path}/{name}: property removed from a closed object")
            continue
        problems += addition_problems(old_sub, new_props[name], f"{path}/{name}")
    added = set(new_props) - set(old_props)
    if added and old.get("additionalProperties", True) is not False:
        problems.append(
            f"{where}: new properties {sorted(added)} in an open object may clash with data "
            "that already used those names"
        )
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    if newly_required:
        problems.append(f"{where}: properties {sorted(newly_required)} became required")
    if (
        old.get("additionalProperties", True) is not False
        and new.get("additionalProperties", True) is False
    ):
        problems.append(f"{where}: object closed to additional properties")

    if "items" in old or "items" in new:
        problems += addition_problems(old.get("items", {}), new.get("items", {}), f"{path}/items")

    structural = {"type", "properties", "required", "additionalProperties", "items"}
    for keyword in (set(old) | set(new)) - structural - _ANNOTATIONS:
        if old.get(keyword) != new.get(keyword):
            problems.append(
                f"{where}: '{keyword}' changed from {old.get(keyword)!r} to {new.get(keyword)!r}"
            )
    return problems
