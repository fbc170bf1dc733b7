"""The reporting views the dashboards read: their SQL, written once for every engine.

Two kinds:

- **lake views** over the curated marts (``marts.<table>``): daily KPIs, top products, new
  versus returning users. Their SQL keeps to what Trino and DuckDB both run the same way
  (explicit ``cast(... as double)`` before a division, ``round`` on money, ``row_number``
  with a total order), so ``tributary query`` answers alike on either engine.
- **live views** over the real-time indices (Trino's ``opensearch`` catalog, the loader's
  aliases): events per minute by type, dead letters (of the collector and the enricher) by
  stage and reason, and each event's latency from the collector to the index, over the last
  ``LIVE_WINDOW_HOURS``. Trino only: DuckDB has no way to the search store. Event types come
  with their short name as well (``event_name``: ``page_view`` for
  ``iglu:com.tributary.shop/page_view/jsonschema/1-0-1``), for legends.

A view's SQL is a template: ``{marts}`` is the marts' schema as the engine names it
(``iceberg.marts`` on Trino, ``marts`` in DuckDB), ``{events}`` and ``{deadletters}`` the
OpenSearch tables. The views themselves live in the schema ``reporting``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from contract.search import DEADLETTERS, EVENTS, alias_name
from resources.settings import PlatformSettings

SCHEMA = "reporting"
MARTS = "marts"
LIVE_WINDOW_HOURS = 24

_NOW_UTC = "cast(current_timestamp at time zone 'UTC' as timestamp(3))"
_LIVE_SINCE = f"{_NOW_UTC} - interval '{LIVE_WINDOW_HOURS}' hour"


def _minute(column: str) -> str:
    # The search store's times are UTC without a zone, in milliseconds; an Iceberg view's
    # columns must be Iceberg types, whose timestamps are microseconds.
    return f"cast(date_trunc('minute', {column}) as timestamp(6))"


def _event_name(column: str) -> str:
    """An event type's name (``page_view``); the event type itself if it is no Iglu URI."""
    return f"coalesce(regexp_extract({column}, '^iglu:[^/]+/([^/]+)/', 1), {column})"


@dataclass(frozen=True)
class ReportingView:
    name: str
    description: str
    sql: str
    marts: tuple[str, ...] = ()
    """The marts it reads (its upstream assets); empty for a live view."""

    @property
    def live(self) -> bool:
        return not self.marts

    def render(self, marts: str, events: str = "", deadletters: str = "") -> str:
        return self.sql.format(marts=marts, events=events, deadletters=deadletters)


DAILY_KPIS = ReportingView(
    "daily_kpis",
    "One row per day: human sessions, the funnel and its conversion, orders and revenue (EUR).",
    """
select
  date,
  sessions,
  bot_sessions,
  events,
  funnel_page_view,
  funnel_product_view,
  funnel_add_to_cart,
  funnel_checkout_started,
  funnel_purchase,
  conversion_product_view,
  conversion_add_to_cart,
  conversion_checkout_started,
  conversion_purchase,
  conversion_overall,
  orders,
  purchases,
  revenue_eur,
  average_order_value_eur
from {marts}.agg_daily_kpis
""",
    ("agg_daily_kpis",),
)

TOP_PRODUCTS = ReportingView(
    "top_products",
    "Products by revenue (EUR) per day, with units, orders and the day's rank.",
    """
with sold as (
  select
    event_date,
    product_id,
    sum(quantity) as units,
    count(distinct order_id) as orders,
    round(sum(line_amount_eur), 2) as revenue_eur
  from {marts}.fct_order_lines
  group by event_date, product_id
)
select
  sold.event_date as date,
  row_number() over (
    partition by sold.event_date order by sold.revenue_eur desc, sold.product_id
  ) as revenue_rank,
  sold.product_id,
  products.product_name,
  products.category,
  sold.units,
  sold.orders,
  sold.revenue_eur
from sold
left join {marts}.dim_products as products on products.product_id = sold.product_id
""",
    ("fct_order_lines", "dim_products"),
)

