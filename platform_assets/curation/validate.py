"""Validated events: the envelope's pandera schema, per-event-type payload checks, quarantine.

``validate_events`` checks one partition of raw-zone rows and splits it into the rows that
pass (``valid``, the raw columns unchanged) and the rows that fail (``quarantine``: the raw
columns plus ``quarantine_reasons``, a list of ``{column, check, reason}``). No row is dropped:
``raw = valid + quarantined`` always holds (``checks.check_validation_reconciles``).

Two pandera (polars backend) schemas do the work:

- ``ENVELOPE_SCHEMA``: every column of ``EVENT_SCHEMA`` with its dtype and nullability, plus
  value checks (UUID event id, registered event type, JSON-object payload, collector path,
  device class, country code, coordinates, non-negative EUR amounts, Kafka coordinates, event
  time not after receipt beyond the allowed clock skew, page views with an ``http(s)`` URL);
- ``payloads.PAYLOAD_RULES``: one per registered event type (and version), derived from its
  JSON Schema in ``contract/schemas`` (required properties, types, enums, bounds), run on
  the decoded payload of that type's rows only. A payload that does not decode with its
  schema's types is quarantined as ``payload.decodes``. Purchases must also carry the EUR
  amount of their total (``money`` entry ``/total``), or revenue would be under-counted.

A partition whose *columns* are wrong (missing column, wrong dtype) is not a row problem:
``SchemaContractError`` is raised and nothing is quarantined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandera.errors
import pandera.polars as pa
import polars as pl

from contract.raw_zone import EVENT_SCHEMA
from contract.registry import SCHEMAS_DIR
from platform_assets.curation.payloads import PAYLOAD_RULES
from platform_assets.curation.raw import RAW_SCHEMA, collect, decode_json, filter_consuming

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
IGLU_PATTERN = r"^iglu:[a-zA-Z0-9_.-]+/[a-zA-Z0-9_-]+/jsonschema/[1-9][0-9]*-[0-9]+-[0-9]+$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
DEVICE_CLASSES = ("desktop", "mobile", "tablet", "bot", "other")
COLLECTOR_PATHS = ("rest", "grpc")
MAX_FUTURE_SKEW = timedelta(minutes=10)

REASONS_TYPE = pl.List(pl.Struct({"column": pl.String, "check": pl.String, "reason": pl.String}))
QUARANTINE_SCHEMA = pl.Schema({**RAW_SCHEMA, "quarantine_reasons": REASONS_TYPE})
_ROW = "_row"


class SchemaContractError(ValueError):
    """The partition's columns break the raw zone's contract (missing column, wrong dtype)."""


def registered_event_types() -> list[str]:
    """The Iglu URIs of every schema in ``contract/schemas``."""
    return sorted(
        f"iglu:{p.parts[-4]}/{p.parts[-3]}/jsonschema/{p.stem}"
        for p in SCHEMAS_DIR.glob("*/*/jsonschema/*.json")
    )


# -- check helpers -------------------------------------------------------------------------

_REASONS: dict[str, str] = {
    "not_nullable": "must not be null",
    "decodes": "does not decode with the event type's field types",
}
"""Why a row fails a check, by check name (the envelope's and pandera's own)."""
_PAYLOAD_REASONS: dict[str, str] = {
    f"payload.{name}": reason
    for rules in PAYLOAD_RULES.values()
    for name, reason in rules.reasons.items()
}
"""Why a payload fails a derived check, by ``payload.<property>.<check>``."""


def _named(check: pa.Check, name: str, reason: str) -> pa.Check:
    """Give a check a stable name (what the quarantine and metadata show) and a reason."""
    _REASONS[name] = reason
    check.name = name
    check.error = name
    return check


def _rowwise(name: str, reason: str, expr: Callable[[str], pl.Expr]) -> pa.Check:
    """A column check from a polars expression; ``expr(column)`` is true where the row passes."""

    def fn(data: Any) -> pl.LazyFrame:
        frame: pl.LazyFrame = data.lazyframe
        return frame.select(expr(data.key).fill_null(True))

    return _named(pa.Check(fn), name, reason)


def _uuid() -> pa.Check:
    return _named(pa.Check.str_matches(UUID_PATTERN), "uuid", "is not a UUID")


def _non_negative() -> pa.Check:
    return _named(pa.Check.ge(0), "non_negative", "must not be negative")


# -- the envelope --------------------------------------------------------------------------


def _envelope_checks() -> dict[str, list[pa.Check]]:
    known = registered_event_types()
    page_view = pl.col("event_name") == "page_view"
    return {
        "event_id": [_uuid()],
        "event_type": [
            _named(pa.Check.str_matches(IGLU_PATTERN), "iglu_uri", "is not an Iglu URI"),
            _named(pa.Check.isin(known), "registered", "names no registered schema"),
        ],
        "event_timestamp": [
            _rowwise(
                "not_after_receipt",
                f"lies more than {MAX_FUTURE_SKEW} after collector_received_at",
                lambda c: pl.col(c) <= pl.col("collector_received_at") + MAX_FUTURE_SKEW,
            )
        ],
        "source": [_named(pa.Check.str_length(1, 256), "length_1_256", "must be 1-256 chars")],
        "payload": [
            _rowwise(
                "json_object", "is not a JSON object", lambda c: pl.col(c).str.starts_with("{")
            ),
            _rowwise(
                "page_url",
                "a page_view needs an http(s) page_url",
                lambda c: ~page_view | pl.col(c).str.contains(r'"page_url"\s*:\s*"https?://'),
            ),
        ],
        "context": [
            _rowwise(
                "json_object", "is not a JSON object", lambda c: pl.col(c).str.starts_with("{")
            )
        ],
        "collector_path": [
            _named(pa.Check.isin(COLLECTOR_PATHS), "accepted_values", "is not rest or grpc")
        ],
        "ua_device_class": [
            _named(
                pa.Check.isin(DEVICE_CLASSES),
                "device_class",
                f"is not one of {', '.join(DEVICE_CLASSES)}",
            )
        ],
        "geo_country_code": [
            _named(
                pa.Check.str_matches(r"^[A-Z]{2}$"),
                "iso_3166",
                "is not an ISO 3166-1 alpha-2 code",
            )
        ],
        "geo_latitude": [_named(pa.Check.in_range(-90, 90), "latitude", "is not in [-90, 90]")],
        "geo_longitude": [
            _named(pa.Check.in_range(-180, 180), "longitude", "is not in [-180, 180]")
        ],
        "money": [
            _rowwise(
                "eur_amounts",
                "has a negative EUR amount or a bad currency code",
                lambda c: (
                    pl.col(c)
                    .list.eval(
                        (pl.element().struct.field("amount_eur") >= 0)
                        & pl.element().struct.field("currency").str.contains(CURRENCY_PATTERN)
                    )
                    .list.all()
                ),
            ),
            _rowwise(
                "purchase_total_eur",
                "a purchase needs the EUR amount of its /total",
                lambda c: (
                    (pl.col("event_name") != "purchase")
                    | pl.col(c).list.eval(pl.element().struct.field("field") == "/total").list.any()
                ),
            ),
        ],
        "kafka_partition": [_non_negative()],
        "kafka_offset": [_non_negative()],
        "lineage_source_partition": [_non_negative()],
        "lineage_source_offset": [_non_negative()],
    }


def _envelope_schema() -> pa.DataFrameSchema:
    checks = _envelope_checks()
    columns = {}
    for f in EVENT_SCHEMA:
        dtype = RAW_SCHEMA[f.name]
        # pandera has no Map dtype; ``_check_columns`` checks ``scores`` itself.
        columns[f.name] = pa.Column(
            None if isinstance(dtype, pl.Map) else dtype,
            checks=checks.get(f.name, []),
            nullable=f.nullable,
        )
    return pa.DataFrameSchema(columns, strict=False, name="raw_events/1")


ENVELOPE_SCHEMA = _envelope_schema()
"""The enriched envelope: every raw-zone column, its dtype, nullability and value checks."""


# -- validation ----------------------------------------------------------------------------


@dataclass
class ValidationStats:
    """Figures for the asset's metadata."""

    raw_rows: int
    valid_rows: int
    quarantined_rows: int
    failures_by_check: dict[str, int] = field(default_factory=dict)
    """Failed checks as ``column.check`` -> rows (a row failing two checks counts twice)."""
    quarantined_by_event_type: dict[str, int] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "raw_rows": self.raw_rows,
            "valid_rows": self.valid_rows,
            "quarantined_rows": self.quarantined_rows,
            "failures_by_check": dict(self.failures_by_check),
            "quarantined_by_event_type": dict(self.quarantined_by_event_type),
        }


