"""Where a producer's events come from: seeded generators, and replays of files.

Every source is an iterable of events in the envelope format (``docs/event-contract.md``):
dicts, or ``bytes`` for an event that is deliberately not JSON at all (the emitter sends
those bytes as they are). ``encode`` turns either into the bytes that are spooled and sent.

Generators (``ClickstreamSource``, ``IoTSource``) are deterministic: the same seed and start
give the same bytes, and each ``iter()`` starts over. Event ids come from a random generator
seeded with the seed *and* the start time, so a second run with ``start=None`` (anchored at
the current time) does not reuse the ids of the first. With ``bad_share`` > 0 that share of
events is broken on purpose; ``flaws`` counts them by kind (``COLLECTOR_FLAWS`` are refused
by the collector, the payload flaws by the enricher's schema check).

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
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

Event = dict[str, Any]
SourceItem = dict[str, Any] | bytes

SHOP = "iglu:com.tributary.shop"
PAGE_VIEW_1_0_0 = f"{SHOP}/page_view/jsonschema/1-0-0"
PAGE_VIEW_LATEST = f"{SHOP}/page_view/jsonschema/1-0-1"
PRODUCT_VIEW = f"{SHOP}/product_view/jsonschema/1-0-0"
ADD_TO_CART = f"{SHOP}/add_to_cart/jsonschema/1-0-0"
CHECKOUT_STARTED = f"{SHOP}/checkout_started/jsonschema/1-0-0"
PURCHASE = f"{SHOP}/purchase/jsonschema/1-0-0"
SENSOR_READING = "iglu:com.tributary.iot/sensor_reading/jsonschema/1-0-0"

# Flaws the collector refuses (dead-lettered there) ...
COLLECTOR_FLAWS = ("bad_uuid", "unknown_type", "naive_timestamp", "payload_not_object", "not_json")
# ... and flaws only the payload schema refuses (the collector accepts them).
SHOP_PAYLOAD_FLAWS = ("negative_price", "missing_required", "bad_currency")
IOT_PAYLOAD_FLAWS = ("battery_out_of_range", "missing_required", "unknown_sensor")

# Without an explicit start, generated time begins this long before now.
DEFAULT_LOOKBACK = timedelta(hours=1)


def encode(item: SourceItem) -> bytes:
    """The bytes of an event as spooled and sent: compact JSON, or raw bytes as they are."""
    if isinstance(item, bytes):
        return item
    return orjson.dumps(item)


def rfc3339(ts: datetime) -> str:
    """RFC 3339 with milliseconds and an offset (``Z`` for UTC)."""
    if ts.tzinfo is None:
        raise ValueError("a timestamp needs a timezone")
    text = ts.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Generator:
    """Shared state of the seeded generators: clocks, id stream, flaws."""

    source: str
    payload_flaws: tuple[str, ...] = ()

    def __init__(self, seed: int, bad_share: float, start: datetime | None) -> None:
        if not 0.0 <= bad_share <= 1.0:
            raise ValueError(f"bad_share must be between 0 and 1, not {bad_share}")
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.seed = seed
        self.bad_share = bad_share
        self.live = start is None
        self.start = start if start is not None else datetime.now(UTC) - DEFAULT_LOOKBACK
        self.flaws: Counter[str] = Counter()
        self._reset()

    def _reset(self) -> None:
        self.rng = random.Random(self.seed)
        self.ids = random.Random(f"{self.seed}/{self.start.isoformat()}")
        self.flaw_rng = random.Random(f"{self.seed}/flaws")
        self.flaws = Counter()

    def _envelope(self, event_type: str, ts: datetime, payload: Event, context: Event) -> Event:
        return {
            "event_id": _uuid(self.ids),
            "event_type": event_type,
            "event_timestamp": rfc3339(ts),
            "source": self.source,
            "payload": payload,
            "context": context,
        }

    def _maybe_break(self, event: Event) -> SourceItem:
        if self.bad_share <= 0 or self.flaw_rng.random() >= self.bad_share:
            return event
        kinds = [*COLLECTOR_FLAWS, *self._applicable(event)]
        flaw = self.flaw_rng.choice(kinds)
        self.flaws[flaw] += 1
        if flaw in COLLECTOR_FLAWS:
            return _break_envelope(event, flaw, self.flaw_rng)
        broken = {**event, "payload": dict(event["payload"])}
        self._break_payload(broken["payload"], event["event_type"], flaw)
        return broken

    def _applicable(self, event: Event) -> list[str]:
        return list(self.payload_flaws)

    def _break_payload(self, payload: Event, event_type: str, flaw: str) -> None:
        raise NotImplementedError


def _break_envelope(event: Event, flaw: str, rng: random.Random) -> SourceItem:
    broken = dict(event)
    event_id: str = event["event_id"]
    if flaw == "bad_uuid":
        broken["event_id"] = rng.choice(
            [event_id[:-1], event_id[:-1] + "z", f"evt-{event_id[:8]}-{event_id[-12:]}"]
        )
    elif flaw == "unknown_type":
        name = event["event_type"].split("/")[1]
        vendor = event["event_type"].split("/")[0]
        broken["event_type"] = rng.choice(
            [f"{vendor}/{name}_v2/jsonschema/1-0-0", f"{vendor}/{name}/jsonschema/9-0-0", name]
        )
    elif flaw == "naive_timestamp":
        ts = datetime.fromisoformat(event["event_timestamp"])
        broken["event_timestamp"] = rng.choice(
            [ts.replace(tzinfo=None).isoformat(timespec="seconds"), int(ts.timestamp() * 1000)]
        )
    elif flaw == "payload_not_object":
        payload = event["payload"]
        broken["payload"] = rng.choice([[payload], orjson.dumps(payload).decode()])
    elif flaw == "not_json":
        raw = orjson.dumps(event)
        cut = max(80, int(len(raw) * rng.uniform(0.5, 0.9)))
        # Cut short, or an invalid UTF-8 byte inside a string: both keep the event id.
        return rng.choice([raw[:cut], raw[:cut] + b"\xff" + raw[cut:]])
    else:  # pragma: no cover - the flaw lists are fixed
        raise ValueError(flaw)
    return broken


# -- clickstream ---------------------------------------------------------------------------

SHOP_URL = "https://shop.example.com"
CURRENCY_RATES = {"EUR": 1.0, "USD": 1.08, "GBP": 0.86}
COUNTRIES = {
    "DE": ("EUR", "de-DE"),
    "FR": ("EUR", "fr-FR"),
    "NL": ("EUR", "nl-NL"),
    "US": ("USD", "en-US"),
    "GB": ("GBP", "en-GB"),
}
_CATEGORY_ITEMS = {
    "shoes": (["Trail shoe", "Running shoe", "Leather boot", "Canvas sneaker", "Sandal"], 40, 180),
    "outerwear": (["Rain jacket", "Down parka", "Fleece pullover", "Softshell vest"], 60, 320),
    "bags": (["Daypack 20L", "Messenger bag", "Duffel 60L", "Hip pack"], 25, 160),
    "electronics": (["Headlamp", "GPS watch", "Power bank", "Action camera"], 20, 450),
    "home": (["Enamel mug", "Camping stove", "Wool blanket", "Lantern"], 12, 140),
}
DESKTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
)
MOBILE_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
)
BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
_REFERRERS = {
    "direct": None,
    "search": "https://www.google.com/",
    "social": "https://www.instagram.com/",
    "email": "https://mail.example.net/",
    "paid": "https://www.googleadservices.com/pagead/aclk",
    "other": "https://blog.example.org/best-gear-2026",
}
_MEDIUM_WEIGHTS = {
    "direct": 35,
    "search": 30,
    "social": 12,
    "email": 8,
    "paid": 10,
    "other": 5,
}
_PUBLIC_FIRST_OCTETS = (24, 31, 46, 62, 68, 73, 77, 81, 85, 91, 94, 98, 109, 176, 185, 212, 217)
_REQUIRED = {
    "page_view": ("page_url",),
    "product_view": ("product_id", "price", "currency"),
    "add_to_cart": ("product_id", "quantity", "price", "currency"),
    "checkout_started": ("cart_id", "item_count", "cart_value", "currency"),
    "purchase": ("order_id", "items", "total", "currency"),
    "sensor_reading": ("device_id", "sensor", "value", "unit"),
}
_PRICE_FIELD = {
    "product_view": "price",
    "add_to_cart": "price",
    "checkout_started": "cart_value",
    "purchase": "total",
}


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price_eur: float

    def price(self, currency: str) -> float:
        """The shelf price in ``currency``, ending in .99 like a real shop's."""
        return max(0.99, round(self.price_eur * CURRENCY_RATES[currency]) - 0.01)


