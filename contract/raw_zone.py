"""The raw zone's layout: the Arrow schema of its Parquet files, object names and manifests.

One data object holds *every* event of one Kafka partition with one event date and hour whose
offsets lie in ``[first_offset, last_offset]``::

    <prefix>event_date=2026-11-28/event_hour=09/<topic>+<partition>+<first>-<last>.parquet

Its name derives from the topic, partition and offset range only, so a replay that re-forms
the same batch rewrites the same object instead of adding a duplicate. After every data object
its manifest (:class:`Manifest`, one JSON document that the batch loader writes and the
raw-zone sensor and the reconciler read) is written, keyed by the time it was written so that
a reader lists new manifests with ``StartAfter=<cursor>`` (:func:`manifests_since`)::

    <prefix>_manifests/flushed_date=2026-11-28/20261128T091502.123456Z_<object name>.json

Before a data object is uploaded, the partition's plan marker records its range::

    <prefix>_state/<topic>+<partition>.json

Folders starting with ``_`` are ignored by Hive-style readers (pyarrow, Trino, Spark).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import pyarrow as pa
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from contract.records import EnrichedEvent

if TYPE_CHECKING:
    import polars as pl

_IGLU = re.compile(r"^iglu:(?P<vendor>[^/]+)/(?P<name>[^/]+)/jsonschema/(?P<version>[^/]+)$")

UTC_US = pa.timestamp("us", tz="UTC")

MONEY_TYPE = pa.struct(
    [
        pa.field("field", pa.string(), nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("amount_eur", pa.float64(), nullable=False),
        pa.field("rates_version", pa.string(), nullable=False),
    ]
)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("event_vendor", pa.string()),
        pa.field("event_name", pa.string()),
        pa.field("event_version", pa.string()),
        pa.field("event_timestamp", UTC_US, nullable=False),
        pa.field("event_timestamp_raw", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),
        pa.field("context", pa.string()),
        pa.field("collector_received_at", UTC_US, nullable=False),
        pa.field("collector_id", pa.string(), nullable=False),
        pa.field("collector_request_id", pa.string(), nullable=False),
        pa.field("collector_producer", pa.string(), nullable=False),
        pa.field("collector_client_ip", pa.string()),
        pa.field("collector_user_agent", pa.string()),
        pa.field("collector_path", pa.string(), nullable=False),
        pa.field("ua_browser_family", pa.string()),
        pa.field("ua_browser_version", pa.string()),
        pa.field("ua_os_family", pa.string()),
        pa.field("ua_os_version", pa.string()),
        pa.field("ua_device_family", pa.string()),
        pa.field("ua_device_class", pa.string()),
        pa.field("ua_is_bot", pa.bool_()),
        pa.field("geo_country_code", pa.string()),
        pa.field("geo_country_name", pa.string()),
        pa.field("geo_city", pa.string()),
        pa.field("geo_latitude", pa.float64()),
        pa.field("geo_longitude", pa.float64()),
        pa.field("geo_source", pa.string()),
        pa.field("money", pa.list_(pa.field("item", MONEY_TYPE, nullable=False)), nullable=False),
        pa.field("scores", pa.map_(pa.string(), pa.float64()), nullable=False),
        pa.field("model_version", pa.string()),
        pa.field("lineage_enricher_version", pa.string(), nullable=False),
        pa.field("lineage_schema_version", pa.string(), nullable=False),
        pa.field("lineage_model_version", pa.string()),
        pa.field("lineage_source_topic", pa.string(), nullable=False),
        pa.field("lineage_source_partition", pa.int32(), nullable=False),
        pa.field("lineage_source_offset", pa.int64(), nullable=False),
        pa.field("lineage_enriched_at", UTC_US, nullable=False),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("kafka_timestamp", UTC_US),
    ],
    metadata={"tributary.schema": "raw_events/1"},
)
"""The explicit schema of every raw-zone Parquet file (partition columns live in the key)."""

RAW_SCHEMA_VERSION = EVENT_SCHEMA.metadata[b"tributary.schema"].decode()


def parquet_bytes(table: pa.Table) -> bytes:
    """A data object's bytes: ``table`` (under ``EVENT_SCHEMA``) as zstd Parquet.

    The batch loader writes objects so, and so does an erasure that rewrites one.
    """
    import pyarrow.parquet as pq

    out = pa.BufferOutputStream()
    pq.write_table(table.cast(EVENT_SCHEMA), out, compression="zstd")
    return bytes(out.getvalue())


def polars_schema() -> pl.Schema:
    """``EVENT_SCHEMA`` as polars sees it (``scores`` a ``Map``), in the file's column order."""
    import polars as pl  # only the lake's readers and generators need polars

    return pl.Schema(pl.from_arrow(EVENT_SCHEMA.empty_table()).schema)  # type: ignore[union-attr]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive timestamp {value.isoformat()}")
    return value.astimezone(UTC)


