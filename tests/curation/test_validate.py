from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from platform_assets.curation.checks import check_validation_reconciles
from platform_assets.curation.validate import (
    QUARANTINE_SCHEMA,
    SchemaContractError,
    quarantine_counts_by_reason,
    validate_events,
)
from simulator.raw_zone import SyntheticConfig, synthetic_partition
from tests.curation.rows import frame, payload_for, row

pytestmark = pytest.mark.unit


def _reasons(result_quarantine: pl.DataFrame) -> list[set[str]]:
    return [
        {f"{r['column']}.{r['check']}" for r in reasons}
        for reasons in result_quarantine.get_column("quarantine_reasons").to_list()
    ]


def test_every_defect_is_quarantined_with_its_reason_and_nothing_is_lost() -> None:
    part = synthetic_partition(
        SyntheticConfig(day=date(2026, 11, 28), events=20_000, seed=3, invalid_share=0.01)
    )
    result = validate_events(part.current)
    assert result.stats.quarantined_rows == sum(part.truth.defects.values()) > 0
    assert result.valid.height + result.quarantine.height == part.current.height
    assert result.quarantine.schema == QUARANTINE_SCHEMA
    assert all(_reasons(result.quarantine))
    counts = dict(quarantine_counts_by_reason(result.quarantine).iter_rows())
    expected = {
        "negative_price": "payload.price.minimum",
        "bad_event_id": "event_id.uuid",
        "event_after_receipt": "event_timestamp.not_after_receipt",
        "unknown_device_class": "ua_device_class.device_class",
        "purchase_without_money": "money.purchase_total_eur",
    }
    for defect, reason in expected.items():
        if part.truth.defects[defect]:
            assert counts[reason] >= part.truth.defects[defect], (defect, counts)
    assert check_validation_reconciles(part.current.height, result).passed


def test_payload_checks_per_event_type() -> None:
    no_items, _ = payload_for("purchase", items=[])
    no_order, money = payload_for("purchase")
    del no_order["order_id"]
    bad_qty, _ = payload_for("add_to_cart", quantity=0)
    rows = frame(
        [
            row("purchase", payload=no_items),
            row("purchase", payload=no_order, money=money),
            row("purchase", money=[]),  # no EUR total: revenue would be missing
            row("add_to_cart", payload=bad_qty),
            row("page_view", payload={"page_title": "no url"}),
            row("checkout_started"),
            row("purchase"),
        ]
    )
    result = validate_events(rows)
    assert result.valid.height == 2
    assert _reasons(result.quarantine) == [
        {"payload.items.minItems"},
        {"payload.order_id.not_nullable"},
        {"money.purchase_total_eur"},
        {"payload.quantity.minimum"},
        # the envelope's http(s) rule, and the schema's required page_url
        {"payload.page_url", "payload.page_url.not_nullable"},
    ]
    first = result.quarantine.get_column("quarantine_reasons")[0][0]
    assert first["reason"] == "has fewer than 1 items"


def test_a_payload_with_wrong_types_is_quarantined_alone() -> None:
    wrong, _ = payload_for("product_view")
    wrong["price"] = "cheap"
    rows = frame([row("product_view"), row("product_view", payload=wrong), row("product_view")])
    result = validate_events(rows)
    assert result.valid.height == 2
    assert _reasons(result.quarantine) == [{"payload.decodes"}]


def test_wrong_column_types_fail_the_partition_not_rows() -> None:
    rows = frame([row()]).with_columns(pl.col("kafka_offset").cast(pl.String))
    with pytest.raises(SchemaContractError, match="kafka_offset"):
        validate_events(rows)


def test_reconciliation_fails_when_a_row_is_dropped() -> None:
    rows = frame([row(), row("product_view"), row("purchase", money=[])])
    result = validate_events(rows)
    assert check_validation_reconciles(rows.height, result).passed
    result.valid = result.valid.head(result.valid.height - 1)
    outcome = check_validation_reconciles(rows.height, result)
    assert not outcome.passed
    assert outcome.metadata["difference"] == 1


def test_consume_releases_the_callers_rows() -> None:
    rows = frame([row(), row()])
    result = validate_events(rows, consume=True)
    assert result.valid.height == 2
    assert rows.width == 0