USER_MIX = ReportingView(
    "user_mix",
    "New versus returning (human) users per day; new means not seen in the 30 days before.",
    """
select
  date,
  users,
  new_users,
  returning_users,
  round(cast(new_users as double) / nullif(users, 0), 4) as new_user_share
from {marts}.agg_daily_kpis
""",
    ("agg_daily_kpis",),
)

LIVE_EVENTS_PER_MINUTE = ReportingView(
    "live_events_per_minute",
    f"Events indexed in the real-time store per minute and event type (with its short name), "
    f"last {LIVE_WINDOW_HOURS} hours (by event time, UTC).",
    f"""
select
  {_minute("event_timestamp")} as minute,
  event_type,
  {_event_name("event_type")} as event_name,
  count(*) as events
from {{events}}
where event_timestamp >= {_LIVE_SINCE}
group by 1, 2
""",
)

LIVE_DEAD_LETTERS = ReportingView(
    "live_dead_letters_by_reason",
    f"Dead letters per minute, stage (collector, enricher) and reason, last "
    f"{LIVE_WINDOW_HOURS} hours (UTC).",
    f"""
select
  {_minute("failed_at")} as minute,
  stage,
  failure_type as reason,
  count(*) as dead_letters
from {{deadletters}}
where failed_at >= {_LIVE_SINCE}
group by 1, 2, 3
""",
)

LIVE_INGEST_LATENCY = ReportingView(
    "live_ingest_latency",
    f"One row per event indexed: when the collector received it, its type, and its latency "
    f"from the collector's receipt to the search index in milliseconds, last "
    f"{LIVE_WINDOW_HOURS} hours (UTC). Per event, so that percentiles can be taken over any "
    f"time bucket (a percentile of percentiles is none).",
    f"""
select
  cast(collector.received_at as timestamp(6)) as received_at,
  {_event_name("event_type")} as event_name,
  to_milliseconds(loader.indexed_at - collector.received_at) as latency_ms
from {{events}}
where collector.received_at >= {_LIVE_SINCE}
""",
)

LAKE_VIEWS = (DAILY_KPIS, TOP_PRODUCTS, USER_MIX)
LIVE_VIEWS = (LIVE_EVENTS_PER_MINUTE, LIVE_DEAD_LETTERS, LIVE_INGEST_LATENCY)
VIEWS = {v.name: v for v in (*LAKE_VIEWS, *LIVE_VIEWS)}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def trino_sql(view: ReportingView, settings: PlatformSettings) -> str:
    """The view's ``CREATE OR REPLACE VIEW`` statement on Trino, names from ``settings``."""
    trino = settings.trino
    search = f"{trino.opensearch_catalog}.default"
    prefix = settings.search.index_prefix
    body = view.render(
        marts=f"{trino.iceberg_catalog}.{MARTS}",
        events=f"{search}.{_quote(alias_name(prefix, EVENTS))}",
        deadletters=f"{search}.{_quote(alias_name(prefix, DEADLETTERS))}",
    )
    return f"create or replace view {trino.iceberg_catalog}.{SCHEMA}.{view.name} as{body}"


def duckdb_sql(view: ReportingView) -> str:
    """The lake view's ``CREATE VIEW`` statement in DuckDB (marts registered as ``marts``)."""
    if view.live:
        raise ValueError(f"{view.name} reads the real-time store, which only Trino reaches")
    return f"create or replace view {SCHEMA}.{view.name} as{view.render(marts=MARTS)}"


_REFERENCE = re.compile(rf"\b({MARTS}|{SCHEMA})\s*\.\s*([a-z_][a-z0-9_]*)", re.IGNORECASE)


def referenced_marts(sql: str, views: Iterable[ReportingView] = LAKE_VIEWS) -> set[str]:
    """The marts ``sql`` reads, directly or through the lake views it names."""
    by_name = {v.name: v for v in views}
    found: set[str] = set()
    for schema, name in _REFERENCE.findall(sql):
        if schema.lower() == MARTS:
            found.add(name.lower())
        elif name.lower() in by_name:
            found |= set(by_name[name.lower()].marts)
    return found
