"""The reporting model of one partition (an event date): staging, facts, dimensions, KPIs.

Every function takes frames of one partition and returns a ``DataFrame`` with explicit keys,
sorted by them, so that re-running a partition on the same inputs gives identical output:

| table | key | grain |
|---|---|---|
| ``stg_events`` | ``event_id`` | one deduplicated, sessionised event, payload fields typed |
| ``fct_events`` | ``event_id`` | one shop event (``event_date`` partitions it) |
| ``fct_sessions`` | ``session_id``, ``session_date`` | a session's events in the partition |
| ``fct_order_lines`` | ``order_id``, ``line_number`` | one line of a purchase |
| ``dim_users`` | ``user_key`` | a user (logged-in id, else device or anonymous session) |
| ``dim_products`` | ``product_id`` | a product, attributes from its latest product view |
| ``dim_date`` | ``date_key`` | a calendar day |
| ``agg_daily_kpis`` | ``date`` | one day: sessions, funnel, revenue, users, dead letters |
| ``agg_daily_device_readings`` | ``device_id``, ``sensor``, ``reading_date`` | IoT readings |

The shop's marts (every one but the last) read the shop's events only (``shop_events``): an
IoT device or a logging service is no shop user. The IoT domain has its own mart,
``agg_daily_device_readings``; application logs have none (the real-time store serves them).

``dim_users`` and ``dim_products`` return the dimension after the partition: the previous
state of the dimension (``previous``) with the partition's users/products merged in. First and
last seen are min/max, so merging is idempotent and does not depend on the order in which
partitions run; the other attributes come from the most recent sighting.

EUR amounts are the enrichment's (the ``money`` column's ``amount_eur``), never re-converted.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

from contract.failures import FailureType
from platform_assets.curation.payloads import PAYLOAD_FIELDS
from platform_assets.curation.raw import ENGINE, SHOP_VENDOR, as_lazy, decode_json

FUNNEL = ("page_view", "product_view", "add_to_cart", "checkout_started", "purchase")
COMMERCE = ("product_view", "add_to_cart", "checkout_started", "purchase")
_AMOUNT_FIELD = {
    "product_view": "/price",
    "add_to_cart": "/price",
    "checkout_started": "/cart_value",
    "purchase": "/total",
}
_ITEM = PAYLOAD_FIELDS["purchase"].to_schema()["items"]
COMMERCE_COLUMNS = pl.Schema(
    {
        "product_id": pl.String(),
        "product_name": pl.String(),
        "category": pl.String(),
        "quantity": pl.Int64(),
        "price": pl.Float64(),
        "currency": pl.String(),
        "cart_id": pl.String(),
        "item_count": pl.Int64(),
        "order_id": pl.String(),
        "payment_method": pl.String(),
        "order_items": _ITEM,
        "order_items_eur": pl.List(
            pl.Struct({"line_number": pl.UInt32, "unit_price_eur": pl.Float64})
        ),
        "amount": pl.Float64(),
        "amount_eur": pl.Float64(),
    }
)
DEAD_LETTER_REASONS = (*(f.value for f in FailureType), "other", "quarantined")
_ROW = "_row"


def shop_events(stg: pl.DataFrame) -> pl.DataFrame:
    """The rows of the shop's events (``SHOP_VENDOR``): what the shop's marts read."""
    return stg.filter(pl.col("event_vendor") == SHOP_VENDOR)


def _commerce(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed payload fields of the commerce events (``COMMERCE_COLUMNS``), in row order."""
    names = frame.get_column("event_name")
    parts = []
    for name in COMMERCE:
        mask = names == name
        if not mask.any():
            continue
        part = frame.select(_ROW, "payload", "money").filter(mask)
        decoded, _ = decode_json(part.get_column("payload"), PAYLOAD_FIELDS[name])
        fields = decoded.struct.unnest()
        amount_name = _AMOUNT_FIELD[name].lstrip("/")
        if "items" in fields.columns:
            fields = fields.rename({"items": "order_items"})
        fields = fields.with_columns(
            amount=pl.col("total" if amount_name == "total" else amount_name)
        )
        money = part.select(
            amount_eur=pl.col("money")
            .list.eval(
                pl.element()
                .filter(pl.element().struct.field("field") == _AMOUNT_FIELD[name])
                .struct.field("amount_eur")
            )
            .list.first()
        )
        if name == "purchase":
            entry = pl.element().struct
            money = money.with_columns(
                order_items_eur=part.get_column("money").list.eval(
                    pl.struct(
                        line_number=entry.field("field")
                        .str.extract(r"^/items/(\d+)/unit_price$")
                        .cast(pl.UInt32),
                        unit_price_eur=entry.field("amount_eur"),
                    ).filter(entry.field("field").str.ends_with("/unit_price"))
                )
            )
        typed = pl.concat([part.select(_ROW), fields, money], how="horizontal")
        parts.append(
            typed.select(
                _ROW,
                *[
                    pl.col(c) if c in typed.columns else pl.lit(None, dtype).alias(c)
                    for c, dtype in COMMERCE_COLUMNS.items()
                ],
            )
        )
    if not parts:
        return pl.DataFrame(schema={_ROW: pl.UInt32, **COMMERCE_COLUMNS})
    return pl.concat(parts)


