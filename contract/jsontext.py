"""JSON text from outside a process, read with a bound on how deeply it nests.

Bytes a process did not write itself (a request body, a gRPC event, a raw record, the
original a dead letter keeps) are checked here before a parser that recurses without a bound
of its own sees them, against one limit for the whole platform:
``PlatformSettings.max_json_depth`` (``TRIBUTARY_MAX_JSON_DEPTH``). The collector, the
enricher, the enrichment API and every dead letter's ``OriginalPayload.from_bytes`` do;
records read with pydantic (the loaders, the dead-letter tools) are bounded by it at 200.

Depth: a scalar is 0 deep, an array or object one more than its deepest member. An event
``{"payload": {"page_url": "..."}}`` is 2 deep; a batch (the array around events) one more.

The libraries the platform parses and writes JSON with each stop somewhere else: orjson
parses 1,024 levels and writes 254, pydantic parses 200 and writes 254, msgspec and the
standard library recurse until Python's ``RecursionError``. The limit is checked on the text,
before any of them sees it, and may be at most ``MAX_DEPTH_CEILING``: a record within it, and
the dead letter that wraps it two levels deeper (``FailedEvent.original.data``), stays within
every one of those.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

DEFAULT_MAX_DEPTH = 32
"""Deeper than any event the shipped schemas describe (a purchase's items are 4 levels)."""

MAX_DEPTH_CEILING = 128
"""The highest limit the platform's parsers and serialisers all handle, dead letters included."""


class JsonRefused(ValueError):
    """Bytes that are not JSON, or JSON nested deeper than the limit; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_KEEP = b'[]{}"'
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_ARRAY = re.compile(rb"[ \t\r\n]*\[")
# Counting brackets first pays off for short texts only; a batch has more brackets than levels.
_SMALL = 4096


def _brackets(text: bytes) -> bytes:
    """The text's brackets outside strings, all as ``[`` and ``]``.

    Only C-speed passes over the bytes: escapes that hide a quote are dropped, every byte
    but brackets and quotes is dropped, then what lies between quotes. A string with no
    bracket in it is two adjacent quotes by then; when some string does hold one, the
    quotes are split away. (For text that is not JSON the result is still a bound on how
    deep a parser gets before it fails, which is all that matters for such text.)
    """
    if b"\\" in text:
        # A backslash pairs with the byte after it; an escaped backslash or quote is no delimiter.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = text.translate(_ONE_KIND, _DROP)
    bare = marks.replace(b'""', b"")
    if b'"' not in bare:
        return bare
    # Quotes alternate open and close: every other piece is a string's content.
    return b"".join(bare.split(b'"')[::2])


def _deeper_than(text: bytes, limit: int) -> bool:
    """Whether ``text`` nests more than ``limit`` levels (or, unbalanced, might)."""
    if len(text) <= _SMALL and text.count(b"[") + text.count(b"{") <= limit:
        return False  # fewer brackets than levels, strings included: most single events
    marks = _brackets(text)
    levels = 0
    # Each pass removes the innermost arrays and objects: as many passes as levels.
    while marks and levels <= limit:
        inner_removed = marks.replace(b"[]", b"")
        if len(inner_removed) == len(marks):
            break  # unbalanced: what is left opens (and may nest) once per '['
        marks = inner_removed
        levels += 1
    return levels + marks.count(b"[") > limit


def _parse(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise JsonRefused(f"not valid JSON: {exc}") from exc


def check_depth(text: bytes, max_depth: int) -> None:
    """Refuse ``text`` if it nests more than ``max_depth`` levels; before any parser runs.

    Raises:
        JsonRefused: The text nests deeper than allowed.
    """
    if _deeper_than(text, max_depth):
        raise JsonRefused(f"nested more than {max_depth} levels deep (the limit)")


def loads(text: bytes, max_depth: int) -> Any:
    """Parse JSON text nested at most ``max_depth`` levels.

    Raises:
        JsonRefused: The text is not JSON, or nests deeper than allowed.
    """
    check_depth(text, max_depth)
    return _parse(text)


def loads_events(text: bytes, max_depth: int) -> Any:
    """Parse one event (a JSON object) or a batch of events (an array of them).

    Each event may nest ``max_depth`` levels, so a batch one more: its array.

    Raises:
        JsonRefused: The text is not JSON, or an event in it nests deeper than allowed.
    """
    batch = _ARRAY.match(text) is not None
    if not batch:
        check_depth(text, max_depth)
    elif _deeper_than(text, max_depth + 1):
        raise JsonRefused(
            f"nested more than {max_depth + 1} levels deep (the limit: {max_depth} per event, "
            "one more for the batch's array)"
        )
    return _parse(text)
