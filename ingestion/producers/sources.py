"""Where a producer's events come from besides the simulator: replays of files.

The simulated world's generators are ``simulator.events``.

A source is an iterable of events in the envelope format (``docs/event-contract.md``):
dicts, or ``bytes`` for an event that is deliberately not JSON at all (the emitter sends
those bytes as they are). ``encode`` turns either into the bytes that are spooled and sent.

``FileSource`` replays JSON Lines, CSV or Parquet rows, mapped onto the envelope by a
``FieldMapping``. For example, with a CSV file::

    order_ref,ts,sku,qty,unit_price,customer
    A-1,2026-11-28 10:15:00,SKU-1001,2,89.9,c-42

and the mapping (a JSON file for ``tributary produce file orders.csv --mapping m.json``)::

    {
      "event_type": "iglu:com.tributary.shop/add_to_cart/jsonschema/1-0-0",
      "source": "orders-export",
      "timestamp": "ts",
      "timezone": "Europe/Berlin",
      "payload": {"product_id": "sku", "quantity": "qty", "price": "unit_price"},
      "constants": {"currency": "EUR"},
      "context": {"user_id": "customer"},
      "drop": ["order_ref"],
      "casts": {"qty": "int", "unit_price": "float"}
    }

each row becomes::

    {"event_id": "<uuid5 of the row>", "event_type": "iglu:...add_to_cart/...1-0-0",
     "event_timestamp": "2026-11-28T10:15:00.000+01:00", "source": "orders-export",
     "payload": {"product_id": "SKU-1001", "quantity": 2, "price": 89.9, "currency": "EUR"},
     "context": {"user_id": "c-42"}}

``payload`` and ``context`` are either a list of column names (kept as they are) or a
``{field: column}`` dict; ``payload`` may also be ``"*"``: every column not used elsewhere
and not in ``drop``. Without an ``event_id`` column the id is a uuid5 of the row's content,
so replaying the file re-sends the same ids (identical rows therefore share one id).
"""

from __future__ import annotations

import base64
import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.envelope import EventDict as Event
from contract.envelope import SourceItem, rfc3339


def encode(item: SourceItem) -> bytes:
    """The bytes of an event as spooled and sent: compact JSON, or raw bytes as they are."""
    if isinstance(item, bytes):
        return item
    return orjson.dumps(item)


# -- files ---------------------------------------------------------------------------------

