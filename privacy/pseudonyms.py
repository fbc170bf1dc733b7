"""Keyed pseudonyms of personal fields: the one place they are computed.

A pseudonym is ``ps:<key version>:<HMAC-SHA256(key, value), 64 hex digits>``: the same value
under the same key always gets the same pseudonym (so a pseudonymised user id still groups a
person's events into sessions, and a person's events can be found again by computing it), and
nobody without the key can compute it or go back to the value. The prefix makes a pseudonym
recognisable and names its key, so keys can rotate: old events keep the version they were
made with, and :func:`pseudonyms_of` computes a value's pseudonym under every configured key.

What is hashed: a string as its UTF-8 bytes; a number, boolean, array or object as its compact
JSON text with sorted keys (so ``42`` and ``"42"`` get the same pseudonym); ``null`` is left as
it is (it names nobody). The same value gets the same pseudonym in every field.

:class:`Pseudonymiser` applies :class:`resources.settings.PseudonymSettings` to records: the
client IP, the chosen ``context`` keys, the Kafka key, and the payload fields declared per
event type as JSON Pointers (RFC 6901, relative to the payload; ``*`` stands for every item
of an array or member of an object). A pointer that leads nowhere in an event (a field absent
from this event or this version) changes nothing; a value that already is a pseudonym under a
configured key version is kept, so a dead letter's pseudonymised original can be replayed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from contract.failures import FailedEvent, OriginalPayload
from contract.registry import SchemaKey, SchemaRegistry
from resources.settings import MissingSetting, PseudonymSettings

PREFIX = "ps"
_PSEUDONYM = re.compile(r"^ps:([a-z0-9]{1,16}):[0-9a-f]{64}$")
_IGLU = re.compile(r"^iglu:(?P<vendor>[^/]+)/(?P<name>[^/]+)/jsonschema/(?P<version>[^/]+)$")
WILDCARD = "*"
LONGEST = len(f"{PREFIX}:{'v' * 16}:") + 64
"""The longest pseudonym (a 16-character key version): what a declared field must hold."""


CACHED_STRINGS = 100_000


class FieldsRefused(MissingSetting):
    """Declared payload fields that name no field, or a field that cannot hold a pseudonym."""


def pseudonym(key: str | bytes, version: str, value: str) -> str:
    """The pseudonym of ``value`` under ``key`` (named ``version``): ``ps:<version>:<hex>``."""
    secret = key.encode() if isinstance(key, str) else key
    digest = hmac.digest(secret, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return f"{PREFIX}:{version}:{digest.hex()}"


def pseudonyms_of(settings: PseudonymSettings, value: str) -> dict[str, str]:
    """``value``'s pseudonym under every configured key, by key version (current one first).

    What ``tributary forget`` looks for to find a person's pseudonymised events, whichever key
    they were made with. Raises ``MissingSetting`` when no key is configured.
    """
    return {version: pseudonym(key, version, value) for version, key in settings.keys().items()}


def key_version_of(value: Any) -> str | None:
    """The key version a pseudonym was made with; None when ``value`` is not a pseudonym."""
    m = _PSEUDONYM.match(value) if isinstance(value, str) else None
    return m[1] if m else None


def text_of(value: Any) -> str | None:
    """What is hashed for ``value``: a string itself, anything else (but null) as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of a JSON Pointer (``~1`` is ``/``, ``~0`` is ``~``)."""
    if not pointer.startswith("/"):
        raise ValueError(f"'{pointer}' is not a JSON Pointer")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _locations(node: Any, tokens: tuple[str, ...], path: str) -> Iterator[tuple[Any, Any, str]]:
    """Every (container, key or index, pointer) that ``tokens`` reaches from ``node``."""
    if not tokens:
        return
    token, rest = tokens[0], tokens[1:]
    if isinstance(node, dict):
        keys = list(node) if token == WILDCARD else [token] if token in node else []
        for key in keys:
            here = f"{path}/{_escape(key)}"
            yield from _locations(node[key], rest, here) if rest else [(node, key, here)]
    elif isinstance(node, list):
        if token == WILDCARD:
            indices = list(range(len(node)))
        elif token.isdigit() and (token == "0" or not token.startswith("0")):
            indices = [int(token)] if int(token) < len(node) else []
        else:  # "-" (past the end) or not an index: nothing there
            indices = []
        for index in indices:
            here = f"{path}/{index}"
            yield from _locations(node[index], rest, here) if rest else [(node, index, here)]


def _type_keys(event_type: Any) -> tuple[str, ...]:
    m = _IGLU.match(event_type) if isinstance(event_type, str) else None
    if m is None:
        return ()
    base = f"{m['vendor']}/{m['name']}"
    return base, f"{base}/{m['version']}"


@dataclass
class Pseudonymiser:
    """Applies one ``PseudonymSettings`` (enabled, with a key) to records, keys, dead letters."""

    key: bytes
    version: str
    known_versions: frozenset[str]
    client_ip: bool = True
    context_fields: tuple[str, ...] = ("user_id",)
    payload_fields: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    # Strings already seen, and what they became (a person's id recurs in all their events);
    # emptied when full. Pointers by event type.
    _strings: dict[str, str] = field(default_factory=dict, repr=False)
    _pointers: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: PseudonymSettings) -> Pseudonymiser | None:
        """The pseudonymiser of ``settings``; None when pseudonyms are off.

        Raises ``MissingSetting`` when they are on without a key (``PlatformSettings`` has
        already refused that outside the local profile, and given the local one its key).
        """
        if not settings.enabled:
            return None
        keys = settings.keys()
        return cls(
            key=keys[settings.key_version].encode(),
            version=settings.key_version,
            known_versions=frozenset(keys),
            client_ip=settings.client_ip,
            context_fields=tuple(settings.context_fields),
            payload_fields={
                selector: tuple(parse_pointer(p) for p in pointers)
                for selector, pointers in settings.payload_fields.items()
            },
        )

    def value(self, value: Any) -> Any:
        """``value``'s pseudonym; null, and a pseudonym under a known key, stay as they are."""
        if isinstance(value, str):
            seen = self._strings.get(value)
            if seen is None:
                if len(self._strings) >= CACHED_STRINGS:
                    self._strings.clear()
                known = key_version_of(value) in self.known_versions
                seen = self._strings[value] = (
                    value if known else pseudonym(self.key, self.version, value)
                )
            return seen
        text = text_of(value)
        return value if text is None else pseudonym(self.key, self.version, text)

    def pointers(self, event_type: Any) -> tuple[tuple[str, ...], ...]:
        """The payload pointers declared for ``event_type`` (every version's, then its own)."""
        if not isinstance(event_type, str):
            return ()
        found = self._pointers.get(event_type)
        if found is None:
            if len(self._pointers) >= CACHED_STRINGS:
                self._pointers.clear()
            found = self._pointers[event_type] = tuple(
                p for k in _type_keys(event_type) for p in self.payload_fields.get(k, ())
            )
        return found

    def record(self, record: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """Pseudonymise a raw or enriched record in place.

        Returns ``(pointer, original, pseudonym)`` of every value replaced. Parts of the
        record that are not objects where the contract has objects are left alone (such a
        record is a dead letter, and nothing personal can be located in it).
        """
        replaced: list[tuple[str, Any, Any]] = []

        def swap(container: Any, key: Any, where: str) -> None:
            """Replace ``container[key]`` (a member, or a list item ``_locations`` found)."""
            if (isinstance(container, dict) and key in container) or isinstance(container, list):
                old = container[key]
                new = self.value(old)
                if new is not old and new != old:
                    container[key] = new
                    replaced.append((where, old, new))

        context = record.get("context")
        collector = record.get("collector")
        if self.client_ip:
            swap(collector, "client_ip", "/collector/client_ip")
            swap(context, "client_ip", "/context/client_ip")
        for name in self.context_fields:
            if not (self.client_ip and name == "client_ip"):
                swap(context, name, f"/context/{_escape(name)}")
        payload = record.get("payload")
        for pointer in self.pointers(record.get("event_type")):
            for container, key, where in list(_locations(payload, pointer, "/payload")):
                swap(container, key, where)
        return replaced

    def kafka_key(self, key: bytes | None) -> bytes | None:
        """A record's key ``<name>:<id>`` with the id pseudonymised when ``name`` is chosen."""
        if not key:
            return key
        name, sep, ident = key.partition(b":")
        if not sep or name.decode("utf-8", "replace") not in self.context_fields:
            return key
        value: str = self.value(ident.decode("utf-8", "surrogateescape"))
        return name + b":" + value.encode("utf-8", "surrogateescape")

    def failed_event(self, failed: FailedEvent) -> FailedEvent:
        """A dead letter with its original, metadata and reasons pseudonymised.

        A JSON original is pseudonymised as a record is, and every reason that quoted a
        replaced value quotes its pseudonym instead. An original that is not a JSON object
        (base64 bytes, an array, a scalar) is withheld: nothing personal can be located in
        it, so it is replaced by ``null`` and ``metadata.original_withheld`` says why.
        ``metadata.pseudonym_key_version`` names the key.
        """
        metadata = dict(failed.metadata)
        metadata["pseudonym_key_version"] = self.version
        original = failed.original
        replaced: list[tuple[str, Any, Any]] = []
        if original.encoding == "json" and isinstance(original.data, dict):
            data = copy.deepcopy(original.data)
            replaced = self.record(data)
            original = OriginalPayload(encoding="json", data=data)
        elif original.data is not None:
            original = OriginalPayload(encoding="json", data=None)
            metadata["original_withheld"] = (
                f"pseudonyms are on and the original ({failed.original.encoding}) is not a JSON "
                "object, so its personal fields could not be located"
            )
        if self.client_ip and "client_ip" in metadata:
            old = metadata["client_ip"]
            metadata["client_ip"] = self.value(old)
            if metadata["client_ip"] != old:
                replaced.append(("/metadata/client_ip", old, metadata["client_ip"]))
        errors = failed.errors
        quoted = [(text_of(old), new) for _, old, new in replaced if text_of(old)]
        if quoted:
            quoted.sort(key=lambda pair: -len(pair[0] or ""))
            errors = []
            for error in failed.errors:
                reason = error.reason
                for old_text, new in quoted:
                    reason = reason.replace(old_text or "", new)
                errors.append(error.model_copy(update={"reason": reason}))
        update = {"original": original, "metadata": metadata, "errors": errors}
        return failed.model_copy(update=update)


def _subschemas(schema: Any, tokens: tuple[str, ...]) -> list[dict[str, Any]]:
    """The schemas of the values ``tokens`` reaches from a value of ``schema`` (none: no field)."""
    nodes = [schema] if isinstance(schema, dict) else []
    for token in tokens:
        reached: list[Any] = []
        for node in nodes:
            properties = node.get("properties") or {}
            items, extra = node.get("items"), node.get("additionalProperties")
            if token == WILDCARD:
                reached += [*properties.values(), items, extra]
            elif token in properties:
                reached.append(properties[token])
            elif token.isdigit() and isinstance(items, dict):
                reached.append(items)
            else:
                reached.append(extra)
        nodes = [n for n in reached if isinstance(n, dict)]
    return nodes


def _cannot_hold(schema: dict[str, Any]) -> str | None:
    """Why a value of ``schema`` cannot be a pseudonym (a string of up to ``LONGEST``)."""
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    if types and "string" not in types:
        return f"its type is {'/'.join(types)}"
    for word in ("enum", "const", "pattern", "format"):
        if word in schema:
            return f"its schema has {word}"
    if schema.get("maxLength", LONGEST) < LONGEST:
        return f"its maxLength {schema['maxLength']} is below {LONGEST}"
    return None


def schema_problems(settings: PseudonymSettings, registry: SchemaRegistry) -> list[str]:
    """What is wrong with ``settings.payload_fields`` against the event types' schemas.

    A selector must name a registered event type (or version); each of its pointers must
    lead to a field of at least one of the versions it selects (another version may lack
    it), and every field it leads to must accept a pseudonym: curation checks the lake's
    payloads against the same schemas and would quarantine the event otherwise.
    """
    families = registry.families
    problems = []
    for selector, pointers in settings.payload_fields.items():
        vendor, name, *version = selector.split("/")
        keys = [
            k
            for k in families.get((vendor, name), [])
            if not version or str(k.version) == version[0]
        ]
        if not keys:
            problems.append(f"{selector}: no such event type")
            continue
        for pointer in pointers:
            reached = {k: _subschemas(registry.get(k).schema, parse_pointer(pointer)) for k in keys}
            if not any(reached.values()):
                problems.append(f"{selector} {pointer}: no such field in {_versions(keys)}")
            for key, schemas in reached.items():
                for why in {w for w in map(_cannot_hold, schemas) if w}:
                    problems.append(f"{key.uri} {pointer} cannot hold a pseudonym: {why}")
    return problems


def _versions(keys: list[SchemaKey]) -> str:
    return ", ".join(str(k.version) for k in keys)


def check_fields(settings: PseudonymSettings, registry: SchemaRegistry) -> None:
    """Raise ``FieldsRefused`` naming every problem of :func:`schema_problems`."""
    problems = schema_problems(settings, registry) if settings.enabled else []
    if problems:
        raise FieldsRefused("TRIBUTARY_PRIVACY__PSEUDONYMS__PAYLOAD_FIELDS: " + "; ".join(problems))
