"""The raw zone as polars sees it: the schema of ``contract.raw_zone.EVENT_SCHEMA``.

The curation functions take the raw zone's rows as polars frames. ``RAW_SCHEMA`` is the polars
form of the Arrow schema the batch loader writes (``scores`` is a ``Map``), and
``scan_raw_zone`` reads one partition's Parquet objects lazily, without the Hive partition
columns (``event_date``/``event_hour`` live in the object keys, not in the files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import polars as pl

from contract.raw_zone import polars_schema

RAW_SCHEMA: pl.Schema = polars_schema()
"""Column names and polars dtypes of a raw-zone row, in the file's column order."""

RAW_COLUMNS: tuple[str, ...] = tuple(RAW_SCHEMA.names())

SHOP_VENDOR = "com.tributary.shop"


def scan_raw_zone(
    source: str | Path | Sequence[str | Path], storage_options: dict[str, Any] | None = None
) -> pl.LazyFrame:
    """Scan raw-zone Parquet objects (paths, globs or ``s3://`` URIs) as a ``LazyFrame``.

    Only the columns of ``RAW_SCHEMA`` are kept, so Hive partition columns never leak in.
    """
    paths: Any = [str(p) for p in source] if isinstance(source, list | tuple) else str(source)
    lf = pl.scan_parquet(paths, hive_partitioning=False, storage_options=storage_options)
    return lf.select(RAW_COLUMNS)


ENGINE: Final = "in-memory"
"""The polars engine of every ``collect``: polars 2.1's streaming engine intermittently panics
(``binview/mod.rs: assertion failed: i < self.len()``) on the session plan (string columns
after a semi join and a concat); the in-memory engine never did in the same loop."""


def collect(frame: pl.LazyFrame) -> pl.DataFrame:
    return frame.collect(engine=ENGINE)


def as_lazy(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def empty_raw() -> pl.DataFrame:
    return pl.DataFrame(schema=RAW_SCHEMA)


DECODE_BATCH = 200_000
"""Rows decoded at once: polars holds the parsed JSON of a whole batch (several times the
text's size), so decoding ten million contexts at once would cost gigabytes."""


def decode_json(values: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, list[int]]:
    """Decode JSON strings with ``dtype``; rows whose types do not fit are null.

    Decodes ``DECODE_BATCH`` rows at a time. ``str.json_decode`` fails as a whole when one
    value does not fit the types, so on failure the batch is bisected until the misfits are
    isolated. Returns the decoded Series and the positions of the rows that did not decode.
    """
    if len(values) > DECODE_BATCH:
        parts, bad = [], []
        for start in range(0, len(values), DECODE_BATCH):
            part, part_bad = _decode(values.slice(start, DECODE_BATCH), dtype)
            parts.append(part)
            bad += [start + i for i in part_bad]
        return pl.concat(parts).alias(values.name), bad
    return _decode(values, dtype)


def _decode(values: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, list[int]]:
    try:
        # Through a frame: the expression engine decodes in parallel, Series.str does not.
        decoded = values.to_frame("v").select(pl.col("v").str.json_decode(dtype))
        return decoded.to_series().alias(values.name), []
    except pl.exceptions.PolarsError:
        if len(values) == 1:
            return pl.Series(values.name, [None], dtype=dtype), [0]
    half = len(values) // 2
    left, bad_left = _decode(values.slice(0, half), dtype)
    right, bad_right = _decode(values.slice(half), dtype)
    return left.append(right), bad_left + [half + i for i in bad_right]


def filter_consuming(frame: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    """``frame.filter(mask)``, taking the columns out of ``frame`` one at a time.

    ``frame`` is left empty. Only one column is ever held twice, so filtering a partition
    costs one column's extra memory instead of a whole copy of the partition.
    """
    out = []
    for name in list(frame.columns):
        out.append(frame.drop_in_place(name).filter(mask))
    return pl.DataFrame(out)