def _json(value: Any) -> str:
    """Compact JSON with sorted keys (orjson; ``json`` for what it refuses, e.g. huge ints)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def flatten(
    event: EnrichedEvent,
    topic: str,
    partition: int,
    offset: int,
    kafka_timestamp_ms: int | None,
) -> dict[str, Any]:
    """Return the row of ``event`` under ``EVENT_SCHEMA``."""
    ts = _utc(datetime.fromisoformat(event.event_timestamp))
    iglu = _IGLU.match(event.event_type)
    ua, geo, c, lin = (
        event.enrichment.user_agent,
        event.enrichment.geo,
        event.collector,
        event.lineage,
    )
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_vendor": iglu["vendor"] if iglu else None,
        "event_name": iglu["name"] if iglu else None,
        "event_version": iglu["version"] if iglu else None,
        "event_timestamp": ts,
        "event_timestamp_raw": event.event_timestamp,
        "source": event.source,
        "payload": _json(event.payload),
        "context": None if event.context is None else _json(event.context),
        "collector_received_at": _utc(c.received_at),
        "collector_id": c.collector_id,
        "collector_request_id": c.request_id,
        "collector_producer": c.producer,
        "collector_client_ip": c.client_ip,
        "collector_user_agent": c.user_agent,
        "collector_path": c.path,
        "ua_browser_family": ua.browser_family if ua else None,
        "ua_browser_version": ua.browser_version if ua else None,
        "ua_os_family": ua.os_family if ua else None,
        "ua_os_version": ua.os_version if ua else None,
        "ua_device_family": ua.device_family if ua else None,
        "ua_device_class": ua.device_class if ua else None,
        "ua_is_bot": ua.is_bot if ua else None,
        "geo_country_code": geo.country_code if geo else None,
        "geo_country_name": geo.country_name if geo else None,
        "geo_city": geo.city if geo else None,
        "geo_latitude": geo.latitude if geo else None,
        "geo_longitude": geo.longitude if geo else None,
        "geo_source": geo.source if geo else None,
        "money": [m.model_dump() for m in event.enrichment.money],
        "scores": list(event.enrichment.scores.items()),
        "model_version": event.enrichment.model_version,
        "lineage_enricher_version": lin.enricher_version,
        "lineage_schema_version": lin.schema_version,
        "lineage_model_version": lin.model_version,
        "lineage_source_topic": lin.source_topic,
        "lineage_source_partition": lin.source_partition,
        "lineage_source_offset": lin.source_offset,
        "lineage_enriched_at": _utc(lin.enriched_at),
        "kafka_topic": topic,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": (
            None
            if kafka_timestamp_ms is None
            else datetime.fromtimestamp(kafka_timestamp_ms / 1000, tz=UTC)
        ),
    }


@dataclass(frozen=True, order=True)
class PartitionKey:
    """Where an event lands: its Kafka partition and the UTC date and hour of its timestamp."""

    topic: str
    partition: int
    event_date: date
    event_hour: int

    def folder(self, prefix: str) -> str:
        return f"{prefix}event_date={self.event_date.isoformat()}/event_hour={self.event_hour:02d}/"


def partition_key(topic: str, partition: int, event_timestamp: datetime) -> PartitionKey:
    ts = _utc(event_timestamp)
    return PartitionKey(topic, partition, ts.date(), ts.hour)


def object_name(topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    return f"{topic}+{partition}+{first_offset}-{last_offset}.parquet"


def object_key(prefix: str, key: PartitionKey, first_offset: int, last_offset: int) -> str:
    """The data object of ``key``'s events in ``[first_offset, last_offset]``."""
    return key.folder(prefix) + object_name(key.topic, key.partition, first_offset, last_offset)


_NAME = re.compile(r"^(?P<topic>.+)\+(?P<partition>\d+)\+(?P<first>\d+)-(?P<last>\d+)\.parquet$")


def parse_object_name(name: str) -> tuple[str, int, int, int]:
    """Return ``(topic, partition, first_offset, last_offset)`` of a data object's name."""
    m = _NAME.match(name.rsplit("/", 1)[-1])
    if not m:
        raise ValueError(f"not a raw-zone object name: {name}")
    return m["topic"], int(m["partition"]), int(m["first"]), int(m["last"])


