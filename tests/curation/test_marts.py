from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from platform_assets.curation import checks, marts
from platform_assets.curation.pipeline import CurationResult, curate_partition
from platform_assets.curation.raw import empty_raw
from simulator.raw_zone import SyntheticConfig, synthetic_partition
from tests.curation.rows import T0, frame, payload_for, reading, row

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 28)
MIN = timedelta(minutes=1)


def _shop() -> pl.DataFrame:
    usd, usd_money = payload_for(
        "purchase",
        order_id="o-2",
        items=[{"product_id": "SKU-2", "quantity": 1, "unit_price": 108.0}],
        total=108.0,
        currency="USD",
    )
    funnel = ["page_view", "product_view", "add_to_cart", "checkout_started", "purchase"]
    rows = [row(name, at=T0 + i * MIN, user_id="u-1") for i, name in enumerate(funnel)]
    rows += [row(name, at=T0 + i * MIN, user_id="u-2") for i, name in enumerate(funnel[:2])]
    rows += [row(name, at=T0 + i * MIN, user_id="u-3") for i, name in enumerate(funnel[:4])]
    rows.append(row("purchase", at=T0 + 4 * MIN, user_id="u-3", payload=usd, money=usd_money))
    rows += [row(at=T0 + i * MIN, user_id=None, session_id="s-bot", bot=True) for i in (0, 1)]
    rows.append(row("purchase", user_id="u-4", money=[]))  # quarantined: no EUR total
    return frame(rows)


PREVIOUS_USERS = pl.DataFrame(
    {
        "user_key": ["u:u-1", "u:u-9"],
        "user_id": ["u-1", "u-9"],
        "first_seen_at": [T0 - timedelta(days=1), T0 - timedelta(days=3)],
        "last_seen_at": [T0 - timedelta(days=1), T0 - timedelta(days=2)],
        "country_code": ["FR", "IT"],
        "device_class": ["mobile", "tablet"],
        "is_bot": [False, False],
    }
)


def _curate(raw: pl.DataFrame) -> CurationResult:
    previous = PREVIOUS_USERS
    dead = pl.DataFrame({"reason": ["schema_violation", "malformed", "weird"], "count": [3, 1, 1]})
    return curate_partition(raw, DAY, dead_letters=dead, previous_users=previous)


def test_kpis_equal_hand_computed_figures() -> None:
    result = _curate(_shop())
    kpi = result.agg_daily_kpis.row(0, named=True)
    assert kpi["date"] == DAY
    assert (kpi["raw_events"], kpi["events"], kpi["bot_events"]) == (15, 12, 2)
    assert (kpi["sessions"], kpi["bot_sessions"]) == (3, 1)
    assert [kpi[f"funnel_{s}"] for s in ("page_view", "product_view", "add_to_cart")] == [3, 3, 2]
    assert (kpi["funnel_checkout_started"], kpi["funnel_purchase"]) == (2, 2)
    assert kpi["conversion_product_view"] == 1.0
    assert kpi["conversion_add_to_cart"] == pytest.approx(2 / 3, abs=1e-6)
    assert kpi["conversion_purchase"] == 1.0
    assert kpi["conversion_overall"] == pytest.approx(2 / 3, abs=1e-6)
    # 100 EUR, plus 108 USD at 1.08 per EUR
    assert (kpi["orders"], kpi["revenue_eur"], kpi["average_order_value_eur"]) == (2, 200.0, 100.0)
    assert (kpi["users"], kpi["new_users"], kpi["returning_users"]) == (3, 2, 1)
    # 15 raw rows + 5 stream dead letters reached the platform; 1 row was quarantined
    assert kpi["dead_letters"] == 6
    assert kpi["dead_letter_rate"] == pytest.approx(6 / 20)
    assert kpi["dead_letter_rate_schema_violation"] == pytest.approx(3 / 20)
    assert kpi["dead_letters_other"] == 1
    assert kpi["dead_letter_rate_quarantined"] == pytest.approx(1 / 20)


def test_order_lines_sessions_and_dimensions() -> None:
    result = _curate(_shop())
    lines = result.fct_order_lines
    assert lines.select("order_id", "line_number", "quantity", "unit_price_eur").rows() == [
        ("o-1", 0, 2, 50.0),
        ("o-2", 0, 1, 100.0),
    ]
    assert lines.get_column("line_amount_eur").to_list() == [100.0, 100.0]
    sessions = result.fct_sessions
    buyer = sessions.filter(pl.col("user_key") == "u:u-1").row(0, named=True)
    assert (buyer["events"], buyer["purchases"], buyer["revenue_eur"]) == (5, 1, 100.0)
    assert buyer["reached_purchase"] and buyer["started_in_partition"]
    assert buyer["duration_s"] == 240.0
    users = result.dim_users
    u1 = users.filter(pl.col("user_key") == "u:u-1").row(0, named=True)
    assert u1["first_seen_at"] == T0 - timedelta(days=1)
    assert u1["country_code"] == "DE"  # the latest sighting wins
    # The dimension after the day: a user not seen today keeps the previous row.
    assert users.filter(pl.col("user_key") == "u:u-9").rows() == PREVIOUS_USERS.slice(1).rows()
    products = result.dim_products
    assert set(products.get_column("product_id")) == {"SKU-1", "SKU-2"}
    assert products.filter(pl.col("product_id") == "SKU-1").row(0, named=True)["price_eur"] == 50.0


