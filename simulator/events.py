"""Seeded event-by-event generators of the simulated world, as producers send events.

Every generator is an iterable of events in the envelope format (``docs/event-contract.md``):
dicts, or ``bytes`` for an event that is deliberately not JSON at all (the emitter sends
those bytes as they are).

Generators (``ClickstreamSource``, ``IoTSource``) are deterministic: the same seed, start and
``until`` give the same bytes, and each ``iter()`` starts over. Event ids come from a random
generator seeded with the generator's kind, the seed *and* the time window, so a second run
with ``start=None`` (anchored at the current time), or with ``until`` at the current time,
does not reuse the ids of the first. ``until`` bounds the generated time: a session that
would end after it is moved back so that it ends there (with ``start=None`` the bound is the
current time). To spread ``n`` events over a window, ``ClickstreamSource.sessions_per_s_for``
and ``IoTSource.interval_s_for`` give the rates. With ``bad_share`` > 0 that share of
events is broken on purpose; ``flaws`` counts them by kind (``COLLECTOR_FLAWS`` are refused
by the collector, the payload flaws by the enricher's schema check).

The world they simulate (catalogue, visitors, funnel rates, sensors) is ``simulator.world``.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from contract.envelope import EventDict as Event
from contract.envelope import SourceItem, rfc3339
from simulator.world import (
    ACCOUNT_SHARE,
    ADD_TO_CART,
    ADD_TO_CART_SHARE,
    BOT_AGENTS,
    BOT_PAGES,
    BOT_PRODUCT_PAGE_SHARE,
    BROWSE_SHARE,
    CATEGORY_ITEMS,
    CATEGORY_PAGES,
    CHECKOUT_SHARE,
    CHECKOUT_STARTED,
    COUNTRIES,
    DESKTOP_AGENTS,
    DEVICE_WEIGHTS,
    FIRMWARE,
    GAP_S,
    LANDING_CATEGORY_SHARE,
    LANDING_PRODUCT_SHARE,
    LOGIN_SHARE,
    MEDIA,
    MOBILE_AGENTS,
    MOBILE_IPV6_SHARE,
    MODERN_SHARE,
    PAGE_VIEW_1_0_0,
    PAGE_VIEW_LATEST,
    PAYMENT_METHODS,
    PRODUCT_LANDING_MEDIA,
    PRODUCT_VIEW,
    PRODUCT_VIEWS,
    PUBLIC_FIRST_OCTETS,
    PURCHASE,
    PURCHASE_SHARE,
    QUANTITIES,
    SAME_CATEGORY_SHARE,
    SENSOR_READING,
    SENSORS,
    SHOP_TITLE,
    SHOP_URL,
    SITES,
    Device,
    Product,
    catalogue,
)

# Flaws the collector refuses (dead-lettered there) ...
COLLECTOR_FLAWS = ("bad_uuid", "unknown_type", "naive_timestamp", "payload_not_object", "not_json")
# ... and flaws only the payload schema refuses (the collector accepts them).
SHOP_PAYLOAD_FLAWS = ("negative_price", "missing_required", "bad_currency")
IOT_PAYLOAD_FLAWS = ("battery_out_of_range", "missing_required", "unknown_sensor")

# Without an explicit start, generated time begins this long before now.
DEFAULT_LOOKBACK = timedelta(hours=1)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class _Generator:
    """Shared state of the seeded generators: clocks, id stream, flaws."""

    source: str
    payload_flaws: tuple[str, ...] = ()

    def __init__(
        self, seed: int, bad_share: float, start: datetime | None, until: datetime | None = None
    ) -> None:
        if not 0.0 <= bad_share <= 1.0:
            raise ValueError(f"bad_share must be between 0 and 1, not {bad_share}")
        for name, moment in (("start", start), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")
        if start is not None and until is not None and until <= start:
            raise ValueError("until must be after start")
        self.seed = seed
        self.bad_share = bad_share
        self.live = start is None
        self.start = start if start is not None else datetime.now(UTC) - DEFAULT_LOOKBACK
        self.until = until
        self.flaws: Counter[str] = Counter()
        self._reset()

    def _limit(self) -> datetime | None:
        """The latest time an event may carry (now, when anchored at the current time)."""
        return self.until if self.until is not None or not self.live else datetime.now(UTC)

    def _reset(self) -> None:
        self.rng = random.Random(self.seed)
        window = self.start.isoformat()
        if self.until is not None:
            window += f"/{self.until.isoformat()}"
        # The generator's kind too: a shop and sensors of one seed and window, as the demo
        # runs them, must not draw the same event ids.
        self.ids = random.Random(f"{type(self).__name__}/{self.seed}/{window}")
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


# Fields a payload flaw may remove, and the amount a price flaw turns negative.
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


# -- clickstream ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    user_id: str | None  # None: never logs in (anonymous, sessions only)
    device: Device
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
    hour ago and is held back so that no event lies in the future (or after ``until``).

    Args:
        users: How many distinct users (desktop, mobile and a few bots).
        seed: Seed of every random choice.
        bad_share: Share of events broken on purpose (0 to 1).
        start: Time of the first session (timezone-aware); default an hour ago.
        until: No event after this time (timezone-aware); default: now if ``start`` is None,
            else no bound.
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
        until: datetime | None = None,
        concurrency: int = 20,
        sessions_per_s: float = 5.0,
        source: str = "web-shop",
    ) -> None:
        if users < 1:
            raise ValueError("users must be at least 1")
        if sessions_per_s <= 0:
            raise ValueError("sessions_per_s must be positive")
        self.users = users
        self.concurrency = max(1, min(concurrency, users // 2))
        self.sessions_per_s = sessions_per_s
        self.source = source
        self.products = catalogue()
        super().__init__(seed, bad_share, start, until)

    @classmethod
    def events_per_session(cls, seed: int = 0, sessions: int = 2000) -> float:
        """The mean number of events in a session of the simulated shop (a pilot sample)."""
        pilot = cls(users=sessions, seed=seed, start=datetime(2026, 1, 1, tzinfo=UTC))
        users = pilot._make_users()
        return sum(len(pilot._session(user, pilot.start)) for user in users) / len(users)

    @classmethod
    def sessions_per_s_for(cls, events: int, span: timedelta, fill: float = 0.99) -> float:
        """The arrival rate at which ``events`` events fill ``fill`` of ``span`` of time.

        At the default rate, 50,000 events cover about 20 minutes. ``fill`` leaves room for
        the estimate's error (the mean session length is a pilot's); a session that would
        still run past ``until`` is moved back to end there.
        """
        if events < 1 or span <= timedelta(0):
            raise ValueError("events and span must be positive")
        sessions = events / cls.events_per_session()
        return sessions / (span.total_seconds() * fill)

    def _make_users(self) -> list[_User]:
        rng = self.rng
        out = []
        countries = list(COUNTRIES)
        for n in range(self.users):
            device: Device = rng.choices(
                list(DEVICE_WEIGHTS), weights=list(DEVICE_WEIGHTS.values())
            )[0]
            if device == "bot":
                agent, user_id = rng.choice(BOT_AGENTS), None
            else:
                agents = DESKTOP_AGENTS if device == "desktop" else MOBILE_AGENTS
                agent = rng.choice(agents)
                user_id = f"u-{n + 1:06d}" if rng.random() < ACCOUNT_SHARE else None
            if device == "mobile" and rng.random() < MOBILE_IPV6_SHARE:
                ip = f"2a02:{rng.randrange(0x1000, 0xFFFF):x}:{rng.randrange(0xFFFF):x}::"
                ip += f"{rng.randrange(1, 0xFFFF):x}"
            else:
                ip = ".".join(
                    [str(rng.choice(PUBLIC_FIRST_OCTETS))]
                    + [str(rng.randrange(256)) for _ in range(2)]
                    + [str(rng.randrange(1, 255))]
                )
            country = rng.choices(countries, weights=[c.weight for c in COUNTRIES.values()])[0]
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
        logged_in = user.user_id is not None and rng.random() < LOGIN_SHARE
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
        modern = rng.random() < MODERN_SHARE

        def page(path: str, title: str, gap: float, medium: str | None = None) -> None:
            url = SHOP_URL + path
            payload: Event = {"page_url": url, "page_title": f"{title} | {SHOP_TITLE}"}
            payload["referrer_url"] = previous[0] if medium is None else MEDIA[medium][0]
            if modern:
                payload["referrer_medium"] = medium or "internal"
            steps.append((gap, PAGE_VIEW_LATEST if modern else PAGE_VIEW_1_0_0, payload))
            previous[0] = url

        currency = user.currency
        if user.device == "bot":
            for i in range(rng.randint(*BOT_PAGES)):
                product = rng.choice(self.products)
                path, title = (
                    (f"/p/{product.product_id}", product.name)
                    if rng.random() < BOT_PRODUCT_PAGE_SHARE
                    else (f"/c/{product.category}", product.category.title())
                )
                page(path, title, rng.uniform(*GAP_S["bot_page"]), "direct" if i == 0 else None)
            return self._stamp(steps, start, context)

        medium = rng.choices(list(MEDIA), weights=[w for _, w in MEDIA.values()])[0]
        landing = rng.choice(self.products)
        if medium in PRODUCT_LANDING_MEDIA and rng.random() < LANDING_PRODUCT_SHARE:
            page(f"/p/{landing.product_id}", landing.name, 0, medium)
        elif rng.random() < LANDING_CATEGORY_SHARE:
            page(f"/c/{landing.category}", landing.category.title(), 0, medium)
        else:
            page("/", "Home", 0, medium)
        for _ in range(rng.choices(list(CATEGORY_PAGES), weights=list(CATEGORY_PAGES.values()))[0]):
            category = rng.choice(list(CATEGORY_ITEMS))
            page(f"/c/{category}", category.title(), rng.uniform(*GAP_S["category_page"]))

        cart: dict[Product, int] = {}  # one line per product, as a shop's cart has
        if rng.random() < BROWSE_SHARE:
            favourite = landing.category if rng.random() < SAME_CATEGORY_SHARE else None
            for _ in range(
                rng.choices(list(PRODUCT_VIEWS), weights=list(PRODUCT_VIEWS.values()))[0]
            ):
                pool = [p for p in self.products if favourite in (None, p.category)]
                product = rng.choice(pool)
                page(f"/p/{product.product_id}", product.name, rng.uniform(*GAP_S["product_page"]))
                steps.append(
                    (
                        rng.uniform(*GAP_S["product_view"]),
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
                if rng.random() < ADD_TO_CART_SHARE:
                    quantity = rng.choices(list(QUANTITIES), weights=list(QUANTITIES.values()))[0]
                    cart[product] = cart.get(product, 0) + quantity
                    steps.append(
                        (
                            rng.uniform(*GAP_S["add_to_cart"]),
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
        if cart and rng.random() < CHECKOUT_SHARE:
            value = round(sum(p.price(currency) * q for p, q in cart.items()), 2)
            page("/checkout", "Checkout", rng.uniform(*GAP_S["checkout_page"]))
            steps.append(
                (
                    rng.uniform(*GAP_S["checkout_started"]),
                    CHECKOUT_STARTED,
                    {
                        "cart_id": f"c-{session_id[:8]}",
                        "item_count": sum(cart.values()),
                        "cart_value": value,
                        "currency": currency,
                    },
                )
            )
            if rng.random() < PURCHASE_SHARE:
                steps.append(
                    (
                        rng.uniform(*GAP_S["purchase"]),
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
                                list(PAYMENT_METHODS), weights=list(PAYMENT_METHODS.values())
                            )[0],
                        },
                    )
                )
                page("/order/confirmation", "Thank you", rng.uniform(*GAP_S["confirmation_page"]))
        return self._stamp(steps, start, context)

    def _stamp(
        self, steps: list[tuple[float, str, Event]], start: datetime, context: Event
    ) -> list[Event]:
        times = []
        ts = start
        for gap, _, _ in steps:
            ts += timedelta(seconds=gap)
            times.append(ts)
        limit = self._limit()
        if limit is not None:
            # Never in the future (or after until): shift a session that would end after it
            # back in time.
            excess = times[-1] - limit
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

    With ``start=None`` the readings begin an hour ago and none lies in the future; with
    ``until``, none lies after it.

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
        until: datetime | None = None,
        interval_s: float = 60.0,
        source: str = "iot-gateway",
    ) -> None:
        if devices < 1:
            raise ValueError("devices must be at least 1")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.devices = devices
        self.interval_s = interval_s
        self.source = source
        super().__init__(seed, bad_share, start, until)

    @staticmethod
    def interval_s_for(readings: int, devices: int, span: timedelta) -> float:
        """The reporting interval at which ``devices`` devices send ``readings`` over ``span``."""
        if readings < 1 or devices < 1 or span <= timedelta(0):
            raise ValueError("readings, devices and span must be positive")
        return span.total_seconds() * devices / readings

    def __iter__(self) -> Iterator[SourceItem]:
        self._reset()
        rng = self.rng
        sensors = list(SENSORS)
        fleet = []
        for n in range(self.devices):
            sensor = rng.choice(sensors)
            unit, level, _, prefix = SENSORS[sensor]
            battery = rng.uniform(40, 100) if rng.random() < 0.7 else None
            fleet.append(
                _Device(
                    device_id=f"{prefix}-{n + 1:05d}",
                    sensor=sensor,
                    unit=unit,
                    value=level * rng.uniform(0.9, 1.1),
                    battery=battery,
                    site=rng.choice(SITES),
                    firmware=rng.choice(FIRMWARE),
                )
            )
        clock = self.start
        step = timedelta(seconds=self.interval_s / self.devices)
        while True:
            for device in fleet:
                clock += step * rng.uniform(0.5, 1.5)
                limit = self._limit()
                ts = clock if limit is None else min(clock, limit)
                _, level, walk, _ = SENSORS[device.sensor]
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
