"""The search store's names: index families, daily indices and the alias that spans them.

Indices are daily and named after the day of the document, in UTC:

- ``<prefix>-events-YYYY.MM.DD``: enriched events, by the day of ``event_timestamp``;
- ``<prefix>-deadletters-YYYY.MM.DD``: dead letters, by the day of ``failed_at``.

A document's ``_id`` comes from its record, so that loading a record again overwrites its
document: an event's ``event_id``; a dead letter's ``event_id`` when the enricher wrote it, else
its record's coordinates (:func:`record_id`).

Each family has an alias (``<prefix>-events``, ``<prefix>-deadletters``): one name that
readers, Trino's search catalog among them, query across the days. The real-time loader writes
under these names, the reconciler, the alert sensor and the live reporting views read them;
how the store is told about them (templates, mappings, retention) is
``resources.search_indices``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime

EVENTS = "events"
DEADLETTERS = "deadletters"
FAMILIES = (EVENTS, DEADLETTERS)
"""Every index family, in the order the loader's templates are put."""

_DAY_FORMAT = "%Y.%m.%d"


def index_name(prefix: str, family: str, day: date) -> str:
    """Return the daily index of ``family`` (``events``/``deadletters``) for ``day``."""
    return f"{prefix}-{family}-{day.strftime(_DAY_FORMAT)}"


def index_pattern(prefix: str, family: str) -> str:
    """Return the wildcard that matches every daily index of ``family``."""
    return f"{prefix}-{family}-*"


def index_day(prefix: str, family: str, name: str) -> date | None:
    """Return the day of a daily index of ``family``, or None if ``name`` is not one."""
    match = re.fullmatch(rf"{re.escape(prefix)}-{family}-(\d{{4}}\.\d{{2}}\.\d{{2}})", name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), _DAY_FORMAT).date()
    except ValueError:
        return None


def alias_name(prefix: str, family: str) -> str:
    """Return the alias that spans every daily index of ``family``."""
    return f"{prefix}-{family}"


def record_id(topic: str, partition: int, offset: int) -> str:
    """Return the deterministic ``_id`` of a Kafka record's document: its coordinates, hashed."""
    return hashlib.sha1(f"{topic}/{partition}/{offset}".encode()).hexdigest()