def _aligned(values: pl.DataFrame, n: int) -> pl.DataFrame:
    """Rows of ``values`` (with ``_row``) placed at their ``_row``; other rows null."""
    where = np.full(n, -1, dtype=np.int64)
    where[values.get_column(_ROW).to_numpy()] = np.arange(values.height)
    index = pl.Series(where).cast(pl.UInt32, strict=False).set(pl.Series(where < 0), None)
    return values.drop(_ROW).select(pl.all().gather(index))


def stage_events(sessionised: pl.DataFrame, *, consume: bool = False) -> pl.DataFrame:
    """``stg_events``: the partition's sessionised events, renamed and typed for modelling.

    Rows are sorted by ``event_timestamp, event_id``, so every "first"/"latest" pick
    downstream is deterministic whatever the order the raw objects were read in. With
    ``consume`` the rows of ``sessionised`` are released (it is left empty) before the sort.
    """
    frame = sessionised.with_row_index(_ROW)
    commerce = _aligned(_commerce(frame), frame.height)
    ts = pl.col("event_timestamp")
    base = frame.select(
        "event_id",
        event_date=ts.dt.date(),
        event_hour=ts.dt.hour(),
        event_timestamp=ts,
        collector_received_at=pl.col("collector_received_at"),
        is_late=pl.col("collector_received_at").dt.date() > ts.dt.date(),
        event_vendor=pl.col("event_vendor"),
        event_name=pl.col("event_name"),
        event_version=pl.col("event_version"),
        source=pl.col("source"),
        user_key=pl.col("user_key"),
        user_id=pl.col("user_id"),
        session_id=pl.col("session_id"),
        session_started_at=pl.col("session_started_at"),
        session_event_number=pl.col("session_event_number"),
        device_class=pl.col("device_class"),
        is_bot=pl.col("is_bot"),
        country_code=pl.col("country_code"),
        browser_family=pl.col("ua_browser_family"),
        os_family=pl.col("ua_os_family"),
    )
    del frame
    if consume:
        for name in list(sessionised.columns):
            sessionised.drop_in_place(name)
    staged = pl.concat([base, commerce], how="horizontal")
    del base, commerce
    # One deterministic order for every mart built from it (and ``fct_events``'s own).
    return staged.sort("event_timestamp", "event_id")


def fct_events(stg: pl.DataFrame) -> pl.DataFrame:
    """One row per shop event, key ``event_id``, ordered like ``stg`` (event time, then id)."""
    return shop_events(stg).select(
        "event_id",
        "event_date",
        "event_hour",
        "event_timestamp",
        "collector_received_at",
        "is_late",
        "event_name",
        "event_version",
        "user_key",
        "session_id",
        "device_class",
        "is_bot",
        "country_code",
        "product_id",
        "order_id",
        "quantity",
        "amount_eur",
    )


