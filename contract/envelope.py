"""The event envelope every producer sends and every stage reads.

An event is a JSON object::

    {
      "event_id": "5b4c8a8e-2b7e-4c7e-9d1a-2f0b0f3c4a11",      # UUID, chosen by the producer
      "event_type": "iglu:com.tributary.shop/page_view/jsonschema/1-0-0",
      "event_timestamp": "2026-11-28T10:15:00.123+01:00",      # RFC 3339, with an offset
      "source": "web-shop",                                    # who produced it
      "payload": {...},                                        # validated by its schema
      "context": {"user_id": "u-1", "session_id": "s-9"}       # optional
    }

The collector checks the envelope (this module); the enricher checks the payload against
the event type's schema (``contract.registry``).
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from contract.failures import FailureType
from contract.registry import FieldError, SchemaKey, SchemaRegistry

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339(value: Any) -> Any:
    """Accept only RFC 3339 strings with an offset (no epoch numbers, no naive times)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


def rfc3339(ts: datetime) -> str:
    """A timestamp as the envelope carries it: RFC 3339, milliseconds, ``Z`` for UTC."""
    if ts.tzinfo is None:
        raise ValueError("a timestamp needs a timezone")
    text = ts.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# An event as producers build and send it: the envelope as a dict, or bytes sent as they are
# (an event that is deliberately not JSON).
EventDict = dict[str, Any]
SourceItem = EventDict | bytes

# Keys of ``context`` with a meaning for the platform; any other key is carried along.
CONTEXT_IDENTITY_KEYS = ("user_id", "session_id", "device_id")
# How the curated lake's ``user_key`` names an actor by the identity it carries (first of
# user, device, session); ``e:`` when it has none, by its event id. Erasure finds a person's
# rows in a table keyed so.
USER_KEY_PREFIXES = {"user_id": "u:", "device_id": "d:", "session_id": "a:"}
EVENT_KEY_PREFIX = "e:"
_IDENTITY_MAX_LENGTH = 256
_EVENT_TYPE_MAX_LENGTH = 512

Identity = Annotated[str, Field(min_length=1, max_length=_IDENTITY_MAX_LENGTH)]


def identity_key(context: Any, event_id: Any) -> str | None:
    """The Kafka key of an event's records, and of its dead letters.

    ``user_id:<id>``, else ``session_id:<id>``, else ``device_id:<id>``, else
    ``event_id:<id>``: one user's events (and their dead letters) stay in order on one
    partition; sessionisation relies on it. Only identities the envelope would accept count
    (strings of 1 to 256 characters); None when there is none.
    """
    if isinstance(context, dict):
        for name in CONTEXT_IDENTITY_KEYS:
            value = context.get(name)
            if isinstance(value, str) and 0 < len(value) <= _IDENTITY_MAX_LENGTH:
                return f"{name}:{value}"
    if isinstance(event_id, str) and 0 < len(event_id) <= _IDENTITY_MAX_LENGTH:
        return f"event_id:{event_id}"
    return None


def event_key(data: Any) -> str | None:
    """The key of a decoded event that may break the envelope: from whatever it carries."""
    if not isinstance(data, dict):
        return None
    return identity_key(data.get("context"), data.get("event_id"))


def event_identity(data: Any) -> tuple[str | None, str | None]:
    """The ``event_id`` and ``event_type`` a decoded event names, valid or not.

    Only strings within the envelope's bounds: a dead letter (or an answer) never carries an
    identifier larger than the envelope allows, whatever the event held there.
    """
    if not isinstance(data, dict):
        return None, None
    event_id, event_type = data.get("event_id"), data.get("event_type")
    return (
        event_id if isinstance(event_id, str) and len(event_id) <= _IDENTITY_MAX_LENGTH else None,
        event_type
        if isinstance(event_type, str) and len(event_type) <= _EVENT_TYPE_MAX_LENGTH
        else None,
    )


class EventContext(BaseModel):
    """Optional facts about who and where; identity keys decide Kafka partitioning."""

    model_config = ConfigDict(extra="allow")

    user_id: Identity | None = None
    session_id: Identity | None = None
    device_id: Identity | None = None


class Envelope(BaseModel):
    """The top-level fields of an event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID
    event_type: Annotated[str, Field(min_length=1, max_length=_EVENT_TYPE_MAX_LENGTH)]
    event_timestamp: Timestamp
    source: Annotated[str, Field(min_length=1, max_length=256)]
    payload: dict[str, Any]
    context: EventContext | None = None

    @property
    def schema_key(self) -> SchemaKey:
        return SchemaKey.parse(self.event_type)

    def partition_key(self) -> str:
        """Key that keeps one user's (else session's, else device's) events in order."""
        context = None if self.context is None else vars(self.context)
        return identity_key(context, None) or f"event_id:{self.event_id}"


@dataclass(frozen=True)
class EnvelopeRules:
    """Limits the collector applies to each event; all configurable."""

    max_event_bytes: int = 64 * 1024
    max_past_skew: timedelta = timedelta(days=7)
    max_future_skew: timedelta = timedelta(minutes=10)


@dataclass
class EnvelopeCheck:
    """The outcome of checking one event: the envelope, or why it was refused."""

    envelope: Envelope | None = None
    failure_type: FailureType | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.envelope is not None


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        pointer = "".join(f"/{part}" for part in err["loc"])
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown top-level field"
        out.append(FieldError(pointer or "/", reason))
    return out