def manifests_prefix(prefix: str) -> str:
    """The folder of every manifest of the raw zone under ``prefix``."""
    return f"{prefix}_manifests/"


def manifests_since(prefix: str, at: datetime) -> str:
    """A listing cursor (``StartAfter``) that sorts before every manifest written from ``at``."""
    at = _utc(at)
    return (
        f"{manifests_prefix(prefix)}flushed_date={at.date().isoformat()}/"
        f"{at.strftime('%Y%m%dT%H%M%S.%fZ')}"
    )


def manifest_key(prefix: str, data_key: str, written_at: datetime) -> str:
    """The manifest of ``data_key``; keys sort by the time they were written."""
    name = data_key.rsplit("/", 1)[-1].removesuffix(".parquet")
    return f"{manifests_since(prefix, written_at)}_{name}.json"


def marker_key(prefix: str, topic: str, partition: int) -> str:
    """The plan marker of one partition: the ranges flushed since its committed offset."""
    return f"{prefix}_state/{topic}+{partition}.json"


@dataclass(frozen=True)
class PlannedRange:
    """A data object that was (or was about to be) written: all of ``key``'s events in range."""

    key: PartitionKey
    first_offset: int
    last_offset: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event_date": self.key.event_date.isoformat(),
            "event_hour": self.key.event_hour,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
        }

    @classmethod
    def from_json(cls, topic: str, partition: int, data: dict[str, Any]) -> PlannedRange:
        key = PartitionKey(
            topic, partition, date.fromisoformat(data["event_date"]), int(data["event_hour"])
        )
        return cls(key, int(data["first_offset"]), int(data["last_offset"]))


class ManifestError(ValueError):
    """A manifest that is not JSON or not the manifest format; the message names its key."""


UtcTimestamp = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    # As the first loader wrote them (``datetime.isoformat``: ``+00:00``, not ``Z``), so that
    # old and new manifests read alike, by machines and by people comparing them.
    PlainSerializer(datetime.isoformat, return_type=str),
]


class Manifest(BaseModel):
    """The manifest of one data object: what a reader needs without opening the object.

    Its JSON (``to_json``/``from_json``) is the wire format of ``_manifests/``: the fields
    below under their JSON names (``bytes`` for ``size``, ``schema`` for ``schema_version``),
    times in ISO 8601 with their UTC offset. Fields a later writer adds are ignored.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    key: str = Field(description="The data object's key in the raw bucket.")
    rows: int = Field(ge=0)
    size: int = Field(alias="bytes", ge=0, description="The data object's size in bytes.")
    topic: str
    partition: int = Field(ge=0)
    first_offset: int = Field(ge=0)
    last_offset: int = Field(ge=0)
    event_date: date
    event_hour: int = Field(ge=0, le=23)
    min_event_time: UtcTimestamp
    max_event_time: UtcTimestamp
    written_at: UtcTimestamp
    schema_version: str = Field(
        alias="schema",
        default=RAW_SCHEMA_VERSION,
        description="The Arrow schema of the data object (``EVENT_SCHEMA``'s metadata).",
    )

    @model_validator(mode="after")
    def _ranges_in_order(self) -> Manifest:
        if self.first_offset > self.last_offset:
            raise ValueError(f"first_offset {self.first_offset} > last_offset {self.last_offset}")
        if self.min_event_time > self.max_event_time:
            raise ValueError("min_event_time is after max_event_time")
        return self

    @classmethod
    def of(
        cls,
        data_key: str,
        key: PartitionKey,
        rows: int,
        size: int,
        first_offset: int,
        last_offset: int,
        min_event_time: datetime,
        max_event_time: datetime,
        written_at: datetime,
    ) -> Manifest:
        """The manifest of ``data_key``, which holds ``key``'s events in the offset range."""
        return cls(
            key=data_key,
            rows=rows,
            size=size,
            topic=key.topic,
            partition=key.partition,
            first_offset=first_offset,
            last_offset=last_offset,
            event_date=key.event_date,
            event_hour=key.event_hour,
            min_event_time=min_event_time,
            max_event_time=max_event_time,
            written_at=written_at,
        )

    def to_json(self) -> bytes:
        """The manifest's JSON, as the batch loader writes it."""
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, where: str = "manifest") -> Manifest:
        """Read a manifest's JSON; ``where`` (its key) names it in the error.

        Raises:
            ManifestError: the text is not JSON, or a field is missing, of the wrong type or
                out of range.
        """
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ManifestError(f"{where} is not a raw-zone manifest: {problems}") from exc