@dataclass
class ValidationResult:
    valid: pl.DataFrame
    """The rows that passed, with the raw columns unchanged."""
    quarantine: pl.DataFrame
    """The rows that failed: raw columns plus ``quarantine_reasons`` (``QUARANTINE_SCHEMA``)."""
    stats: ValidationStats


_FAILURES = pl.Schema({_ROW: pl.UInt32, "column": pl.String, "check": pl.String})


def _check_columns(frame: pl.DataFrame) -> None:
    missing = [c for c in RAW_SCHEMA if c not in frame.columns]
    wrong = {
        c: f"{frame.schema[c]} (expected {RAW_SCHEMA[c]})"
        for c in RAW_SCHEMA
        if c in frame.columns and frame.schema[c] != RAW_SCHEMA[c]
    }
    if missing or wrong:
        raise SchemaContractError(f"missing columns {missing}, wrong dtypes {wrong}")


def _failures(schema: pa.DataFrameSchema, frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """Row-level failures of ``frame`` under ``schema``: ``_row`` (from ``rows``), column, check."""
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        unlocated = cases.filter(pl.col("index").is_null())
        if unlocated.height:
            raise SchemaContractError(
                f"{schema.name or 'payload'}: {unlocated.select('column', 'check').rows()}"
            ) from exc
        return pl.DataFrame(
            {
                _ROW: rows.gather(cases.get_column("index").cast(pl.UInt32)),
                "column": cases.get_column("column").fill_null("*"),
                "check": cases.get_column("check"),
            },
            schema=_FAILURES,
        )
    return pl.DataFrame(schema=_FAILURES)


def _mask(n: int, positions: list[int]) -> pl.Series:
    """A boolean Series of length ``n``, true at ``positions``."""
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return pl.Series(mask)


def _payload_failures(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """Failures of the payload rules of each row's event type (``payloads.PAYLOAD_RULES``)."""
    out = []
    types = frame.get_column("event_type")
    for uri, rules in PAYLOAD_RULES.items():
        mask = types == uri
        if not mask.any():
            continue
        part = frame.select(_ROW, "payload").filter(mask)
        decoded, bad = decode_json(part.get_column("payload"), rules.fields)
        fields = decoded.struct.unnest()
        rows = part.get_column(_ROW)
        if bad:
            out.append(
                pl.DataFrame(
                    {_ROW: rows.gather(bad), "column": "payload", "check": "decodes"},
                    schema=_FAILURES,
                )
            )
            keep = ~_mask(len(part), bad)
            fields, rows = fields.filter(keep), rows.filter(keep)
        failures = _failures(rules.schema, fields, rows)
        out.append(failures.with_columns(pl.format("payload.{}", "column").alias("column")))
    return out


def validate_events(raw: pl.DataFrame | pl.LazyFrame, *, consume: bool = False) -> ValidationResult:
    """Split one partition's raw rows into valid and quarantined rows, with figures.

    Args:
        raw: raw-zone rows (``RAW_SCHEMA``; extra columns are ignored). A ``LazyFrame`` is
            collected here and its rows are released while ``valid`` is built.
        consume: also release a ``DataFrame`` given as ``raw`` (it is left empty), so that
            the partition is never held twice.

    Raises:
        SchemaContractError: a column is missing or has the wrong dtype.
    """
    frame = collect(raw) if isinstance(raw, pl.LazyFrame) else raw
    _check_columns(frame)
    frame = frame.select(RAW_SCHEMA.names()).with_row_index(_ROW)  # our own frame object
    if consume and isinstance(raw, pl.DataFrame):
        for name in list(raw.columns):
            raw.drop_in_place(name)
    del raw
    rows = frame.get_column(_ROW)
    failures = pl.concat(
        [_failures(ENVELOPE_SCHEMA, frame.drop(_ROW), rows), *_payload_failures(frame)]
    )
    failures = failures.unique(maintain_order=True)
    reasons = failures.with_columns(
        reason=pl.format("{}.{}", "column", "check")
        .replace_strict(_PAYLOAD_REASONS, default=None)
        .fill_null(pl.col("check").replace_strict(_REASONS, default=pl.col("check")))
    )
    by_row = reasons.group_by(_ROW).agg(
        quarantine_reasons=pl.struct("column", "check", "reason").sort_by("column", "check")
    )
    is_bad = _mask(frame.height, by_row.get_column(_ROW).to_list())
    quarantine = (
        frame.filter(is_bad)
        .join(by_row, on=_ROW, how="left", maintain_order="left")
        .drop(_ROW)
        .cast({"quarantine_reasons": REASONS_TYPE})
    )
    raw_rows = frame.height
    valid = filter_consuming(frame, ~is_bad).drop(_ROW)
    by_check = Counter(
        dict(
            reasons.group_by(pl.format("{}.{}", "column", "check").alias("k"))
            .len()
            .sort("k")
            .iter_rows()
        )
    )
    by_type = dict(quarantine.group_by("event_type").len().sort("event_type").iter_rows())
    stats = ValidationStats(
        raw_rows=raw_rows,
        valid_rows=valid.height,
        quarantined_rows=quarantine.height,
        failures_by_check=dict(sorted(by_check.items())),
        quarantined_by_event_type=by_type,
    )
    return ValidationResult(valid=valid, quarantine=quarantine, stats=stats)


def quarantine_counts_by_reason(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Quarantined rows per ``column.check`` (a row with two reasons counts under both)."""
    reason = pl.format(
        "{}.{}", pl.element().struct.field("column"), pl.element().struct.field("check")
    )
    return (
        quarantine.select(pl.col("quarantine_reasons").list.eval(reason).list.unique())
        .explode("quarantine_reasons")
        .group_by(reason=pl.col("quarantine_reasons"))
        .len("rows")
        .sort("reason")
    )