def fct_sessions(stg: pl.DataFrame, day: date) -> pl.DataFrame:
    """The partition's part of every session: counts, funnel steps, revenue, duration.

    A session that started before the partition (``started_in_partition`` false) is counted
    by the KPIs of the day it started; here it shows what happened in this partition.
    """
    name = pl.col("event_name")
    # Plain column aggregations only (the fast group-by paths): the per-step indicators are
    # computed on the rows first. stg is in time order, so first() is the earliest event.
    counts = {
        "page_views": "page_view",
        "product_views": "product_view",
        "add_to_carts": "add_to_cart",
        "checkouts_started": "checkout_started",
        "purchases": "purchase",
    }
    out = (
        stg.lazy()
        .filter(pl.col("session_id").is_not_null())
        .select(
            "session_id",
            "user_key",
            "user_id",
            "session_started_at",
            "event_timestamp",
            "device_class",
            "country_code",
            "is_bot",
            "session_event_number",
            *[(name == step).cast(pl.UInt32).alias(f"_{step}") for step in FUNNEL],
            _revenue=pl.when(name == "purchase").then(pl.col("amount_eur")),
        )
        .group_by("session_id")
        .agg(
            user_key=pl.col("user_key").first(),
            user_id=pl.col("user_id").min(),
            started_at=pl.col("session_started_at").min(),
            first_event_at=pl.col("event_timestamp").min(),
            last_event_at=pl.col("event_timestamp").max(),
            events=pl.len().cast(pl.UInt32),
            **{column: pl.col(f"_{step}").sum() for column, step in counts.items()},
            revenue_eur=pl.col("_revenue").sum(),
            device_class=pl.col("device_class").first(),
            country_code=pl.col("country_code").first(),
            is_bot=pl.col("is_bot").max(),
            started_in_partition=pl.col("session_event_number").min() == 1,
            **{f"reached_{step}": pl.col(f"_{step}").max() > 0 for step in FUNNEL},
        )
    )
    # Funnel steps are nested: a session reaches a step only if it reached the one before.
    nested = []
    previous = None
    for step in FUNNEL:
        col = pl.col(f"reached_{step}")
        expr = col if previous is None else col & previous
        nested.append(expr.alias(f"reached_{step}"))
        previous = expr
    return (
        out.with_columns(nested)
        .with_columns(
            session_date=pl.lit(day),
            duration_s=(pl.col("last_event_at") - pl.col("started_at")).dt.total_milliseconds()
            / 1000,
            is_bounce=pl.col("events") == 1,
        )
        .sort("session_id")
        .collect(engine=ENGINE)
    )


def fct_order_lines(stg: pl.DataFrame) -> pl.DataFrame:
    """One row per line of every purchase, key ``order_id, line_number``.

    ``unit_price_eur`` is the enrichment's conversion of the line's unit price (the money
    entry ``/items/<line_number>/unit_price``).
    """
    orders = stg.filter(pl.col("event_name") == "purchase").select(
        "order_id",
        "event_id",
        "event_date",
        "order_items",
        "order_items_eur",
        ordered_at=pl.col("event_timestamp"),
        user_key=pl.col("user_key"),
        session_id=pl.col("session_id"),
        currency=pl.col("currency"),
        payment_method=pl.col("payment_method"),
    )
    lines = (
        orders.with_columns(line_number=pl.int_ranges(pl.col("order_items").list.len()))
        .explode("order_items", "line_number")
        .unnest("order_items")
        .with_columns(pl.col("line_number").cast(pl.UInt32))
    )
    eur = (
        orders.select("event_id", "order_items_eur")
        .explode("order_items_eur")
        .unnest("order_items_eur")
        .drop_nulls("line_number")
    )
    lines = lines.join(eur, on=["event_id", "line_number"], how="left")
    return lines.select(
        "order_id",
        "line_number",
        "event_id",
        "event_date",
        "ordered_at",
        "user_key",
        "session_id",
        "product_id",
        "quantity",
        "unit_price",
        "currency",
        "unit_price_eur",
        line_amount=pl.col("unit_price") * pl.col("quantity"),
        line_amount_eur=pl.col("unit_price_eur") * pl.col("quantity"),
        payment_method=pl.col("payment_method"),
    ).sort("order_id", "line_number")


USER_COLUMNS = (
    "user_key",
    "user_id",
    "first_seen_at",
    "last_seen_at",
    "country_code",
    "device_class",
    "is_bot",
)


