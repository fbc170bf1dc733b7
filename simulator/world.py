"""The simulated world, once: the shop's catalogue, visitors and funnel, and the plant's sensors.

Both generators read it: ``simulator.events`` (event by event, as producers send events)
and ``simulator.raw_zone`` (vectorised rows of the enriched raw zone). A rate changed here
changes both; ``tests/simulator`` checks that one seed gives the same distributions through
each.

``AGENT_INFO`` is what each simulated browser *is* (family, version, operating system,
device class, bot or not): the enriched raw-zone rows carry it, and a test checks that the
enrichment's user-agent parser reads every agent as this table says.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, NamedTuple

from contract.records import UserAgentInfo

# -- event types ---------------------------------------------------------------------------

SHOP = "iglu:com.tributary.shop"
PAGE_VIEW_1_0_0 = f"{SHOP}/page_view/jsonschema/1-0-0"
PAGE_VIEW_LATEST = f"{SHOP}/page_view/jsonschema/1-0-1"
PRODUCT_VIEW = f"{SHOP}/product_view/jsonschema/1-0-0"
ADD_TO_CART = f"{SHOP}/add_to_cart/jsonschema/1-0-0"
CHECKOUT_STARTED = f"{SHOP}/checkout_started/jsonschema/1-0-0"
PURCHASE = f"{SHOP}/purchase/jsonschema/1-0-0"
SENSOR_READING = "iglu:com.tributary.iot/sensor_reading/jsonschema/1-0-0"
# The funnel's steps, in order (the ``event_name`` of each shop event type).
FUNNEL_STEPS = ("page_view", "product_view", "add_to_cart", "checkout_started", "purchase")

# -- the shop ------------------------------------------------------------------------------

SHOP_URL = "https://shop.example.com"
SHOP_TITLE = "Tributary Shop"
CURRENCY_RATES = {"EUR": 1.0, "USD": 1.08, "GBP": 0.86}  # per euro
RATES_VERSION = "eur-ref-2026.1"


class Country(NamedTuple):
    currency: str
    locale: str
    name: str  # as the enrichment's geo database names it
    weight: int  # share of visitors


COUNTRIES = {
    "DE": Country("EUR", "de-DE", "Germany", 35),
    "FR": Country("EUR", "fr-FR", "France", 15),
    "NL": Country("EUR", "nl-NL", "Netherlands", 10),
    "US": Country("USD", "en-US", "United States of America", 25),
    "GB": Country("GBP", "en-GB", "United Kingdom of Great Britain and Northern Ireland", 15),
}
# category: (product names, lowest and highest price in EUR)
CATEGORY_ITEMS = {
    "shoes": (["Trail shoe", "Running shoe", "Leather boot", "Canvas sneaker", "Sandal"], 40, 180),
    "outerwear": (["Rain jacket", "Down parka", "Fleece pullover", "Softshell vest"], 60, 320),
    "bags": (["Daypack 20L", "Messenger bag", "Duffel 60L", "Hip pack"], 25, 160),
    "electronics": (["Headlamp", "GPS watch", "Power bank", "Action camera"], 20, 450),
    "home": (["Enamel mug", "Camping stove", "Wool blanket", "Lantern"], 12, 140),
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
    for category, (names, low, high) in CATEGORY_ITEMS.items():
        for name in names:
            for variant in ("", " Pro"):
                price = rng.uniform(low, high) * (1.4 if variant else 1.0)
                products.append(Product(f"SKU-{number}", name + variant, category, price))
                number += 1
    return products


# -- visitors ------------------------------------------------------------------------------

Device = Literal["desktop", "mobile", "bot"]
DEVICE_WEIGHTS: dict[Device, int] = {"desktop": 55, "mobile": 41, "bot": 4}
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
AGENTS: dict[Device, tuple[str, ...]] = {
    "desktop": DESKTOP_AGENTS,
    "mobile": MOBILE_AGENTS,
    "bot": BOT_AGENTS,
}


def _agent(browser: str, version: str, os: str | None, os_version: str | None,
           device: str | None, device_class: str) -> UserAgentInfo:  # fmt: skip
    return UserAgentInfo(
        browser_family=browser,
        browser_version=version,
        os_family=os,
        os_version=os_version,
        device_family=device,
        device_class=device_class,
        is_bot=device_class == "bot",
    )


AGENT_INFO: dict[str, UserAgentInfo] = dict(
    zip(
        (*DESKTOP_AGENTS, *MOBILE_AGENTS, *BOT_AGENTS),
        (
            _agent("Chrome", "124.0.0", "Windows", "10", None, "desktop"),
            _agent("Firefox", "126.0", "Windows", "10", None, "desktop"),
            _agent("Safari", "17.4", "Mac OS X", "10.15.7", "Mac", "desktop"),
            _agent("Edge", "124.0.2478", "Windows", "10", None, "desktop"),
            _agent("Chrome", "123.0.0", "Linux", None, None, "desktop"),
            _agent("Mobile Safari", "17.4", "iOS", "17.4", "iPhone", "mobile"),
            _agent("Chrome Mobile", "124.0.6367", "Android", "14", "Pixel 8", "mobile"),
            _agent("Samsung Internet", "24.0", "Android", "13", "Samsung SM-S911B", "mobile"),
            _agent("Mobile Safari", "17.4", "iOS", "17.4", "iPad", "tablet"),
            _agent("Googlebot", "2.1", None, None, "Spider", "bot"),
            _agent("bingbot", "2.0", None, None, "Spider", "bot"),
            _agent("AhrefsBot", "7.0", None, None, "Spider", "bot"),
        ),
        strict=True,
    )
)
ACCOUNT_SHARE = 0.65  # of human visitors have an account (the rest stay anonymous)
LOGIN_SHARE = 0.85  # of an account holder's sessions are logged in
MOBILE_IPV6_SHARE = 0.3
PUBLIC_FIRST_OCTETS = (24, 31, 46, 62, 68, 73, 77, 81, 85, 91, 94, 98, 109, 176, 185, 212, 217)
# medium: (referrer of the landing page, weight)
MEDIA: dict[str, tuple[str | None, int]] = {
    "direct": (None, 35),
    "search": ("https://www.google.com/", 30),
    "social": ("https://www.instagram.com/", 12),
    "email": ("https://mail.example.net/", 8),
    "paid": ("https://www.googleadservices.com/pagead/aclk", 10),
    "other": ("https://blog.example.org/best-gear-2026", 5),
}
PRODUCT_LANDING_MEDIA = ("search", "paid")  # these land on a product page half the time

# -- a session's funnel (each share is of the sessions that reached the step before) --------

MODERN_SHARE = 0.6  # sessions whose page views use page_view 1-0-1 (with the medium)
LANDING_PRODUCT_SHARE = 0.5  # of search and paid sessions
LANDING_CATEGORY_SHARE = 0.5  # of the other sessions (the rest land on the home page)
CATEGORY_PAGES = {0: 30, 1: 35, 2: 20, 3: 15}  # category pages browsed after landing
BROWSE_SHARE = 0.7  # sessions that view products
PRODUCT_VIEWS = {1: 45, 2: 30, 3: 15, 4: 10}
SAME_CATEGORY_SHARE = 0.6  # sessions whose product views stay in the landing category
ADD_TO_CART_SHARE = 0.35  # of product views
QUANTITIES = {1: 80, 2: 15, 3: 5}
CHECKOUT_SHARE = 0.55  # of sessions with a cart
PURCHASE_SHARE = 0.7  # of checkouts
PAYMENT_METHODS = {"card": 60, "paypal": 30, "bank_transfer": 7, "voucher": 3}
BOT_PAGES = (3, 12)  # pages a crawler fetches per session (inclusive)
BOT_PRODUCT_PAGE_SHARE = 0.7  # of a crawler's pages (the rest are category pages)
# Seconds before each kind of step (uniform between the two).
GAP_S = {
    "bot_page": (0.3, 2.5),
    "category_page": (3.0, 40.0),
    "product_page": (4.0, 45.0),
    "product_view": (0.2, 1.5),
    "add_to_cart": (5.0, 60.0),
    "checkout_page": (5.0, 40.0),
    "checkout_started": (0.2, 1.0),
    "purchase": (20.0, 120.0),
    "confirmation_page": (1.0, 3.0),
}

# -- the plant's sensors -------------------------------------------------------------------

# sensor: (unit, typical value, step of the random walk, device id prefix)
SENSORS = {
    "temperature": ("celsius", 21.0, 0.3, "thermo"),
    "humidity": ("percent", 45.0, 1.0, "hygro"),
    "pressure": ("hPa", 1013.0, 0.5, "baro"),
    "co2": ("ppm", 600.0, 15.0, "co2"),
    "vibration": ("mm/s", 2.0, 0.2, "vib"),
}
SITES = ("plant-berlin", "plant-lyon", "warehouse-rotterdam", "office-london")
FIRMWARE = ("2.3.9", "2.4.0", "2.4.1", "3.0.0-rc2")