def check_envelope(
    data: Any,
    registry: SchemaRegistry,
    rules: EnvelopeRules,
    *,
    size_bytes: int | None = None,
    now: datetime | None = None,
) -> EnvelopeCheck:
    """Check one decoded event against the envelope contract (not its payload schema)."""
    if size_bytes is not None and size_bytes > rules.max_event_bytes:
        return EnvelopeCheck(
            failure_type=FailureType.SIZE_VIOLATION,
            errors=[
                FieldError(
                    "/", f"event is {size_bytes} bytes, the limit is {rules.max_event_bytes}"
                )
            ],
        )
    if not isinstance(data, dict):
        return EnvelopeCheck(
            failure_type=FailureType.ENVELOPE_VIOLATION,
            errors=[FieldError("/", f"an event must be a JSON object, not {_json_type(data)}")],
        )
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        return EnvelopeCheck(failure_type=FailureType.ENVELOPE_VIOLATION, errors=_field_errors(exc))

    errors = []
    now = now or datetime.now(UTC)
    ts = envelope.event_timestamp
    if ts > now + rules.max_future_skew:
        errors.append(
            FieldError(
                "/event_timestamp",
                f"{ts.isoformat()} is more than {rules.max_future_skew} in the future",
            )
        )
    elif ts < now - rules.max_past_skew:
        errors.append(
            FieldError(
                "/event_timestamp",
                f"{ts.isoformat()} is more than {rules.max_past_skew} in the past",
            )
        )
    if errors:
        return EnvelopeCheck(failure_type=FailureType.ENVELOPE_VIOLATION, errors=errors)

    if registry.lookup(envelope.event_type) is None:
        try:
            SchemaKey.parse(envelope.event_type)
            reason = "no schema with this vendor, name and version is registered"
        except ValueError as exc:
            reason = str(exc)
        return EnvelopeCheck(
            failure_type=FailureType.UNKNOWN_SCHEMA, errors=[FieldError("/event_type", reason)]
        )
    return EnvelopeCheck(envelope=envelope)


# What ``accepted_key`` lets through without pydantic: a subset of what ``check_envelope``
# accepts, in the form the producers of the platform write (a lowercase hyphenated UUID, a
# timestamp with at most microseconds and an uppercase ``T``). Anything else, valid or not,
# goes to ``check_envelope``, which alone decides and explains.
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields)
_LOWER_HEX_AND_DASH = "0123456789abcdef-"
_PLAIN_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})"
)


def accepted_key(
    data: Any,
    event_types: Container[str],
    earliest: datetime,
    latest: datetime,
) -> str | None:
    """The partition key of an event ``check_envelope`` would accept, or None: ask it.

    A fast path for the common case, a plain dict check with no model built: ``data`` has
    the envelope's fields and no others, each of the type and length the envelope allows,
    the event type is one of ``event_types`` (the registered ones), and the timestamp lies
    in ``[earliest, latest]`` (``now - max_past_skew`` to ``now + max_future_skew``). The
    size limit is the caller's. When it returns a key, ``check_envelope`` accepts the event
    and ``partition_key()`` gives the same key; when it returns None the event may still be
    valid, in a form this check leaves to pydantic.
    """
    if type(data) is not dict or not data.keys() <= _ENVELOPE_FIELDS:
        return None
    event_id = data.get("event_id")
    event_type = data.get("event_type")
    timestamp = data.get("event_timestamp")
    source = data.get("source")
    if (
        type(event_id) is not str
        or type(timestamp) is not str
        or type(source) is not str
        or type(data.get("payload")) is not dict
        or type(event_type) is not str
        or event_type not in event_types
        or not 0 < len(source) <= 256
        or not 0 < len(event_type) <= _EVENT_TYPE_MAX_LENGTH
        # A lowercase hyphenated UUID: 8-4-4-4-12 hex digits (strip leaves "" of such text).
        or len(event_id) != 36
        or event_id[8] != "-"
        or event_id[13] != "-"
        or event_id[18] != "-"
        or event_id[23] != "-"
        or event_id.count("-") != 4
        or event_id.strip(_LOWER_HEX_AND_DASH)
    ):
        return None
    # The form rfc3339() writes, as the platform's producers do (milliseconds, then Z or an
    # offset in hours and minutes), checked by its separators: fromisoformat below takes
    # only ASCII digits between them. Any other text must match the plain pattern.
    size = len(timestamp)
    if not (
        (
            (size == 24 and timestamp[23] == "Z")
            or (size == 29 and timestamp[23] in "+-" and timestamp[26] == ":")
        )
        and timestamp[4] == "-"
        and timestamp[7] == "-"
        and timestamp[10] == "T"
        and timestamp[13] == ":"
        and timestamp[16] == ":"
        and timestamp[19] == "."
        and timestamp.isascii()
    ) and not _PLAIN_TIMESTAMP.fullmatch(timestamp):
        return None
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if not earliest <= when <= latest:
        return None
    key = None
    context = data.get("context")
    if context is not None:
        if type(context) is not dict:
            return None
        for name in CONTEXT_IDENTITY_KEYS:
            value = context.get(name)
            if value is None:
                continue
            if type(value) is not str or not 0 < len(value) <= _IDENTITY_MAX_LENGTH:
                return None
            if key is None:
                key = f"{name}:{value}"
    return key or f"event_id:{event_id}"


def _json_type(value: Any) -> str:
    names = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)