def _merge_previous(
    current: pl.DataFrame,
    previous: pl.DataFrame | pl.LazyFrame | None,
    key: str,
    columns: tuple[str, ...],
) -> pl.DataFrame:
    """The dimension after the partition: ``previous`` with the partition's rows merged in."""
    if previous is None:
        return current.select(columns).sort(key)
    before = as_lazy(previous).select(columns)
    prev = before.join(current.lazy().select(key), on=key, how="semi")
    untouched = before.join(current.lazy().select(key), on=key, how="anti")
    joined = current.lazy().select(columns).join(prev, on=key, how="left", suffix="_prev")
    newer = pl.col("last_seen_at_prev").is_null() | (
        pl.col("last_seen_at") >= pl.col("last_seen_at_prev")
    )
    merged = []
    for c in columns:
        if c == key:
            merged.append(pl.col(c))
        elif c == "first_seen_at":
            merged.append(pl.min_horizontal(c, f"{c}_prev").alias(c))
        elif c == "last_seen_at":
            merged.append(pl.max_horizontal(c, f"{c}_prev").alias(c))
        else:
            merged.append(
                pl.when(newer)
                .then(pl.coalesce(c, f"{c}_prev"))
                .otherwise(pl.coalesce(f"{c}_prev", c))
                .alias(c)
            )
    return pl.concat([joined.select(merged), untouched]).sort(key).collect(engine=ENGINE)


def _latest(column: str) -> pl.Expr:
    """The value of ``column`` at a group's latest event (by event time, then event id)."""
    return pl.col(column).sort_by("event_timestamp", "event_id").last()


def dim_users(
    stg: pl.DataFrame, previous: pl.DataFrame | pl.LazyFrame | None = None
) -> pl.DataFrame:
    """``previous`` with the users of the shop events of ``stg`` merged in (key ``user_key``).

    ``country_code`` and ``device_class`` are those of the user's latest event; ``is_bot`` is
    true when any of the user's events was a bot's.
    """
    # Whatever order stg comes in (one partition is in time order, several read back from
    # the lake are not), "latest" is by event time, then event id.
    current = (
        shop_events(stg)
        .lazy()
        .group_by("user_key")
        .agg(
            user_id=pl.col("user_id").min(),
            first_seen_at=pl.col("event_timestamp").min(),
            last_seen_at=pl.col("event_timestamp").max(),
            country_code=_latest("country_code"),
            device_class=_latest("device_class"),
            is_bot=pl.col("is_bot").any(),
        )
        .collect(engine=ENGINE)
    )
    return _merge_previous(current, previous, "user_key", USER_COLUMNS)


PRODUCT_COLUMNS = (
    "product_id",
    "product_name",
    "category",
    "price",
    "currency",
    "price_eur",
    "first_seen_at",
    "last_seen_at",
)


