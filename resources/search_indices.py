"""The search store's indices on the client: templates with explicit mappings, aliases, retention.

The names are the contract's (``contract.search``); this module is what tells the search
store (OpenSearch or Elasticsearch, through :class:`resources.search.SearchStore`) about
them. Each family has a composable index template (``<prefix>-events``,
``<prefix>-deadletters``), so a daily index gets its mapping when the first bulk request
creates it, and joins the family's alias. The real-time loader puts the templates at start
(:func:`ensure_templates`, with its index settings); the stack's provisioning creates each
family's alias ahead of any document (:func:`provision_indices`), so readers such as the live
reporting views resolve on a store nothing has written to yet. Neither ISM nor ILM is in the
minimal distributions the local stack runs (docs/stack.md), so retention is done by the loader:
:func:`apply_retention` deletes the daily indices whose day is older than the retention period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from contract.search import (
    DEADLETTERS,
    EVENTS,
    FAMILIES,
    alias_name,
    index_day,
    index_name,
    index_pattern,
)
from resources.search import SearchStore

log = logging.getLogger(__name__)

# Priority of the loader's templates: above a catch-all template of priority 0, so ours win
# on the indices they are meant for.
TEMPLATE_PRIORITY = 200


def _keyword(**extra: Any) -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": 1024, **extra}


_DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}

# Strings in open objects (payload, context) are keywords: exact match and aggregations, no
# full-text analysis; numbers are doubles whatever JSON number they first arrive as, so an
# integer-valued first price does not truncate later decimal ones; no date guessing.
_OPEN_OBJECT_TEMPLATES: list[dict[str, Any]] = [
    {
        "strings_as_keywords": {
            "match_mapping_type": "string",
            "mapping": _keyword(),
        }
    },
    {
        "integers_as_doubles": {
            "match_mapping_type": "long",
            "mapping": {"type": "double"},
        }
    },
]

_LOADER_FIELDS: dict[str, Any] = {
    "properties": {
        "topic": _keyword(),
        "partition": {"type": "integer"},
        "offset": {"type": "long"},
        "key": _keyword(),
        "indexed_at": _DATE,
    }
}


# Hints for Trino's OpenSearch connector, which reads ``_meta.trino`` of a mapping: fields
# that hold lists of objects are arrays (a mapping cannot say so), and the open ``payload`` is
# read as raw JSON text, since its fields differ by event type and from one day's index to
# the next (the connector takes a table's columns from one index of an alias).
_EVENTS_TRINO_META = {"payload": {"asRawJson": True}, "enrichment": {"money": {"isArray": True}}}
_DEADLETTERS_TRINO_META = {"errors": {"isArray": True}}


def events_mapping() -> dict[str, Any]:
    """Return the explicit mapping of the events indices."""
    return {
        "_meta": {"trino": _EVENTS_TRINO_META},
        # Top level: a field the contract does not know is kept in _source, not indexed.
        "dynamic": "false",
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": [
            {
                "scores_as_floats": {
                    "path_match": "enrichment.scores.*",
                    "mapping": {"type": "float"},
                }
            },
            *_OPEN_OBJECT_TEMPLATES,
        ],
        "properties": {
            "event_id": _keyword(),
            "event_type": _keyword(),
            "event_timestamp": _DATE,
            "source": _keyword(),
            # Typed by its schema; open so each event type's fields are queryable.
            "payload": {"type": "object", "dynamic": "true"},
            "context": {
                "type": "object",
                "dynamic": "true",
                "properties": {
                    "user_id": _keyword(),
                    "session_id": _keyword(),
                    "device_id": _keyword(),
                },
            },
            "collector": {
                "properties": {
                    "received_at": _DATE,
                    "collector_id": _keyword(),
                    "request_id": _keyword(),
                    "producer": _keyword(),
                    "client_ip": {"type": "ip", "ignore_malformed": True},
                    "user_agent": {
                        "type": "text",
                        "fields": {"raw": _keyword()},
                    },
                    "path": _keyword(),
                }
            },
            "enrichment": {
                "properties": {
                    "user_agent": {
                        "properties": {
                            "browser_family": _keyword(),
                            "browser_version": _keyword(),
                            "os_family": _keyword(),
                            "os_version": _keyword(),
                            "device_family": _keyword(),
                            "device_class": _keyword(),
                            "is_bot": {"type": "boolean"},
                        }
                    },
                    "geo": {
                        "properties": {
                            "country_code": _keyword(),
                            "country_name": _keyword(),
                            "city": _keyword(),
                            "latitude": {"type": "double"},
                            "longitude": {"type": "double"},
                            "source": _keyword(),
                        }
                    },
                    "money": {
                        "properties": {
                            "field": _keyword(),
                            "amount": {"type": "double"},
                            "currency": _keyword(),
                            "amount_eur": {"type": "double"},
                            "rates_version": _keyword(),
                        }
                    },
                    "scores": {"type": "object", "dynamic": "true"},
                    "model_version": _keyword(),
                }
            },
            "lineage": {
                "properties": {
                    "enricher_version": _keyword(),
                    "schema_version": _keyword(),
                    "model_version": _keyword(),
                    "source_topic": _keyword(),
                    "source_partition": {"type": "integer"},
                    "source_offset": {"type": "long"},
                    "enriched_at": _DATE,
                    "pseudonym_key_version": _keyword(),
                }
            },
            # Added by the loader: enrichment.geo's latitude/longitude as one point.
            "location": {"type": "geo_point"},
            "loader": _LOADER_FIELDS,
        },
    }


def deadletters_mapping() -> dict[str, Any]:
    """Return the explicit mapping of the dead-letter indices."""
    return {
        "_meta": {"trino": _DEADLETTERS_TRINO_META},
        "dynamic": "false",
        "date_detection": False,
        "numeric_detection": False,
        "properties": {
            "failure_schema": _keyword(),
            "failure_type": _keyword(),
            "stage": _keyword(),
            "errors": {
                "properties": {
                    "field": _keyword(),
                    "reason": {"type": "text", "fields": {"raw": _keyword()}},
                }
            },
            # Kept in _source for inspection and replay, never indexed: it may be anything.
            "original": {"type": "object", "enabled": False},
            "event_id": _keyword(),
            "event_type": _keyword(),
            "failed_at": _DATE,
            "received_at": _DATE,
            # Stage metadata varies by stage: kept, not indexed, except the known keys.
            "metadata": {
                "type": "object",
                "dynamic": "false",
                "properties": {
                    "producer": _keyword(),
                    "request_id": _keyword(),
                    "collector_id": _keyword(),
                },
            },
            "replay_count": {"type": "integer"},
            "loader": _LOADER_FIELDS,
        },
    }


@dataclass(frozen=True)
class IndexLayout:
    """Where the loader writes: the prefix and the settings of its daily indices."""

    prefix: str
    shards: int = 1
    replicas: int = 0
    total_fields_limit: int = 2000
    depth_limit: int = 10
    refresh_interval: str = "500ms"  # see RealtimeLoaderOptions.index_refresh_interval

    def events_index(self, day: date) -> str:
        return index_name(self.prefix, EVENTS, day)

    def deadletters_index(self, day: date) -> str:
        return index_name(self.prefix, DEADLETTERS, day)

    def templates(self) -> dict[str, dict[str, Any]]:
        """Return the composable index templates by name."""
        settings = {
            "number_of_shards": self.shards,
            "number_of_replicas": self.replicas,
            # Bounds the open payload/context objects: a runaway producer cannot explode the
            # mapping; documents beyond the limit are rejected to the loader dead letters.
            "mapping.total_fields.limit": self.total_fields_limit,
            "mapping.depth.limit": self.depth_limit,
            # Explicit, so it holds whether or not anyone searches: left unset, a shard nobody
            # searched for 30 s stops refreshing (``index.search.idle.after``) and the next
            # search waits for a refresh first.
            "refresh_interval": self.refresh_interval,
        }
        mappings = {EVENTS: events_mapping(), DEADLETTERS: deadletters_mapping()}
        return {
            # A template is named like its family's alias.
            f"{self.prefix}-{family}": {
                "index_patterns": [index_pattern(self.prefix, family)],
                "priority": TEMPLATE_PRIORITY,
                "template": {
                    "settings": {"index": settings},
                    "mappings": mappings[family],
                    "aliases": {alias_name(self.prefix, family): {}},
                },
                "_meta": {"owner": "tributary realtime loader"},
            }
            for family in FAMILIES
        }


def ensure_templates(store: SearchStore, layout: IndexLayout) -> None:
    """Put (create or update) the loader's index templates.

    Existing daily indices keep their mapping, but join their family's alias and get the
    template's ``_meta`` (both can change on a live index), so indices made before either
    existed are read like new ones.
    """
    for name, body in layout.templates().items():
        store.put_template(name, body)
        template = body["template"]
        pattern = body["index_patterns"][0]
        if not store.indices(pattern):
            continue
        store.put_meta(pattern, template["mappings"]["_meta"])
        for alias in template["aliases"]:
            store.put_alias(pattern, alias)


def ensure_alias(store: SearchStore, layout: IndexLayout, family: str, day: date) -> bool:
    """Make sure ``family``'s alias exists, so readers can name it before any document came.

    When the family has no index yet, its templates are put (unless the loader's are there
    already) and the index of ``day`` is created from them, empty. Return True if it was.
    """
    alias = alias_name(layout.prefix, family)
    if store.alias_exists(alias):
        return False
    for name, body in layout.templates().items():
        if not store.template_exists(name):
            store.put_template(name, body)
    store.create_index(index_name(layout.prefix, family, day))
    # An index made before the alias existed (by an older loader) joins it here.
    store.put_alias(index_pattern(layout.prefix, family), alias)
    return True


def provision_indices(store: SearchStore, layout: IndexLayout, day: date) -> list[str]:
    """Make sure every family's alias exists (:func:`ensure_alias`); return the indices made.

    Templates already put (by a loader, with its own index settings) are left as they are.
    """
    return [
        index_name(layout.prefix, family, day)
        for family in FAMILIES
        if ensure_alias(store, layout, family, day)
    ]


def apply_retention(
    store: SearchStore,
    prefix: str,
    retention_days: dict[str, int],
    today: date,
) -> list[str]:
    """Delete the daily indices older than their family's retention; return their names.

    ``retention_days`` maps a family (``events``, ``deadletters``) to its days: an index of
    day ``d`` is kept while ``d >= today - days``. Indices that do not follow the naming
    (another prefix, no date) are never touched.
    """
    deleted: list[str] = []
    for family, days in retention_days.items():
        cutoff = today - timedelta(days=days)
        for name in store.indices(index_pattern(prefix, family), closed=True):
            day = index_day(prefix, family, name)
            if day is None or day >= cutoff:
                continue
            if not store.delete_index(name):
                continue
            log.info("retention: deleted %s (older than %d days)", name, days)
            deleted.append(name)
    return deleted