@pytest.mark.parametrize(
    ("today", "last"),
    [(date(2028, 2, 29), date(2029, 2, 28)), (date(2026, 11, 28), date(2027, 11, 28))],
)
def test_the_calendar_runs_a_year_ahead_of_today_even_on_29_february(
    today: date, last: date
) -> None:
    calendar = marts.dim_date(date(2026, 1, 1), today)
    assert calendar.get_column("date").to_list() == [
        date(2026, 1, 1) + timedelta(days=n) for n in range((last - date(2026, 1, 1)).days + 1)
    ]
    row = calendar.filter(pl.col("date") == DAY).row(0, named=True)
    assert (row["date_key"], row["is_weekend"], row["iso_week"]) == (20261128, True, 48)


def test_re_running_a_partition_gives_identical_marts() -> None:
    raw = _shop()
    first = _curate(raw)
    second = _curate(raw.sample(fraction=1.0, shuffle=True, seed=2))
    for name, table in first.marts().items():
        assert table.equals(second.marts()[name]), name


def test_mart_keys_and_references_hold() -> None:
    r = _curate(_shop())
    assert checks.check_unique(r.fct_events, ["event_id"]).passed
    assert checks.check_unique(r.fct_sessions, ["session_id", "session_date"]).passed
    assert checks.check_unique(r.fct_order_lines, ["order_id", "line_number"]).passed
    assert checks.check_referential_integrity(r.fct_events, r.dim_users, "user_key").passed
    assert checks.check_referential_integrity(
        r.fct_order_lines, r.dim_products, "product_id"
    ).passed


def test_an_empty_partition_gives_empty_marts_with_the_same_schemas() -> None:
    full = _curate(_shop())
    empty = curate_partition(empty_raw(), DAY)
    for name, table in empty.marts().items():
        assert table.schema == full.marts()[name].schema, name
    assert empty.agg_daily_kpis.row(0, named=True)["sessions"] == 0
    assert empty.fct_events.height == 0


def test_without_keep_frames_the_chain_gives_the_same_marts() -> None:
    raw = _shop()
    kept = _curate(raw)
    assert kept.validated_events.height == kept.deduplicated_events.height == 14
    lean = curate_partition(
        raw.lazy(),
        DAY,
        dead_letters=pl.DataFrame({"reason": ["schema_violation"], "count": [3]}),
        keep_frames=False,
    )
    assert lean.validated_events.width == lean.deduplicated_events.width == 0  # released
    assert lean.fct_events.equals(kept.fct_events)
    assert lean.fct_order_lines.equals(kept.fct_order_lines)


def test_dimensions_do_not_depend_on_the_order_of_stg() -> None:
    """Several partitions read back from the lake come in any order: the dimensions agree."""
    raw = synthetic_partition(SyntheticConfig(day=DAY, events=3000)).current
    result = curate_partition(raw, DAY)
    stg = result.stg_events
    shuffled = stg.sample(fraction=1.0, shuffle=True, seed=3)
    lines = result.fct_order_lines
    for ordered, mixed in (
        (marts.dim_users(stg), marts.dim_users(shuffled)),
        (marts.dim_products(stg, lines), marts.dim_products(shuffled, lines.reverse())),
    ):
        assert ordered.height > 0
        assert ordered.equals(mixed)
        assert (ordered["first_seen_at"] <= ordered["last_seen_at"]).all()


def test_iot_devices_are_no_shop_users_and_have_their_own_mart() -> None:
    """A day of the shop with barometer readings: the shop's marts never see the devices."""
    raw = synthetic_partition(SyntheticConfig(day=DAY, events=3000, seed=4)).current
    minute = timedelta(minutes=1)
    readings = [
        reading(f"barometer-{d}", 1000.0 + k, at=T0 + k * minute)
        for d in range(20)
        for k in (0, 1, 2)
    ]
    with_iot = pl.concat([raw, frame(readings)])
    shop_only = curate_partition(raw, DAY)
    result = curate_partition(with_iot, DAY)
    kpi = result.agg_daily_kpis.row(0, named=True)
    human_sessions = result.fct_sessions.filter(~pl.col("is_bot") & pl.col("started_in_partition"))
    assert 0 < kpi["new_users"] <= kpi["users"] <= human_sessions["user_key"].n_unique()
    assert not result.dim_users["user_key"].str.contains("barometer").any()
    assert not result.fct_events["user_key"].str.contains("barometer").any()
    # The shop's figures are those of the same day without the readings.
    for name in ("fct_events", "fct_sessions", "fct_order_lines", "dim_users", "dim_products"):
        assert result.marts()[name].equals(shop_only.marts()[name]), name
    expected = shop_only.agg_daily_kpis.with_columns(raw_events=pl.col("raw_events") + 60)
    assert result.agg_daily_kpis.drop("^dead_letter_rate.*$").equals(
        expected.drop("^dead_letter_rate.*$")
    )
    devices = result.agg_daily_device_readings
    assert devices.height == 20
    first = devices.row(0, named=True)
    assert (first["device_id"], first["sensor"], first["reading_date"]) == (
        "barometer-0",
        "pressure",
        DAY,
    )
    assert (first["readings"], first["min_value"], first["max_value"], first["mean_value"]) == (
        3,
        1000.0,
        1002.0,
        1001.0,
    )
    assert first["unit"] == "hPa"
    assert shop_only.agg_daily_device_readings.height == 0