def dim_products(
    stg: pl.DataFrame,
    order_lines: pl.DataFrame | None = None,
    previous: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """``previous`` with the products of the partition (views, carts, order lines) merged in.

    Key ``product_id``. Name, category and price come from the latest product view (by time,
    then event id).
    """
    seen = [
        stg.lazy()
        .filter(pl.col("product_id").is_not_null())
        .select("product_id", "event_timestamp")
    ]
    if order_lines is not None:
        seen.append(order_lines.lazy().select("product_id", event_timestamp=pl.col("ordered_at")))
    span = (
        pl.concat(seen)
        .group_by("product_id")
        .agg(
            first_seen_at=pl.col("event_timestamp").min(),
            last_seen_at=pl.col("event_timestamp").max(),
        )
    )
    latest = (
        stg.lazy()
        .filter(pl.col("event_name") == "product_view")
        .group_by("product_id")
        .agg(
            *(_latest(c) for c in ("product_name", "category", "price", "currency")),
            price_eur=_latest("amount_eur"),
        )
    )
    current = span.join(latest, on="product_id", how="left").collect(engine=ENGINE)
    return _merge_previous(current, previous, "product_id", PRODUCT_COLUMNS)


def year_ahead(today: date) -> date:
    """The same day a year later; 29 February gives 28 February of the next year."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:
        return today.replace(year=today.year + 1, day=28)


def dim_date(first_day: date, today: date) -> pl.DataFrame:
    """Calendar rows from ``first_day`` to a year ahead of ``today`` (inclusive)."""
    days = pl.date_range(first_day, year_ahead(today), timedelta(days=1), eager=True)
    d = pl.col("date")
    return pl.DataFrame(days.alias("date")).select(
        date_key=d.dt.strftime("%Y%m%d").cast(pl.Int32),
        date=d,
        year=d.dt.year().cast(pl.Int16),
        quarter=d.dt.quarter().cast(pl.Int8),
        month=d.dt.month().cast(pl.Int8),
        month_name=d.dt.strftime("%B"),
        day=d.dt.day().cast(pl.Int8),
        day_of_week=d.dt.weekday().cast(pl.Int8),
        day_name=d.dt.strftime("%A"),
        iso_year=d.dt.iso_year().cast(pl.Int16),
        iso_week=d.dt.week().cast(pl.Int8),
        is_weekend=d.dt.weekday() >= 6,
    )


IOT_VENDOR = "com.tributary.iot"
_READING = PAYLOAD_FIELDS["sensor_reading"]


def agg_daily_device_readings(events: pl.DataFrame) -> pl.DataFrame:
    """The IoT mart: per device, sensor and day, the count and spread of its readings.

    Reads the day's deduplicated events (their ``payload``); key ``device_id, sensor,
    reading_date``. ``unit`` is that of the latest reading (by time, then event id).
    """
    readings = events.filter(
        (pl.col("event_vendor") == IOT_VENDOR) & (pl.col("event_name") == "sensor_reading")
    ).select("event_id", "event_timestamp", "payload")
    decoded, _ = decode_json(readings.get_column("payload"), _READING)
    fields = pl.concat([readings.drop("payload"), decoded.struct.unnest()], how="horizontal")
    return (
        fields.lazy()
        .group_by("device_id", "sensor", reading_date=pl.col("event_timestamp").dt.date())
        .agg(
            unit=_latest("unit"),
            readings=pl.len().cast(pl.Int64),
            min_value=pl.col("value").min(),
            max_value=pl.col("value").max(),
            mean_value=pl.col("value").mean(),
            first_reading_at=pl.col("event_timestamp").min(),
            last_reading_at=pl.col("event_timestamp").max(),
        )
        .sort("device_id", "sensor", "reading_date")
        .collect(engine=ENGINE)
    )


def _rate(numerator: Any, denominator: Any) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def agg_daily_kpis(
    day: date,
    stg: pl.DataFrame,
    sessions: pl.DataFrame,
    previous_users: pl.DataFrame | pl.LazyFrame | None,
    *,
    validated_rows: int,
    quarantined_rows: int,
    deduplicated_rows: int,
    dead_letters: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row of the shop's KPIs for ``day``.

    Args:
        day: the partition.
        stg: ``stg_events`` of the day (only the shop's events are counted).
        sessions: ``fct_sessions`` of the day.
        previous_users: ``dim_users`` before the day (``None``: no earlier user), so that
            ``first_seen_at`` tells the day's new users from returning ones.
        validated_rows: rows of ``validated_events`` of the day.
        quarantined_rows: rows of ``quarantined_events`` of the day (with the validated
            ones, the day's raw-zone rows).
        deduplicated_rows: rows of ``deduplicated_events`` of the day.
        dead_letters: the stream's dead letters of the day, columns ``reason`` (a
            ``FailureType`` value) and ``count``; reasons outside them count as ``other``.

    Users are the day's shop users, new when first seen on ``day``. Sessions and the funnel
    count human sessions (not bots) that started on ``day``; a session reaches a step only if
    it reached the previous one. Revenue is the EUR total of the day's purchases. The
    dead-letter rate of a reason is its count over every event that reached the platform for
    the day (raw rows plus the stream's dead letters); validation's quarantine is the reason
    ``quarantined``.
    """
    stg = shop_events(stg)
    raw_events = validated_rows + quarantined_rows
    quarantined_events = quarantined_rows
    duplicates_removed = validated_rows - deduplicated_rows
    users = dim_users(stg, previous_users).join(
        stg.select("user_key").unique(), on="user_key", how="semi"
    )
    name = pl.col("event_name")
    human = ~pl.col("is_bot")
    purchase = name == "purchase"
    counts = (
        stg.lazy()
        .select(
            events=human.sum(),
            page_views=(human & (name == "page_view")).sum(),
            product_views=(human & (name == "product_view")).sum(),
            add_to_carts=(human & (name == "add_to_cart")).sum(),
            checkouts_started=(human & (name == "checkout_started")).sum(),
            purchases=purchase.sum(),
            orders=pl.col("order_id").filter(purchase).n_unique(),
            revenue=pl.col("amount_eur").filter(purchase).sum(),
            late_events=pl.col("is_late").sum(),
        )
        .collect(engine=ENGINE)
        .row(0, named=True)
    )
    orders = int(counts["orders"])
    revenue = float(counts["revenue"] or 0.0)
    started = sessions.filter(pl.col("started_in_partition"))
    human_sessions = started.filter(~pl.col("is_bot"))
    funnel = {
        f"funnel_{step}": int(human_sessions.get_column(f"reached_{step}").sum()) for step in FUNNEL
    }
    conversion = {
        f"conversion_{b}": _rate(funnel[f"funnel_{b}"], funnel[f"funnel_{a}"])
        for a, b in pairwise(FUNNEL)
    }
    conversion["conversion_overall"] = _rate(funnel["funnel_purchase"], funnel["funnel_page_view"])
    active = users.filter(~pl.col("is_bot"))
    new = int((active.get_column("first_seen_at").dt.date() == day).sum())
    dlq: dict[str, int] = dict.fromkeys(DEAD_LETTER_REASONS, 0)
    if dead_letters is not None:
        for reason, count in dead_letters.select("reason", "count").iter_rows():
            key = reason if reason in dlq and reason != "quarantined" else "other"
            dlq[key] = dlq.get(key, 0) + int(count)
    stream_dlq = sum(dlq.values())
    dlq["quarantined"] = quarantined_events
    reached = raw_events + stream_dlq
    row: dict[str, Any] = {
        "date": day,
        "raw_events": raw_events,
        "events": counts["events"],
        "bot_events": stg.height - counts["events"],
        "page_views": counts["page_views"],
        "product_views": counts["product_views"],
        "add_to_carts": counts["add_to_carts"],
        "checkouts_started": counts["checkouts_started"],
        "purchases": counts["purchases"],
        "orders": orders,
        "revenue_eur": round(revenue, 2),
        "average_order_value_eur": round(revenue / orders, 2) if orders else None,
        "users": active.height,
        "new_users": new,
        "returning_users": active.height - new,
        "sessions": human_sessions.height,
        "bot_sessions": started.height - human_sessions.height,
        **funnel,
        **conversion,
        "late_events": counts["late_events"],
        "duplicates_removed": duplicates_removed,
        "dead_letters": sum(dlq.values()),
        "dead_letter_rate": _rate(sum(dlq.values()), reached),
    }
    for reason, count in dlq.items():
        row[f"dead_letters_{reason}"] = count
        row[f"dead_letter_rate_{reason}"] = _rate(count, reached) if reached else None
    return pl.DataFrame([row], schema_overrides=_KPI_TYPES, strict=False)


_KPI_TYPES: dict[str, pl.DataType] = {
    **{
        c: pl.Int64()
        for c in (
            "raw_events",
            "events",
            "bot_events",
            "page_views",
            "product_views",
            "add_to_carts",
            "checkouts_started",
            "purchases",
            "orders",
            "users",
            "new_users",
            "returning_users",
            "sessions",
            "bot_sessions",
            "late_events",
            "duplicates_removed",
            "dead_letters",
            *(f"funnel_{s}" for s in FUNNEL),
            *(f"dead_letters_{r}" for r in DEAD_LETTER_REASONS),
        )
    },
    **{
        c: pl.Float64()
        for c in (
            "revenue_eur",
            "average_order_value_eur",
            "dead_letter_rate",
            "conversion_overall",
            *(f"conversion_{s}" for s in FUNNEL[1:]),
            *(f"dead_letter_rate_{r}" for r in DEAD_LETTER_REASONS),
        )
    },
}
