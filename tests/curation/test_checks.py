from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from platform_assets.curation import checks

pytestmark = pytest.mark.unit


def test_unique_names_the_duplicated_keys() -> None:
    frame = pl.DataFrame({"order_id": ["o-1", "o-1", "o-2"], "line_number": [0, 0, 0]})
    outcome = checks.check_unique(frame, ["order_id", "line_number"])
    assert not outcome.passed
    assert outcome.metadata["duplicated_keys"] == 1
    assert checks.check_unique(frame.unique(), ["order_id", "line_number"]).passed


def test_not_null_counts_nulls_per_column() -> None:
    frame = pl.DataFrame({"a": [1, None], "b": ["x", "y"]})
    outcome = checks.check_not_null(frame, ["a", "b"])
    assert not outcome.passed
    assert outcome.metadata["null_counts"] == {"a": 1}
    assert checks.check_not_null(frame, ["b"]).passed


def test_accepted_values() -> None:
    frame = pl.DataFrame({"device_class": ["desktop", "toaster", None]})
    outcome = checks.check_accepted_values(frame, "device_class", ["desktop", "mobile"])
    assert not outcome.passed
    assert outcome.metadata["unexpected_values"] == {"toaster": 1}
    strict = checks.check_accepted_values(
        frame.filter(pl.col("device_class") != "toaster"), "device_class", ["desktop"]
    )
    assert strict.passed
    no_nulls = checks.check_accepted_values(
        pl.DataFrame({"c": ["desktop", None]}), "c", ["desktop"], allow_null=False
    )
    assert not no_nulls.passed


def test_referential_integrity_finds_orphans() -> None:
    fact = pl.DataFrame({"product_id": ["SKU-1", "SKU-9", None]})
    dim = pl.DataFrame({"product_id": ["SKU-1"]})
    outcome = checks.check_referential_integrity(fact, dim, "product_id")
    assert not outcome.passed
    assert outcome.metadata["sample"] == ["SKU-9"]
    assert checks.check_referential_integrity(fact.head(1), dim, "product_id").passed


def test_volume_anomaly_against_the_trailing_average() -> None:
    assert checks.check_volume_anomaly(100, [90, 110, 100]).passed
    low = checks.check_volume_anomaly(40, [90, 110, 100])
    assert not low.passed
    assert low.metadata["deviation"] == -0.6
    assert checks.check_volume_anomaly(1, [100]).passed  # not enough history


def test_freshness() -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert checks.check_freshness(now - timedelta(minutes=5), now, timedelta(minutes=10)).passed
    assert not checks.check_freshness(now - timedelta(hours=1), now, timedelta(minutes=10)).passed
    assert not checks.check_freshness(None, now, timedelta(minutes=10)).passed
