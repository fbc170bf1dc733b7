"""The simulated shop's enriched raw-zone rows, vectorised, for tests and benchmarks.

Rows follow the batch loader's ``contract.raw_zone.EVENT_SCHEMA`` and look like what the
pipeline writes for ``simulator.events.ClickstreamSource``: the same world
(``simulator.world``: catalogue, prices, currencies, user agents and what each one is,
countries, the funnel page_view -> product_view -> add_to_cart -> checkout_started ->
purchase and its rates) and payload layouts, serialised like ``contract.raw_zone.flatten``
(compact JSON with sorted keys). Sessions are built with numpy/polars, not event by event,
so ten million rows take seconds, not minutes.

On top of the clean stream, and counted in ``SyntheticTruth``:

- **duplicates**: copies of events (same ``event_id``, payload and event time) received
  later, as producer retries and Kafka replays make them (a few with the very same
  ``collector_received_at``, so only the Kafka coordinates tell them apart);
- **late events**: received hours after they happened (up to the next day);
- **cross-partition replays**: copies of the previous day's events re-stamped by the device
  into the current day, which only a lookback over the previous partition catches;
- **defects** (``invalid_share``): rows the curation must quarantine (negative price, bad
  currency, purchase without EUR amounts, purchase without items, bad event id, event time
  after receipt, unknown device class).

Sessions start in ``[day - lookback_hours, day + 1 day)``; rows whose event time lies before
``day`` form the lookback frame (the tail of the previous partition).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from contract.raw_zone import polars_schema
from resources.s3 import make_s3_client
from resources.settings import S3Settings
from simulator import world

DEFECTS = (
    "negative_price",
    "bad_currency",
    "purchase_without_money",
    "purchase_without_items",
    "bad_event_id",
    "event_after_receipt",
    "unknown_device_class",
)
GEO_SOURCE = "2.3.2026061719 (IP data CC BY 4.0 NRO (nro.net) via ip-location-db)"
RAW_SCHEMA = polars_schema()
RAW_COLUMNS = tuple(RAW_SCHEMA.names())
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT, PURCHASE = range(5)
_N_KAFKA_PARTITIONS = 6
_US = 1_000_000


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate: about ``events`` rows whose event time lies on ``day`` (UTC)."""

    day: date
    events: int
    seed: int = 7
    duplicate_share: float = 0.05
    late_share: float = 0.01
    cross_partition_share: float = 0.002
    invalid_share: float = 0.0
    lookback_hours: int = 3
    users: int | None = None
    chunk_sessions: int = 250_000


@dataclass
class SyntheticTruth:
    """What was put in, by partition: ``current`` is ``day``, ``lookback`` the day before."""

    rows: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    cross_partition: int = 0
    defects: Counter[str] = field(default_factory=Counter)


@dataclass
class SyntheticPartition:
    current: pl.DataFrame
    lookback: pl.DataFrame
    truth: SyntheticTruth


# -- reference data ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reference:
    product_ids: list[str]
    product_names: list[str]
    categories: list[str]
    category_of: np.ndarray  # product -> category index
    prices: np.ndarray  # product x currency
    currencies: list[str]
    rates: np.ndarray
    agents: list[str]
    agent_device: np.ndarray  # 0 desktop, 1 mobile, 2 bot
    ua: pl.DataFrame  # parsed user agent per agent index
    countries: list[str]
    country_names: list[str]
    country_currency: np.ndarray
    locales: list[str]


def _reference() -> _Reference:
    products = world.catalogue()
    categories = sorted({p.category for p in products})
    currencies = list(world.CURRENCY_RATES)
    agents = [a for kind in world.DEVICE_WEIGHTS for a in world.AGENTS[kind]]
    device = [d for d, kind in enumerate(world.DEVICE_WEIGHTS) for _ in world.AGENTS[kind]]
    info = [world.AGENT_INFO[a] for a in agents]
    ua = pl.DataFrame(
        {
            "agent": list(range(len(agents))),
            "ua_browser_family": [i.browser_family for i in info],
            "ua_browser_version": [i.browser_version for i in info],
            "ua_os_family": [i.os_family for i in info],
            "ua_os_version": [i.os_version for i in info],
            "ua_device_family": [i.device_family for i in info],
            "ua_device_class": [i.device_class for i in info],
            "ua_is_bot": [i.is_bot for i in info],
        },
        schema_overrides={"agent": pl.Int32},
    )
    countries = list(world.COUNTRIES.values())
    return _Reference(
        product_ids=[p.product_id for p in products],
        product_names=[p.name for p in products],
        categories=categories,
        category_of=np.array([categories.index(p.category) for p in products]),
        prices=np.array([[p.price(c) for c in currencies] for p in products]),
        currencies=currencies,
        rates=np.array([world.CURRENCY_RATES[c] for c in currencies]),
        agents=agents,
        agent_device=np.array(device),
        ua=ua,
        countries=list(world.COUNTRIES),
        country_names=[c.name for c in countries],
        country_currency=np.array([currencies.index(c.currency) for c in countries]),
        locales=[c.locale for c in countries],
    )


