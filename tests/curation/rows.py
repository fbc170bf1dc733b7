"""Hand-made raw-zone rows for the curation tests."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from platform_assets.curation.raw import RAW_SCHEMA

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
_RATES = {"EUR": 1.0, "USD": 1.08, "GBP": 0.86}
_offsets: dict[int, int] = {}


def _money(field: str, amount: float, currency: str) -> dict[str, Any]:
    return {
        "field": field,
        "amount": amount,
        "currency": currency,
        "amount_eur": round(amount / _RATES[currency], 4),
        "rates_version": "eur-ref-2026.1",
    }


def payload_for(name: str, **fields: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A valid payload of event type ``name`` and its money entries, ``fields`` overriding."""
    currency = fields.get("currency", "EUR")
    if name == "page_view":
        payload: dict[str, Any] = {"page_url": "https://shop.example.com/", "page_title": "Home"}
    elif name == "product_view":
        payload = {"product_id": "SKU-1", "product_name": "Shoe", "category": "shoes"}
        payload |= {"price": 50.0, "currency": currency}
    elif name == "add_to_cart":
        payload = {"product_id": "SKU-1", "quantity": 1, "price": 50.0, "currency": currency}
    elif name == "checkout_started":
        payload = {"cart_id": "c-1", "item_count": 1, "cart_value": 50.0, "currency": currency}
    elif name == "purchase":
        payload = {
            "order_id": "o-1",
            "items": [{"product_id": "SKU-1", "quantity": 2, "unit_price": 50.0}],
            "total": 100.0,
            "currency": currency,
        }
    else:
        raise ValueError(name)
    payload |= fields
    money: list[dict[str, Any]] = []
    if name in ("product_view", "add_to_cart"):
        money = [_money("/price", payload["price"], currency)]
    elif name == "checkout_started":
        money = [_money("/cart_value", payload["cart_value"], currency)]
    elif name == "purchase":
        money = [
            _money(f"/items/{i}/unit_price", item["unit_price"], currency)
            for i, item in enumerate(payload["items"])
        ] + [_money("/total", payload["total"], currency)]
    return payload, money


def row(
    name: str = "page_view",
    *,
    at: datetime = T0,
    event_id: str | None = None,
    user_id: str | None = "u-1",
    session_id: str | None = "s-1",
    device_id: str | None = None,
    received_after: timedelta = timedelta(milliseconds=300),
    partition: int = 0,
    offset: int | None = None,
    bot: bool = False,
    bot_probability: float = 0.01,
    payload: dict[str, Any] | None = None,
    money: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One raw-zone row of a shop event (every column of ``RAW_SCHEMA``)."""
    default_payload, default_money = payload_for(name)
    context = {
        k: v
        for k, v in {"user_id": user_id, "session_id": session_id, "device_id": device_id}.items()
        if v is not None
    }
    if offset is None:
        offset = _offsets.get(partition, 0)
        _offsets[partition] = offset + 1
    version = "1-0-0"
    received = at + received_after
    values: dict[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": f"iglu:com.tributary.shop/{name}/jsonschema/{version}",
        "event_vendor": "com.tributary.shop",
        "event_name": name,
        "event_version": version,
        "event_timestamp": at,
        "event_timestamp_raw": at.isoformat(),
        "source": "web-shop",
        "payload": json.dumps(payload if payload is not None else default_payload),
        "context": json.dumps(context, sort_keys=True),
        "collector_received_at": received,
        "collector_id": "collector-1",
        "collector_request_id": "r-1",
        "collector_producer": "web-shop",
        "collector_client_ip": "10.0.0.1",
        "collector_user_agent": "test",
        "collector_path": "rest",
        "ua_browser_family": "Chrome",
        "ua_browser_version": "124",
        "ua_os_family": "Windows",
        "ua_os_version": "10",
        "ua_device_family": None,
        "ua_device_class": "bot" if bot else "desktop",
        "ua_is_bot": bot,
        "geo_country_code": "DE",
        "geo_country_name": "Germany",
        "geo_city": None,
        "geo_latitude": None,
        "geo_longitude": None,
        "geo_source": "test",
        "money": money if money is not None else default_money,
        "scores": [{"key": "bot_probability", "value": bot_probability}],
        "model_version": "1.0.0",
        "lineage_enricher_version": "0.1.0",
        "lineage_schema_version": version,
        "lineage_model_version": "1.0.0",
        "lineage_source_topic": "tributary.events.raw",
        "lineage_source_partition": partition,
        "lineage_source_offset": offset,
        "lineage_enriched_at": received + timedelta(milliseconds=50),
        "kafka_topic": "tributary.events.enriched",
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": received + timedelta(milliseconds=60),
    }
    values |= overrides
    return values


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {**RAW_SCHEMA, "scores": pl.List(pl.Struct({"key": pl.String, "value": pl.Float64}))}
    return pl.DataFrame(rows, schema=schema).cast({"scores": RAW_SCHEMA["scores"]})


def reading(
    device_id: str, value: float, *, at: datetime = T0, sensor: str = "pressure"
) -> dict[str, Any]:
    """One raw-zone row of an IoT sensor reading from ``device_id`` (no user, no session)."""
    payload = {"device_id": device_id, "sensor": sensor, "value": value, "unit": "hPa"}
    return row(
        at=at,
        user_id=None,
        session_id=None,
        device_id=device_id,
        payload=payload,
        money=[],
        event_type="iglu:com.tributary.iot/sensor_reading/jsonschema/1-0-0",
        event_vendor="com.tributary.iot",
        event_name="sensor_reading",
        source="barometers",
        ua_browser_family=None,
        ua_os_family=None,
        ua_device_class="other",
    )