FILE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://tributary.example/producers/file")
Cast = Literal["str", "int", "float", "bool", "json"]
FileFormat = Literal["jsonl", "csv", "parquet"]
_SUFFIXES: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class FieldMapping(BaseModel):
    """How the columns of a file map onto the envelope (see the module's example)."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(description="Event type URI of every row.")
    source: str = Field(min_length=1, max_length=256, description="The envelope's source.")
    timestamp: str = Field(description="Column holding the event time.")
    timezone: str = Field("UTC", description="IANA zone of naive timestamps.")
    timestamp_unit: Literal["s", "ms"] = Field("s", description="Unit of numeric timestamps.")
    event_id: str | None = Field(None, description="Column holding the id; else a uuid5.")
    payload: list[str] | dict[str, str] | Literal["*"] = Field(
        "*", description="Columns, {field: column}, or '*' for every remaining column."
    )
    context: list[str] | dict[str, str] = Field(default_factory=list)
    constants: dict[str, Any] = Field(
        default_factory=dict, description="Fixed payload fields added to every event."
    )
    drop: list[str] = Field(default_factory=list, description="Columns never sent.")
    casts: dict[str, Cast] = Field(
        default_factory=dict, description="Convert a column's text (CSV) to this type."
    )
    keep_nulls: bool = Field(False, description="Keep empty/null values instead of omitting.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}'") from exc
        return value

    def to_event(self, row: dict[str, Any], where: str) -> Event:
        """Map one row onto the envelope; ``where`` names the row in error messages."""
        row = {k: self._cast(k, v, where) for k, v in row.items()}
        used = {self.timestamp, *self.drop}
        if self.event_id:
            used.add(self.event_id)
        context = _pick(row, self.context)
        used.update(self.context.values() if isinstance(self.context, dict) else self.context)
        if self.payload == "*":
            payload = {k: v for k, v in row.items() if k not in used}
        else:
            payload = _pick(row, self.payload)
        payload.update(self.constants)
        if not self.keep_nulls:
            payload = {k: v for k, v in payload.items() if v is not None}
            context = {k: v for k, v in context.items() if v is not None}

        if self.timestamp not in row or row[self.timestamp] is None:
            raise ValueError(f"{where}: no value in the timestamp column '{self.timestamp}'")
        ts = rfc3339(self._timestamp(row[self.timestamp], where))
        if self.event_id and row.get(self.event_id) not in (None, ""):
            event_id = str(row[self.event_id])
        else:
            name = orjson.dumps(
                [self.event_type, self.source, row], option=orjson.OPT_SORT_KEYS, default=_json
            )
            event_id = str(uuid.uuid5(FILE_NAMESPACE, name.decode()))
        event: Event = {
            "event_id": event_id,
            "event_type": self.event_type,
            "event_timestamp": ts,
            "source": self.source,
            "payload": _jsonable(payload),
        }
        if context:
            event["context"] = _jsonable(context)
        return event

    def _cast(self, column: str, value: Any, where: str) -> Any:
        if isinstance(value, str) and value == "":
            return None
        cast = self.casts.get(column)
        if cast is None or value is None or not isinstance(value, str):
            return value
        try:
            if cast == "int":
                return int(value)
            if cast == "float":
                return float(value)
            if cast == "bool":
                if value.lower() in ("true", "1", "yes", "y", "t"):
                    return True
                if value.lower() in ("false", "0", "no", "n", "f"):
                    return False
                raise ValueError(value)
            if cast == "json":
                return orjson.loads(value)
        except ValueError as exc:
            raise ValueError(f"{where}: column '{column}' is not {cast}: {value!r}") from exc
        return value

    def _timestamp(self, value: Any, where: str) -> datetime:
        zone = ZoneInfo(self.timezone)
        if isinstance(value, datetime):
            ts = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if self.timestamp_unit == "ms" else value
            return datetime.fromtimestamp(seconds, UTC)
        elif isinstance(value, str):
            try:
                ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"{where}: '{value}' is not an ISO 8601 timestamp") from exc
        else:
            raise ValueError(f"{where}: '{value!r}' is not a timestamp")
        return ts if ts.tzinfo is not None else ts.replace(tzinfo=zone)


def _pick(row: dict[str, Any], columns: list[str] | dict[str, str]) -> Event:
    pairs = columns.items() if isinstance(columns, dict) else ((c, c) for c in columns)
    return {name: row.get(column) for name, column in pairs}


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _jsonable(data: Event) -> Event:
    """Convert values of Parquet columns (datetimes, decimals, bytes) to JSON types."""
    out: Event = orjson.loads(orjson.dumps(data, default=_json))
    return out


class FileSource:
    """Replay a JSON Lines, CSV or Parquet file as events, through a ``FieldMapping``.

    Args:
        path: The file; its format comes from the suffix unless ``format`` is given.
        mapping: How rows become events.
        format: ``jsonl``, ``csv`` or ``parquet``.
    """

    def __init__(
        self, path: Path | str, mapping: FieldMapping, format: FileFormat | None = None
    ) -> None:
        self.path = Path(path)
        self.mapping = mapping
        if format is None:
            suffix = self.path.suffix.lower()
            if suffix not in _SUFFIXES:
                raise ValueError(
                    f"cannot tell the format of {self.path.name}; name it .jsonl, .csv or "
                    ".parquet, or pass the format"
                )
            format = _SUFFIXES[suffix]
        self.format: FileFormat = format

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(where, row)`` pairs, ``where`` naming the row for error messages."""
        if self.format == "jsonl":
            with self.path.open("rb") as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    where = f"{self.path.name}:{number}"
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        raise ValueError(f"{where}: not JSON: {exc}") from exc
                    if not isinstance(row, dict):
                        raise ValueError(f"{where}: not a JSON object")
                    yield where, row
        elif self.format == "csv":
            with self.path.open(newline="", encoding="utf-8-sig") as f:
                for number, record in enumerate(csv.DictReader(f), 2):
                    yield f"{self.path.name}:{number}", dict(record)
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(self.path)
            number = 0
            for batch in parquet.iter_batches(batch_size=4096):
                for record in batch.to_pylist():
                    number += 1
                    yield f"{self.path.name} row {number}", record

    def __iter__(self) -> Iterator[Event]:
        for where, row in self.rows():
            yield self.mapping.to_event(row, where)