_HEX2 = np.array([[ord(c) for c in f"{i:02x}"] for i in range(256)], dtype=np.uint8)
_UUID_POS = (0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34)


def uuids(rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` random version-4 UUIDs as strings, built in numpy."""
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    out = np.empty((n, 36), dtype=np.uint8)
    for i, p in enumerate(_UUID_POS):
        out[:, p : p + 2] = _HEX2[b[:, i]]
    out[:, [8, 13, 18, 23]] = ord("-")
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.tobytes()))
    return pl.Series(arr)


def _pick(rng: np.random.Generator, n: int, weights: Iterable[float]) -> np.ndarray:
    p = np.asarray(list(weights), dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _gap(rng: np.random.Generator, step: str, n: int) -> np.ndarray:
    """Seconds before ``n`` steps of a kind, as ``world.GAP_S`` gives them."""
    return rng.uniform(*world.GAP_S[step], n)


def _lookup(index: pl.Expr | pl.Series, values: list[str]) -> pl.Expr:
    expr = index if isinstance(index, pl.Expr) else pl.lit(index)
    return expr.replace_strict(
        list(range(len(values))), values, default=None, return_dtype=pl.String
    )


# -- users and sessions --------------------------------------------------------------------


def _users(ref: _Reference, n: int, seed: int) -> pl.DataFrame:
    """The user pool; the same seed gives the same users whatever the day."""
    rng = np.random.default_rng([seed, 1])
    device = _pick(rng, n, list(world.DEVICE_WEIGHTS.values()))
    n_desk, n_mob, n_bot = (int((ref.agent_device == d).sum()) for d in range(3))
    agent = np.where(
        device == 0,
        rng.integers(0, n_desk, n),
        np.where(
            device == 1,
            n_desk + rng.integers(0, n_mob, n),
            n_desk + n_mob + rng.integers(0, n_bot, n),
        ),
    )
    has_id = (device != 2) & (rng.random(n) < world.ACCOUNT_SHARE)
    country = _pick(rng, n, [c.weight for c in world.COUNTRIES.values()])
    octets = np.array(world.PUBLIC_FIRST_OCTETS)
    ip_parts = [
        octets[rng.integers(0, len(octets), n)],
        *(rng.integers(0, 256, (2, n))),
        rng.integers(1, 255, n),
    ]
    frame = pl.DataFrame(
        {
            "user": np.arange(n, dtype=np.int64),
            "device": device.astype(np.int8),
            "agent": agent.astype(np.int32),
            "has_id": has_id,
            "country": country.astype(np.int32),
            "o1": ip_parts[0],
            "o2": ip_parts[1],
            "o3": ip_parts[2],
            "o4": ip_parts[3],
        }
    )
    return frame.select(
        "user",
        "device",
        "agent",
        "country",
        user_id=pl.when("has_id").then(
            pl.format("u-{}", pl.col("user").add(1).cast(pl.String).str.zfill(6))
        ),
        client_ip=pl.concat_str(
            [pl.col(c).cast(pl.String) for c in ("o1", "o2", "o3", "o4")], separator="."
        ),
    )


def _session_events(
    ref: _Reference, sessions: pl.DataFrame, rng: np.random.Generator
) -> pl.DataFrame:
    """One row per event of ``sessions`` with its kind, page, product and time offset."""
    s = sessions["s"].to_numpy()
    bot = sessions["device"].to_numpy() == 2
    n = len(s)
    n_products = len(ref.product_ids)
    n_categories = len(ref.categories)
    parts: list[pl.DataFrame] = []

    def rows(
        sess: np.ndarray,
        step: np.ndarray,
        kind: int,
        page: np.ndarray | int,
        product: np.ndarray | int,
        gap: np.ndarray,
        qty: np.ndarray | int = 0,
    ) -> None:
        m = len(sess)
        parts.append(
            pl.DataFrame(
                {
                    "s": sess.astype(np.int64),
                    "step": np.broadcast_to(step, m).astype(np.int32),
                    "kind": np.full(m, kind, dtype=np.int8),
                    "page": np.broadcast_to(page, m).astype(np.int32),
                    "product": np.broadcast_to(product, m).astype(np.int32),
                    "gap": gap.astype(np.float64),
                    "qty": np.broadcast_to(qty, m).astype(np.int32),
                }
            )
        )

    # Pages: 0 home, 1.. categories, then products, then checkout and confirmation.
    cat_page = 1
    prod_page = 1 + n_categories
    checkout_page = prod_page + n_products
    confirm_page = checkout_page + 1

    # Bots crawl pages, seconds apart.
    bots = s[bot]
    low, high = world.BOT_PAGES
    crawl = rng.integers(low, high + 1, len(bots))
    bs = np.repeat(bots, crawl)
    bstep = np.arange(len(bs)) - np.repeat(np.cumsum(crawl) - crawl, crawl)
    bprod = rng.integers(0, n_products, len(bs))
    bpage = np.where(
        rng.random(len(bs)) < world.BOT_PRODUCT_PAGE_SHARE,
        prod_page + bprod,
        cat_page + ref.category_of[bprod],
    )
    bgap = _gap(rng, "bot_page", len(bs))
    rows(bs, bstep, PAGE_VIEW, bpage, -1, np.where(bstep == 0, 0.0, bgap))

    hs = s[~bot]
    h = len(hs)
    landing_product = rng.integers(0, n_products, h)
    medium = sessions["medium"].to_numpy()[~bot]
    product_media = [list(world.MEDIA).index(m) for m in world.PRODUCT_LANDING_MEDIA]
    on_product = np.isin(medium, product_media) & (rng.random(h) < world.LANDING_PRODUCT_SHARE)
    on_category = rng.random(h) < world.LANDING_CATEGORY_SHARE
    landing = np.where(
        on_product,
        prod_page + landing_product,
        np.where(on_category, cat_page + ref.category_of[landing_product], 0),
    )
    rows(hs, np.zeros(h, np.int32), PAGE_VIEW, landing, -1, np.zeros(h))
    n_cat = np.array(list(world.CATEGORY_PAGES))[_pick(rng, h, world.CATEGORY_PAGES.values())]
    cs = np.repeat(hs, n_cat)
    cstep = 1 + np.arange(len(cs)) - np.repeat(np.cumsum(n_cat) - n_cat, n_cat)
    rows(
        cs,
        cstep,
        PAGE_VIEW,
        cat_page + rng.integers(0, n_categories, len(cs)),
        -1,
        _gap(rng, "category_page", len(cs)),
    )

    views = np.array(list(world.PRODUCT_VIEWS))[_pick(rng, h, world.PRODUCT_VIEWS.values())]
    n_prod = np.where(rng.random(h) < world.BROWSE_SHARE, views, 0)
    ps = np.repeat(hs, n_prod)
    pj = np.arange(len(ps)) - np.repeat(np.cumsum(n_prod) - n_prod, n_prod)
    favourite = np.repeat(ref.category_of[landing_product], n_prod)
    product = rng.integers(0, n_products, len(ps))
    # Some sessions' product views stay in the landing page's category.
    same = np.flatnonzero(np.repeat(rng.random(h) < world.SAME_CATEGORY_SHARE, n_prod))
    in_cat = [np.flatnonzero(ref.category_of == c) for c in range(n_categories)]
    for c in range(n_categories):
        idx = same[favourite[same] == c]
        product[idx] = in_cat[c][rng.integers(0, len(in_cat[c]), len(idx))]
    base = 10 + 3 * pj
    rows(ps, base, PAGE_VIEW, prod_page + product, -1, _gap(rng, "product_page", len(ps)))
    rows(ps, base + 1, PRODUCT_VIEW, -1, product, _gap(rng, "product_view", len(ps)))
    added = rng.random(len(ps)) < world.ADD_TO_CART_SHARE
    qty = np.array(list(world.QUANTITIES))[_pick(rng, len(ps), world.QUANTITIES.values())]
    rows(
        ps[added],
        base[added] + 2,
        ADD_TO_CART,
        -1,
        product[added],
        _gap(rng, "add_to_cart", int(added.sum())),
        qty[added],
    )

    carts = np.unique(ps[added])
    checkout = carts[rng.random(len(carts)) < world.CHECKOUT_SHARE]
    k = len(checkout)
    rows(checkout, np.full(k, 100), PAGE_VIEW, checkout_page, -1, _gap(rng, "checkout_page", k))
    rows(checkout, np.full(k, 101), CHECKOUT, -1, -1, _gap(rng, "checkout_started", k))
    bought = checkout[rng.random(k) < world.PURCHASE_SHARE]
    b = len(bought)
    rows(bought, np.full(b, 102), PURCHASE, -1, -1, _gap(rng, "purchase", b))
    rows(bought, np.full(b, 103), PAGE_VIEW, confirm_page, -1, _gap(rng, "confirmation_page", b))
    del n
    return pl.concat(parts).sort("s", "step")


def _pages(ref: _Reference) -> tuple[list[str], list[str]]:
    pages = [("/", "Home")]
    pages += [(f"/c/{c}", c.title()) for c in ref.categories]
    pages += [
        (f"/p/{pid}", name) for pid, name in zip(ref.product_ids, ref.product_names, strict=True)
    ]
    pages += [("/checkout", "Checkout"), ("/order/confirmation", "Thank you")]
    urls = [world.SHOP_URL + path for path, _ in pages]
    titles = [f"{title} | {world.SHOP_TITLE}" for _, title in pages]
    return urls, titles


_MEDIA = list(world.MEDIA)
_MEDIUM_WEIGHTS = [weight for _, weight in world.MEDIA.values()]
_REFERRERS = [referrer for referrer, _ in world.MEDIA.values()]


def _json_str(expr: pl.Expr) -> pl.Expr:
    """A string value as JSON (the generator's strings need no escaping), or ``null``."""
    return (
        pl.when(expr.is_null())
        .then(pl.lit("null"))
        .otherwise(pl.concat_str([pl.lit('"'), expr, pl.lit('"')]))
    )


def _num(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def _price_of(ref: _Reference) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "product": np.repeat(np.arange(len(ref.product_ids)), len(ref.currencies)),
            "currency_idx": np.tile(np.arange(len(ref.currencies)), len(ref.product_ids)),
            "price": ref.prices.ravel(),
        },
        schema_overrides={"product": pl.Int32, "currency_idx": pl.Int32},
    )


def _money(field: pl.Expr, amount: pl.Expr) -> pl.Expr:
    return pl.struct(
        field=field,
        amount=amount,
        currency=pl.col("currency"),
        amount_eur=(amount / pl.col("rate")).round(4),
        rates_version=pl.lit(world.RATES_VERSION),
    )


def _payloads(ref: _Reference, ev: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """``payload`` and ``money`` of every event, computed per kind (rows regrouped by kind)."""
    urls, titles = _pages(ref)
    money_type = RAW_SCHEMA["money"]
    ev = ev.with_columns(
        currency=_lookup(pl.col("currency_idx"), ref.currencies),
        rate=pl.col("currency_idx").replace_strict(
            list(range(len(ref.currencies))), ref.rates.tolist(), return_dtype=pl.Float64
        ),
    )
    kind = pl.col("kind")
    pages = ev.filter(kind == PAGE_VIEW).with_columns(
        referrer_url=pl.when(pl.col("step") == 0)
        .then(_lookup(pl.col("medium"), [r or "" for r in _REFERRERS]).replace("", None))
        .otherwise(_lookup(pl.col("prev_page"), urls)),
        referrer_medium=pl.when(pl.col("step") == 0)
        .then(_lookup(pl.col("medium"), _MEDIA))
        .otherwise(pl.lit("internal")),
    )
    pages = pages.with_columns(
        payload=pl.concat_str(
            [
                pl.lit('{"page_title":"'),
                _lookup(pl.col("page"), titles),
                pl.lit('","page_url":"'),
                _lookup(pl.col("page"), urls),
                pl.when(pl.col("modern"))
                .then(pl.concat_str([pl.lit('","referrer_medium":"'), pl.col("referrer_medium")]))
                .otherwise(pl.lit("")),
                pl.lit('","referrer_url":'),
                _json_str(pl.col("referrer_url")),
                pl.lit("}"),
            ]
        ),
        money=pl.lit([], dtype=money_type),
    )
    priced = ev.filter(kind.is_in([PRODUCT_VIEW, ADD_TO_CART])).join(
        _price_of(ref), on=["product", "currency_idx"], how="left"
    )
    priced = priced.with_columns(
        product_id=_lookup(pl.col("product"), ref.product_ids),
        cart_id=pl.concat_str([pl.lit("c-"), pl.col("session_id").str.slice(0, 8)]),
    )
    views = priced.filter(kind == PRODUCT_VIEW).with_columns(
        payload=pl.concat_str(
            [
                pl.lit('{"category":"'),
                _lookup(
                    pl.col("product").replace_strict(
                        list(range(len(ref.product_ids))),
                        ref.category_of.tolist(),
                        return_dtype=pl.Int32,
                    ),
                    ref.categories,
                ),
                pl.lit('","currency":"'),
                pl.col("currency"),
                pl.lit('","price":'),
                _num(pl.col("price")),
                pl.lit(',"product_id":"'),
                pl.col("product_id"),
                pl.lit('","product_name":"'),
                _lookup(pl.col("product"), ref.product_names),
                pl.lit('"}'),
            ]
        ),
        money=pl.concat_list(_money(pl.lit("/price"), pl.col("price"))),
    )
    adds = priced.filter(kind == ADD_TO_CART).with_columns(
        payload=pl.concat_str(
            [
                pl.lit('{"cart_id":"'),
                pl.col("cart_id"),
                pl.lit('","currency":"'),
                pl.col("currency"),
                pl.lit('","price":'),
                _num(pl.col("price")),
                pl.lit(',"product_id":"'),
                pl.col("product_id"),
                pl.lit('","quantity":'),
                _num(pl.col("qty")),
                pl.lit("}"),
            ]
        ),
        money=pl.concat_list(_money(pl.lit("/price"), pl.col("price"))),
    )
    # One cart line per product, as a shop's cart has.
    lines = (
        adds.group_by("s", "product")
        .agg(
            pl.col("qty").sum(),
            pl.col("price", "product_id", "currency", "rate").first(),
        )
        .sort("s", "product")
    )
    orders = lines.group_by("s", maintain_order=True).agg(
        item_count=pl.col("qty").sum(),
        cart_value=(pl.col("price") * pl.col("qty")).sum().round(2),
        items=pl.concat_str(
            [
                pl.lit('{"product_id":"'),
                pl.col("product_id"),
                pl.lit('","quantity":'),
                _num(pl.col("qty")),
                pl.lit(',"unit_price":'),
                _num(pl.col("price")),
                pl.lit("}"),
            ]
        ).str.join(","),
        item_money=_money(
            pl.format("/items/{}/unit_price", pl.int_range(pl.len()).cast(pl.String)),
            pl.col("price"),
        ),
    )
    orders = orders.with_columns(
        order_id=pl.concat_str([pl.lit("o-"), uuids(rng, orders.height).str.slice(0, 13)]),
        payment_method=_lookup(
            pl.Series(_pick(rng, orders.height, world.PAYMENT_METHODS.values())),
            list(world.PAYMENT_METHODS),
        ),
    )
    checkouts = ev.filter(kind == CHECKOUT).join(orders, on="s", how="left")
    checkouts = checkouts.with_columns(
        payload=pl.concat_str(
            [
                pl.lit('{"cart_id":"c-'),
                pl.col("session_id").str.slice(0, 8),
                pl.lit('","cart_value":'),
                _num(pl.col("cart_value")),
                pl.lit(',"currency":"'),
                pl.col("currency"),
                pl.lit('","item_count":'),
                _num(pl.col("item_count")),
                pl.lit("}"),
            ]
        ),
        money=pl.concat_list(_money(pl.lit("/cart_value"), pl.col("cart_value"))),
    )
    purchases = ev.filter(kind == PURCHASE).join(orders, on="s", how="left")
    purchases = purchases.with_columns(
        payload=pl.concat_str(
            [
                pl.lit('{"currency":"'),
                pl.col("currency"),
                pl.lit('","items":['),
                pl.col("items"),
                pl.lit('],"order_id":"'),
                pl.col("order_id"),
                pl.lit('","payment_method":"'),
                pl.col("payment_method"),
                pl.lit('","total":'),
                _num(pl.col("cart_value")),
                pl.lit("}"),
            ]
        ),
        money=pl.col("item_money").list.concat(
            pl.concat_list(_money(pl.lit("/total"), pl.col("cart_value")))
        ),
    )
    keep = [*ev.columns, "payload", "money"]
    return pl.concat([f.select(keep) for f in (pages, views, adds, checkouts, purchases)])


def _build_rows(
    ref: _Reference,
    users: pl.DataFrame,
    sessions: pl.DataFrame,
    ev: pl.DataFrame,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Turn session events into raw-zone rows (clean: no duplicates, late events or defects)."""
    n = ev.height
    # Time within the session, and each page view's previous page (rows are sorted by s, step).
    s = ev["s"].to_numpy()
    gap = ev["gap"].to_numpy()
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    counts = np.diff(np.r_[first, n])
    cum = np.cumsum(gap)
    t = cum - np.repeat(cum[first] - gap[first], counts)
    page = ev["page"].to_numpy()
    is_page = ev["kind"].to_numpy() == PAGE_VIEW
    page_rows = np.flatnonzero(is_page)
    prev_page = np.full(n, -1, dtype=np.int32)
    prev_page[page_rows[1:]] = page[page_rows[:-1]]
    ev = ev.with_columns(t=pl.Series(t), prev_page=pl.Series(prev_page))
    sess = sessions.join(users, on="user", how="left")
    ev = ev.join(sess, on="s", how="left").with_columns(
        currency_idx=pl.col("country").replace_strict(
            list(range(len(ref.countries))),
            ref.country_currency.tolist(),
            return_dtype=pl.Int32,
        )
    )
    ev = _payloads(ref, ev, rng)
    n = ev.height
    ev = ev.with_columns(
        event_id=uuids(rng, n),
        jitter=pl.Series(rng.uniform(0.05, 2.0, n)),
        event_timestamp=(pl.col("start_us") + (pl.col("t") * _US).cast(pl.Int64))
        .floordiv(1000)
        .mul(1000)
        .cast(pl.Datetime("us", "UTC")),
    )
    ev = ev.with_columns(
        collector_received_at=pl.col("event_timestamp")
        + (pl.col("jitter") * _US).cast(pl.Int64).cast(pl.Duration("us"))
    )
    kind = pl.col("kind")
    name = _lookup(kind.cast(pl.Int32), list(world.FUNNEL_STEPS))
    version = (
        pl.when((kind == PAGE_VIEW) & pl.col("modern"))
        .then(pl.lit("1-0-1"))
        .otherwise(pl.lit("1-0-0"))
    )
    device_type = _lookup(pl.col("device").cast(pl.Int32), ["desktop", "mobile", "bot"])
    context = pl.concat_str(
        [
            pl.lit('{"client_ip":"'),
            pl.col("client_ip"),
            pl.lit('","device_type":"'),
            device_type,
            pl.lit('","locale":"'),
            _lookup(pl.col("country"), ref.locales),
            pl.lit('","session_id":"'),
            pl.col("session_id"),
            pl.lit('","user_agent":"'),
            _lookup(pl.col("agent"), ref.agents),
            pl.when(pl.col("logged_in"))
            .then(pl.concat_str([pl.lit('","user_id":"'), pl.col("user_id")]))
            .otherwise(pl.lit("")),
            pl.lit('"}'),
        ]
    )
    enriched_at = pl.col("collector_received_at") + pl.duration(
        milliseconds=pl.col("t").mul(7).mod(400).cast(pl.Int64) + 20
    )
    ev = ev.join(ref.ua, on="agent", how="left")
    return ev.select(
        event_id=pl.col("event_id"),
        event_type=pl.format("{}/{}/jsonschema/{}", pl.lit(world.SHOP), name, version),
        event_vendor=pl.lit("com.tributary.shop"),
        event_name=name,
        event_version=version,
        event_timestamp=pl.col("event_timestamp"),
        event_timestamp_raw=pl.col("event_timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        source=pl.lit("web-shop"),
        payload=pl.col("payload"),
        context=context,
        collector_received_at=pl.col("collector_received_at"),
        collector_id=pl.lit("collector-1"),
        collector_request_id=pl.col("session_id"),
        collector_producer=pl.lit("web-shop"),
        collector_client_ip=pl.lit("10.20.0.5"),
        collector_user_agent=pl.lit("tributary-producer/0.1.0"),
        collector_path=pl.lit("rest"),
        ua_browser_family=pl.col("ua_browser_family"),
        ua_browser_version=pl.col("ua_browser_version"),
        ua_os_family=pl.col("ua_os_family"),
        ua_os_version=pl.col("ua_os_version"),
        ua_device_family=pl.col("ua_device_family"),
        ua_device_class=pl.col("ua_device_class"),
        ua_is_bot=pl.col("ua_is_bot"),
        geo_country_code=_lookup(pl.col("country"), ref.countries),
        geo_country_name=_lookup(pl.col("country"), ref.country_names),
        geo_city=pl.lit(None, dtype=pl.String),
        geo_latitude=pl.lit(None, dtype=pl.Float64),
        geo_longitude=pl.lit(None, dtype=pl.Float64),
        geo_source=pl.lit(GEO_SOURCE),
        money=pl.col("money"),
        scores=pl.concat_list(
            pl.struct(
                key=pl.lit("bot_probability"),
                value=pl.when(pl.col("device") == 2)
                .then(0.93 + pl.col("jitter") / 40)
                .otherwise(pl.col("jitter") / 50)
                .round(6),
            )
        ).cast(RAW_SCHEMA["scores"]),
        model_version=pl.lit("1.0.0"),
        lineage_enricher_version=pl.lit("0.1.0"),
        lineage_schema_version=version,
        lineage_model_version=pl.lit("1.0.0"),
        lineage_source_topic=pl.lit("tributary.events.raw"),
        lineage_source_partition=pl.lit(0, dtype=pl.Int32),
        lineage_source_offset=pl.lit(0, dtype=pl.Int64),
        lineage_enriched_at=enriched_at,
        kafka_topic=pl.lit("tributary.events.enriched"),
        kafka_partition=pl.lit(0, dtype=pl.Int32),
        kafka_offset=pl.lit(0, dtype=pl.Int64),
        kafka_timestamp=enriched_at + pl.duration(milliseconds=3),
        _actor=pl.col("user"),
    )


# -- chunks --------------------------------------------------------------------------------


class _Generator:
    def __init__(self, cfg: SyntheticConfig) -> None:
        self.cfg = cfg
        self.ref = _reference()
        self.truth = SyntheticTruth()
        self.day_start = datetime(cfg.day.year, cfg.day.month, cfg.day.day, tzinfo=UTC)
        self.window_start = self.day_start - timedelta(hours=cfg.lookback_hours)
        pilot = self._pilot_events_per_session()
        day_share = float(self._hour_weights()[cfg.lookback_hours :].sum())
        self.sessions = max(1, round(cfg.events / (1 + cfg.duplicate_share) / pilot / day_share))
        n_users = cfg.users or max(50, self.sessions // 2)
        self.users = _users(self.ref, n_users, cfg.seed)
        self.offsets = np.zeros(_N_KAFKA_PARTITIONS, dtype=np.int64)

    def _hour_weights(self) -> np.ndarray:
        """Diurnal traffic over the window's hours (more by day than at night), summing to 1."""
        hours = np.arange(24 + self.cfg.lookback_hours) - self.cfg.lookback_hours
        weights = 1.0 + 0.8 * np.sin((hours - 6) / 24 * 2 * np.pi)
        return np.asarray(weights / weights.sum())

    def _pilot_events_per_session(self) -> float:
        rng = np.random.default_rng([self.cfg.seed, 99])
        users = _users(self.ref, 2000, self.cfg.seed)
        sessions = self._sessions(rng, 20_000, 0, users)
        return _session_events(self.ref, sessions, rng).height / 20_000

    def _sessions(
        self, rng: np.random.Generator, n: int, first: int, users: pl.DataFrame
    ) -> pl.DataFrame:
        span_us = int((24 + self.cfg.lookback_hours) * 3600 * _US)
        hour = _pick(rng, n, list(self._hour_weights()))
        start = np.sort(hour * 3600 * _US + rng.integers(0, 3600 * _US, n))
        start = np.minimum(start, span_us - 1)
        user = rng.integers(0, users.height, n)
        frame = pl.DataFrame(
            {
                "s": np.arange(first, first + n, dtype=np.int64),
                "user": user.astype(np.int64),
                "start_us": int(self.window_start.timestamp() * _US) + start,
                "medium": _pick(rng, n, _MEDIUM_WEIGHTS).astype(np.int32),
                "modern": rng.random(n) < world.MODERN_SHARE,
                "login": rng.random(n) < world.LOGIN_SHARE,
                "session_id": uuids(rng, n),
            }
        )
        frame = frame.join(users.select("user", "device", "user_id"), on="user", how="left")
        return frame.with_columns(
            logged_in=pl.col("login") & pl.col("user_id").is_not_null(),
            # Crawlers come direct, as the event-by-event generator's do.
            medium=pl.when(pl.col("device") == 2).then(0).otherwise("medium").cast(pl.Int32),
        ).drop("login", "user_id")

    def chunks(self) -> Iterator[pl.DataFrame]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, 2])
        # Sessions are drawn in one go (sorted by start), then built chunk by chunk.
        sessions = self._sessions(rng, self.sessions, 0, self.users)
        for k, first in enumerate(range(0, self.sessions, cfg.chunk_sessions)):
            part = sessions.slice(first, cfg.chunk_sessions)
            crng = np.random.default_rng([cfg.seed, 3, k])
            ev = _session_events(self.ref, part, crng)
            rows = _build_rows(self.ref, self.users, part, ev, crng)
            yield self._distort(rows, crng)

    def _distort(self, rows: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        cfg = self.cfg
        day = pl.col("event_timestamp").dt.date()
        n = rows.height
        # Late events: received 1 to 30 hours after they happened.
        late = pl.Series(rng.random(n) < cfg.late_share)
        delay = pl.Series(rng.integers(3600 * _US, 30 * 3600 * _US, n)).cast(pl.Duration("us"))
        rows = rows.with_columns(
            collector_received_at=pl.when(late)
            .then(pl.col("event_timestamp") + delay)
            .otherwise(pl.col("collector_received_at")),
            _late=late,
            _dup=pl.lit(False),
        )
        # Cross-partition replays: copies of the previous day's events re-stamped into the day.
        share = min(1.0, cfg.cross_partition_share * 24 / max(cfg.lookback_hours, 1))
        prev = rows.filter(day < cfg.day)
        cross = prev.sample(fraction=share, seed=int(rng.integers(1 << 31)))
        shift = pl.Series(rng.integers(0, 2 * 3600 * _US, cross.height)).cast(pl.Duration("us"))
        cross = cross.with_columns(
            event_timestamp=(pl.lit(self.day_start) + shift).dt.truncate("1ms"),
        ).with_columns(
            event_timestamp_raw=pl.col("event_timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
            collector_received_at=pl.col("event_timestamp") + pl.duration(milliseconds=250),
            _late=pl.lit(False),
            _dup=pl.lit(True),
        )
        self.truth.cross_partition += cross.height
        # Duplicates: retries and replays of the same event, received later (5% of them at
        # the very same instant, so only the Kafka coordinates tell the copies apart).
        dup_n = min(round(n * cfg.duplicate_share), n)
        dups = rows.sample(n=dup_n, with_replacement=True, seed=int(rng.integers(1 << 31)))
        later = np.where(rng.random(dup_n) < 0.05, 0, rng.integers(_US, 3 * 3600 * _US, dup_n))
        dups = dups.with_columns(
            collector_received_at=pl.col("collector_received_at")
            + pl.Series(later).cast(pl.Duration("us")),
            _dup=pl.lit(True),
        )
        out = self._defects(pl.concat([rows, dups, cross]), rng)
        # Kafka coordinates: partition by actor, offsets in order of arrival.
        partition = (pl.col("_actor").hash(7) % _N_KAFKA_PARTITIONS).cast(pl.Int32)
        out = out.with_columns(kafka_partition=partition).with_columns(
            kafka_offset=pl.col("collector_received_at")
            .rank("ordinal")
            .over("kafka_partition")
            .cast(pl.Int64)
            - 1
            + pl.col("kafka_partition").replace_strict(
                list(range(_N_KAFKA_PARTITIONS)), self.offsets.tolist(), return_dtype=pl.Int64
            )
        )
        for p, c in out.group_by("kafka_partition").len().iter_rows():
            self.offsets[p] += c
        out = out.with_columns(
            lineage_source_partition=pl.col("kafka_partition"),
            lineage_source_offset=pl.col("kafka_offset"),
        )
        in_day = out.filter(day == cfg.day)
        before = out.filter(day < cfg.day)
        for where, frame in (("current", in_day), ("lookback", before)):
            self.truth.rows[where] += frame.height
            self.truth.duplicates[where] += int(frame["_dup"].sum())
            self.truth.late[where] += int(frame["_late"].sum())
            if where == "current":
                for name, count in frame.group_by("_defect").len().iter_rows():
                    if name is not None:
                        self.truth.defects[name] += count
        # Rows after the day (sessions running past midnight) belong to no partition here.
        return out.filter(day <= cfg.day).select(RAW_COLUMNS)

    def _defects(self, rows: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        n = rows.height
        hit = pl.Series(rng.random(n) < self.cfg.invalid_share)
        rows = rows.with_columns(_defect=pl.lit(None, dtype=pl.String))
        if self.cfg.invalid_share <= 0 or not hit.any():
            return rows
        kind = _lookup(pl.Series(rng.integers(0, len(DEFECTS), n)), list(DEFECTS))
        clean, broken = rows.filter(~hit), rows.filter(hit).with_columns(_defect=kind.filter(hit))
        name = pl.col("event_name")
        # A defect applies only where it makes sense; elsewhere the row stays clean.
        applies = {
            "negative_price": name.is_in(["product_view", "add_to_cart"]),
            "bad_currency": name != "page_view",
            "purchase_without_money": name == "purchase",
            "purchase_without_items": name == "purchase",
        }
        d = pl.col("_defect")
        broken = broken.with_columns(
            _defect=pl.when(
                d.is_in(list(applies)).not_()
                | pl.coalesce([pl.when(d == k).then(v) for k, v in applies.items()])
            ).then(d)
        )
        broken = broken.with_columns(
            payload=pl.when(d == "negative_price")
            .then(pl.col("payload").str.replace('"price":', '"price":-', literal=True))
            .when(d == "bad_currency")
            .then(pl.col("payload").str.replace('"currency":"', '"currency":"x', literal=True))
            .when(d == "purchase_without_items")
            .then(pl.col("payload").str.replace(r'"items":\[[^\]]*\]', '"items":[]'))
            .otherwise(pl.col("payload")),
            money=pl.when(d == "purchase_without_money")
            .then(pl.lit([], dtype=RAW_SCHEMA["money"]))
            .otherwise(pl.col("money")),
            event_id=pl.when(d == "bad_event_id")
            .then(pl.concat_str([pl.lit("evt-"), pl.col("event_id").str.slice(0, 8)]))
            .otherwise(pl.col("event_id")),
            collector_received_at=pl.when(d == "event_after_receipt")
            .then(pl.col("event_timestamp") - pl.duration(hours=1))
            .otherwise(pl.col("collector_received_at")),
            ua_device_class=pl.when(d == "unknown_device_class")
            .then(pl.lit("toaster"))
            .otherwise(pl.col("ua_device_class")),
        )
        return pl.concat([clean, broken])


def synthetic_chunks(cfg: SyntheticConfig) -> tuple[Iterator[pl.DataFrame], SyntheticTruth]:
    """Chunks of raw rows (event dates ``day - 1`` and ``day``); the truth fills as they go."""
    gen = _Generator(cfg)
    return gen.chunks(), gen.truth


def synthetic_partition(cfg: SyntheticConfig) -> SyntheticPartition:
    """The partition ``cfg.day`` and its lookback (the previous day's tail), in memory."""
    chunks, truth = synthetic_chunks(cfg)
    rows = pl.concat(list(chunks))
    day = pl.col("event_timestamp").dt.date()
    return SyntheticPartition(
        current=rows.filter(day == cfg.day), lookback=rows.filter(day < cfg.day), truth=truth
    )


def write_raw_zone(cfg: SyntheticConfig, root: Path, name: str = "chunk") -> SyntheticTruth:
    """Write the rows as the batch loader lays them out: ``event_date=/event_hour=`` folders.

    The files are ``<name>-<chunk>.parquet``: raw zones of several days written under one root
    (each day's lookback lies in the day before) need a name each.
    """
    chunks, truth = synthetic_chunks(cfg)
    for k, chunk in enumerate(chunks):
        keyed = chunk.with_columns(
            _date=pl.col("event_timestamp").dt.date(), _hour=pl.col("event_timestamp").dt.hour()
        )
        for (d, hour), part in keyed.group_by("_date", "_hour"):
            folder = root / f"event_date={d}" / f"event_hour={hour:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            part.drop("_date", "_hour").write_parquet(
                folder / f"{name}-{k:04d}.parquet", compression="zstd"
            )
    return truth


def upload_raw_zone(root: Path, s3: S3Settings) -> list[str]:
    """Upload a raw zone written by :func:`write_raw_zone` to ``s3``'s raw bucket and prefix."""
    client = make_s3_client(s3)
    keys = []
    for path in sorted(root.rglob("*.parquet")):
        key = f"{s3.raw_prefix}{path.relative_to(root).as_posix()}"
        client.upload_file(str(path), s3.raw_bucket, key)
        keys.append(key)
    return keys