def catalogue() -> list[Product]:
    """The shop's fixed catalogue (independent of any seed)."""
    rng = random.Random("tributary-catalogue")
    products = []
    number = 1001
    for category, (names, low, high) in _CATEGORY_ITEMS.items():
        for name in names:
            for variant in ("", " Pro"):
                price = rng.uniform(low, high) * (1.4 if variant else 1.0)
                products.append(Product(f"SKU-{number}", name + variant, category, price))
                number += 1
    return products


@dataclass(frozen=True)
class _User:
    user_id: str | None  # None: never logs in (anonymous, sessions only)
    device: Literal["desktop", "mobile", "bot"]
    user_agent: str
    client_ip: str
    country: str

    @property
    def currency(self) -> str:
        return COUNTRIES[self.country][0]

    @property
    def locale(self) -> str:
        return COUNTRIES[self.country][1]


class ClickstreamSource(_Generator):
    """Shop sessions of ``users`` users: funnels with drop-off, interleaved across users.

    A human session lands on a page (with a referrer), browses categories, may view products,
    add some to the cart, start the checkout and buy: page_view -> product_view ->
    add_to_cart -> checkout_started -> purchase, fewer sessions reaching each step. Bots only
    crawl pages. About a third of users never log in (their events carry a session id only).
    Simulated time advances ``1 / sessions_per_s`` seconds per new session on average and
    seconds to a minute between the events of a session; with ``start=None`` it starts an
    hour ago and is held back so that no event lies in the future.

    Args:
        users: How many distinct users (desktop, mobile and a few bots).
        seed: Seed of every random choice.
        bad_share: Share of events broken on purpose (0 to 1).
        start: Time of the first session (timezone-aware); default an hour ago.
        concurrency: Sessions in progress at once (their events interleave).
        sessions_per_s: Simulated arrival rate of sessions.
        source: The envelope's ``source``.
    """

    payload_flaws = SHOP_PAYLOAD_FLAWS

    def __init__(
        self,
        users: int,
        seed: int,
        bad_share: float = 0.0,
        start: datetime | None = None,
        *,
        concurrency: int = 20,
        sessions_per_s: float = 5.0,
        source: str = "web-shop",
    ) -> None:
        if users < 1:
            raise ValueError("users must be at least 1")
        self.users = users
        self.concurrency = max(1, min(concurrency, users // 2))
        self.sessions_per_s = sessions_per_s
        self.source = source
        self.products = catalogue()
        super().__init__(seed, bad_share, start)

    def _make_users(self) -> list[_User]:
        rng = self.rng
        out = []
        countries = list(COUNTRIES)
        for n in range(self.users):
            device: Literal["desktop", "mobile", "bot"] = rng.choices(
                ("desktop", "mobile", "bot"), weights=[55, 41, 4]
            )[0]
            if device == "bot":
                agent, user_id = rng.choice(BOT_AGENTS), None
            else:
                agents = DESKTOP_AGENTS if device == "desktop" else MOBILE_AGENTS
                agent = rng.choice(agents)
                user_id = f"u-{n + 1:06d}" if rng.random() < 0.65 else None
            if device == "mobile" and rng.random() < 0.3:
                ip = f"2a02:{rng.randrange(0x1000, 0xFFFF):x}:{rng.randrange(0xFFFF):x}::"
                ip += f"{rng.randrange(1, 0xFFFF):x}"
            else:
                ip = ".".join(
                    [str(rng.choice(_PUBLIC_FIRST_OCTETS))]
                    + [str(rng.randrange(256)) for _ in range(2)]
                    + [str(rng.randrange(1, 255))]
                )
            country = rng.choices(countries, weights=[35, 15, 10, 25, 15])[0]
            out.append(_User(user_id, device, agent, ip, country))
        return out

    def __iter__(self) -> Iterator[SourceItem]:
        self._reset()
        users = self._make_users()
        clock = self.start
        active: list[tuple[int, list[Event]]] = []
        busy: set[int] = set()
        while True:
            while len(active) < self.concurrency:
                while True:
                    n = self.rng.randrange(self.users)
                    if n not in busy:
                        break
                clock += timedelta(seconds=self.rng.expovariate(self.sessions_per_s))
                events = self._session(users[n], clock)
                active.append((n, events[::-1]))  # popped from the end
                busy.add(n)
            slot = self.rng.randrange(len(active))
            n, pending = active[slot]
            yield self._maybe_break(pending.pop())
            if not pending:
                active.pop(slot)
                busy.discard(n)

    def _session(self, user: _User, start: datetime) -> list[Event]:
        rng = self.rng
        session_id = _uuid(self.ids)
        logged_in = user.user_id is not None and rng.random() < 0.85
        context: Event = {}
        if logged_in:
            context["user_id"] = user.user_id
        context.update(
            session_id=session_id,
            client_ip=user.client_ip,
            user_agent=user.user_agent,
            device_type=user.device,
            locale=user.locale,
        )
        steps: list[tuple[float, str, Event]] = []  # (seconds after the previous, type, payload)
        previous: list[str | None] = [None]
        # Sessions that carry the medium use page_view 1-0-1 throughout, others 1-0-0.
        modern = rng.random() < 0.6

        def page(path: str, title: str, gap: float, medium: str | None = None) -> None:
            url = SHOP_URL + path
            payload: Event = {"page_url": url, "page_title": f"{title} | Tributary Shop"}
            payload["referrer_url"] = previous[0] if medium is None else _REFERRERS[medium]
            if modern:
                payload["referrer_medium"] = medium or "internal"
            steps.append((gap, PAGE_VIEW_LATEST if modern else PAGE_VIEW_1_0_0, payload))
            previous[0] = url

        currency = user.currency
        if user.device == "bot":
            for i in range(rng.randint(3, 12)):
                product = rng.choice(self.products)
                path, title = (
                    (f"/p/{product.product_id}", product.name)
                    if rng.random() < 0.7
                    else (f"/c/{product.category}", product.category.title())
                )
                page(path, title, rng.uniform(0.3, 2.5), "direct" if i == 0 else None)
            return self._stamp(steps, start, context)

        medium = rng.choices(list(_MEDIUM_WEIGHTS), weights=list(_MEDIUM_WEIGHTS.values()))[0]
        landing = rng.choice(self.products)
        if medium in ("search", "paid") and rng.random() < 0.5:
            page(f"/p/{landing.product_id}", landing.name, 0, medium)
        elif rng.random() < 0.5:
            page(f"/c/{landing.category}", landing.category.title(), 0, medium)
        else:
            page("/", "Home", 0, medium)
        for _ in range(rng.choices([0, 1, 2, 3], weights=[30, 35, 20, 15])[0]):
            category = rng.choice(list(_CATEGORY_ITEMS))
            page(f"/c/{category}", category.title(), rng.uniform(3, 40))

        cart: dict[Product, int] = {}  # one line per product, as a shop's cart has
        if rng.random() < 0.7:
            favourite = landing.category if rng.random() < 0.6 else None
            for _ in range(rng.choices([1, 2, 3, 4], weights=[45, 30, 15, 10])[0]):
                pool = [p for p in self.products if favourite in (None, p.category)]
                product = rng.choice(pool)
                page(f"/p/{product.product_id}", product.name, rng.uniform(4, 45))
                steps.append(
                    (
                        rng.uniform(0.2, 1.5),
                        PRODUCT_VIEW,
                        {
                            "product_id": product.product_id,
                            "product_name": product.name,
                            "category": product.category,
                            "price": product.price(currency),
                            "currency": currency,
                        },
                    )
                )
                if rng.random() < 0.35:
                    quantity = rng.choices([1, 2, 3], weights=[80, 15, 5])[0]
                    cart[product] = cart.get(product, 0) + quantity
                    steps.append(
                        (
                            rng.uniform(5, 60),
                            ADD_TO_CART,
                            {
                                "product_id": product.product_id,
                                "quantity": quantity,
                                "price": product.price(currency),
                                "currency": currency,
                                "cart_id": f"c-{session_id[:8]}",
                            },
                        )
                    )
        if cart and rng.random() < 0.55:
            value = round(sum(p.price(currency) * q for p, q in cart.items()), 2)
            page("/checkout", "Checkout", rng.uniform(5, 40))
            steps.append(
                (
                    rng.uniform(0.2, 1.0),
                    CHECKOUT_STARTED,
                    {
                        "cart_id": f"c-{session_id[:8]}",
                        "item_count": sum(cart.values()),
                        "cart_value": value,
                        "currency": currency,
                    },
                )
            )
            if rng.random() < 0.7:
                steps.append(
                    (
                        rng.uniform(20, 120),
                        PURCHASE,
                        {
                            "order_id": f"o-{_uuid(self.ids)[:13]}",
                            "items": [
                                {
                                    "product_id": p.product_id,
                                    "quantity": q,
                                    "unit_price": p.price(currency),
                                }
                                for p, q in cart.items()
                            ],
                            "total": value,
                            "currency": currency,
                            "payment_method": rng.choices(
                                ["card", "paypal", "bank_transfer", "voucher"],
                                weights=[60, 30, 7, 3],
                            )[0],
                        },
                    )
                )
                page("/order/confirmation", "Thank you", rng.uniform(1, 3))
        return self._stamp(steps, start, context)

    def _stamp(
        self, steps: list[tuple[float, str, Event]], start: datetime, context: Event
    ) -> list[Event]:
        times = []
        ts = start
        for gap, _, _ in steps:
            ts += timedelta(seconds=gap)
            times.append(ts)
        if self.live:
            # Never in the future: shift a session that would end after now back in time.
            excess = times[-1] - datetime.now(UTC)
            if excess > timedelta(0):
                times = [t - excess for t in times]
        return [
            self._envelope(event_type, ts, payload, dict(context))
            for ts, (_, event_type, payload) in zip(times, steps, strict=True)
        ]

    def _applicable(self, event: Event) -> list[str]:
        name = event["event_type"].split("/")[1]
        flaws = ["missing_required"]
        if name in _PRICE_FIELD:
            flaws += ["negative_price", "bad_currency"]
        return flaws

    def _break_payload(self, payload: Event, event_type: str, flaw: str) -> None:
        name = event_type.split("/")[1]
        if flaw == "negative_price":
            field = _PRICE_FIELD[name]
            payload[field] = -abs(payload[field]) - 1
        elif flaw == "bad_currency":
            payload["currency"] = payload["currency"].lower()
        else:
            del payload[self.flaw_rng.choice(_REQUIRED[name])]


# -- IoT -----------------------------------------------------------------------------------

# sensor: (unit, typical value, step of the random walk, device id prefix)
_SENSORS = {
    "temperature": ("celsius", 21.0, 0.3, "thermo"),
    "humidity": ("percent", 45.0, 1.0, "hygro"),
    "pressure": ("hPa", 1013.0, 0.5, "baro"),
    "co2": ("ppm", 600.0, 15.0, "co2"),
    "vibration": ("mm/s", 2.0, 0.2, "vib"),
}
_SITES = ("plant-berlin", "plant-lyon", "warehouse-rotterdam", "office-london")
_FIRMWARE = ("2.3.9", "2.4.0", "2.4.1", "3.0.0-rc2")


@dataclass
class _Device:
    device_id: str
    sensor: str
    unit: str
    value: float
    battery: float | None
    site: str
    firmware: str


class IoTSource(_Generator):
    """Readings of ``devices`` sensors, each reporting every ``interval_s`` seconds.

    Values follow a random walk around a typical level per sensor type; battery-powered
    devices drain slowly, mains-powered ones report no battery level.
    """

    payload_flaws = IOT_PAYLOAD_FLAWS

    def __init__(
        self,
        devices: int,
        seed: int,
        bad_share: float = 0.0,
        start: datetime | None = None,
        *,
        interval_s: float = 60.0,
        source: str = "iot-gateway",
    ) -> None:
        if devices < 1:
            raise ValueError("devices must be at least 1")
        self.devices = devices
        self.interval_s = interval_s
        self.source = source
        super().__init__(seed, bad_share, start)

    def __iter__(self) -> Iterator[SourceItem]:
        self._reset()
        rng = self.rng
        sensors = list(_SENSORS)
        fleet = []
        for n in range(self.devices):
            sensor = rng.choice(sensors)
            unit, level, _, prefix = _SENSORS[sensor]
            battery = rng.uniform(40, 100) if rng.random() < 0.7 else None
            fleet.append(
                _Device(
                    device_id=f"{prefix}-{n + 1:05d}",
                    sensor=sensor,
                    unit=unit,
                    value=level * rng.uniform(0.9, 1.1),
                    battery=battery,
                    site=rng.choice(_SITES),
                    firmware=rng.choice(_FIRMWARE),
                )
            )
        clock = self.start
        step = timedelta(seconds=self.interval_s / self.devices)
        while True:
            for device in fleet:
                clock += step * rng.uniform(0.5, 1.5)
                ts = min(clock, datetime.now(UTC)) if self.live else clock
                _, level, walk, _ = _SENSORS[device.sensor]
                # A random walk pulled back towards the typical level.
                device.value += rng.gauss(0, walk) + (level - device.value) * 0.05
                payload: Event = {
                    "device_id": device.device_id,
                    "sensor": device.sensor,
                    "value": round(device.value, 2),
                    "unit": device.unit,
                }
                if device.battery is not None:
                    device.battery = max(0.0, device.battery - rng.uniform(0, 0.02))
                    payload["battery_pct"] = round(device.battery, 1)
                context = {
                    "device_id": device.device_id,
                    "site": device.site,
                    "firmware": device.firmware,
                }
                yield self._maybe_break(self._envelope(SENSOR_READING, ts, payload, context))

    def _applicable(self, event: Event) -> list[str]:
        flaws = ["missing_required", "unknown_sensor"]
        if "battery_pct" in event["payload"]:
            flaws.append("battery_out_of_range")
        return flaws

    def _break_payload(self, payload: Event, event_type: str, flaw: str) -> None:
        if flaw == "battery_out_of_range":
            payload["battery_pct"] = self.flaw_rng.choice([-5.0, 101.5, 250.0])
        elif flaw == "unknown_sensor":
            payload["sensor"] = "radiation"
        else:
            del payload[self.flaw_rng.choice(_REQUIRED["sensor_reading"])]


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
