from __future__ import annotations

import json

import numpy as np
import pytest

from contract.records import MoneyInfo
from enrichment.config import DEFAULT_GEO_DATABASE, DEFAULT_MODEL_DIR, DEFAULT_RATES
from enrichment.currency import RateTable, normalise_money
from enrichment.geo import GeoDatabase
from enrichment.model import FEATURES, BotModel, EventView, artefact_paths, features, sha256
from enrichment.train import dataset
from enrichment.user_agent import parse_user_agent

pytestmark = pytest.mark.unit

# (user agent, browser family, os family, device class, is_bot)
AGENTS = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Chrome",
        "Windows",
        "desktop",
        False,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        "Safari",
        "Mac OS X",
        "desktop",
        False,
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
        "Firefox",
        "Ubuntu",
        "desktop",
        False,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "iOS",
        "mobile",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "Samsung Internet",
        "Android",
        "mobile",
        False,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "iOS",
        "tablet",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Chrome",
        "Android",
        "tablet",
        False,
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot",
        None,
        "bot",
        True,
    ),
    (
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "bingbot",
        None,
        "bot",
        True,
    ),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", None, None, "bot", True),
    ("curl/8.5.0", "curl", None, "bot", True),
    ("python-requests/2.32.3", "Python Requests", None, "bot", True),
    ("something odd", None, None, "other", False),
]


@pytest.mark.parametrize(("ua", "browser", "os", "device_class", "is_bot"), AGENTS)
def test_user_agents(
    ua: str, browser: str | None, os: str | None, device_class: str, is_bot: bool
) -> None:
    info = parse_user_agent(ua)
    assert info is not None
    if browser is not None:
        assert info.browser_family == browser
    if os is not None:
        assert info.os_family == os
    assert info.device_class == device_class
    assert info.is_bot is is_bot


def test_no_user_agent() -> None:
    assert parse_user_agent(None) is None
    assert parse_user_agent("  ") is None


@pytest.fixture(scope="module")
def geo() -> GeoDatabase:
    return GeoDatabase(DEFAULT_GEO_DATABASE)


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),  # Google public DNS
        ("1.1.1.1", "AU"),  # APNIC/Cloudflare, registered in AU
        ("193.0.6.139", "NL"),  # RIPE NCC
        ("2001:67c:2e8:22::c100:68b", "NL"),  # RIPE NCC over IPv6
        ("::ffff:8.8.8.8", "US"),  # IPv4-mapped
    ],
)
def test_geo_public(geo: GeoDatabase, ip: str, country: str) -> None:
    info = geo.lookup(ip)
    assert info is not None
    assert info.country_code == country
    assert info.country_name
    assert "geo-whois-asn-country" in info.source and "NRO" in info.source


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "100.64.0.1",
        "0.0.0.0",
        "not-an-ip",
        "",
        None,
    ],
)
def test_geo_none_for_private_and_invalid(geo: GeoDatabase, ip: str | None) -> None:
    assert geo.lookup(ip) is None


def test_geo_batch_keeps_order(geo: GeoDatabase) -> None:
    got = geo.lookup_many(["8.8.8.8", None, "10.0.0.1", "193.0.6.139"])
    assert [g.country_code if g else None for g in got] == ["US", None, None, "NL"]


@pytest.fixture(scope="module")
def rates() -> RateTable:
    return RateTable.from_file(DEFAULT_RATES)


def test_rate_table(rates: RateTable) -> None:
    assert rates.version == "eur-ref-2026.1"
    assert rates.rates["EUR"] == 1.0
    assert rates.to_eur(108.0, "USD") == pytest.approx(100.0)
    assert rates.to_eur(86.0, "GBP") == pytest.approx(100.0)
    assert rates.to_eur(1.0, "XYZ") is None


def test_money_fields(rates: RateTable) -> None:
    payload = {
        "items": [{"product_id": "a", "quantity": 2, "unit_price": 21.6}],
        "total": 43.2,
        "currency": "USD",
    }
    money = [MoneyInfo.model_validate(m) for m in normalise_money(payload, rates)]
    assert [(m.field, m.amount_eur) for m in money] == [  # type: ignore[comparison-overlap]
        ("/items/0/unit_price", pytest.approx(20.0)),
        ("/total", pytest.approx(40.0)),
    ]
    assert all(m.rates_version == "eur-ref-2026.1" and m.currency == "USD" for m in money)
    assert normalise_money({"cart_value": 10, "currency": "EUR"}, rates)[0]["amount_eur"] == 10


@pytest.mark.parametrize(
    "payload",
    [
        {"price": 10, "currency": "XYZ"},  # unknown currency
        {"price": 10},  # no currency
        {"price": "10", "currency": "EUR"},  # not a number
        {"price": True, "currency": "EUR"},
        {"page_url": "https://x/"},
    ],
)
def test_money_skipped(rates: RateTable, payload: dict[str, object]) -> None:
    assert normalise_money(payload, rates) == []


@pytest.fixture(scope="module")
def model() -> BotModel:
    return BotModel(DEFAULT_MODEL_DIR)


def test_artefact_and_card(model: BotModel) -> None:
    path, card_path = artefact_paths(DEFAULT_MODEL_DIR, "bot_score")
    card = json.loads(card_path.read_text())
    assert model.version == f"bot_score-{card['version']}" == "bot_score-1.0.0"
    assert card["sha256"] == sha256(path)
    assert card["training_data"]["seed"] == 7
    assert tuple(card["features"]) == FEATURES
    assert path.stat().st_size < 100_000


def test_model_separates_bots_on_held_out_data(model: BotModel) -> None:
    from sklearn.metrics import roc_auc_score

    for spoof in (0.0, 1.0):  # as generated, and every bot with a browser's user agent
        x, y = dataset(seed=4242, events=8000, users=1500, spoof_share=spoof)
        p = model.estimator.predict_proba(x)[:, 1]
        assert ((p >= 0) & (p <= 1)).all()
        assert y.sum() > 50
        assert roc_auc_score(y, p) > 0.95
        assert np.mean((p >= 0.5) == y) > 0.9


def test_features_of_a_batch() -> None:
    """Each column as defined, the session columns over the batch's events of each session."""
    chrome = AGENTS[0][0]
    crawler = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

    def view(kind: str, ts: str | None, ua: str | None, **context: str) -> EventView:
        return EventView(
            event_type=f"iglu:com.tributary.shop/{kind}/jsonschema/1-0-0",
            event_timestamp=ts,
            payload={"page_url": "https://shop.example.com/p/bag", "referrer_url": "x"}
            if kind == "page_view"
            else {"price": 1},
            context=context,
            user_agent=parse_user_agent(ua),
            user_agent_string=ua,
        )

    batch = [
        view("page_view", "2026-11-28T10:00:00Z", chrome, session_id="s", user_id="u"),
        view("purchase", "2026-11-28T10:00:06+00:00", chrome, session_id="s"),
        view("product_view", "2026-11-28T10:00:02Z", chrome, session_id="s"),
        view("page_view", None, crawler, session_id="t"),
        view("add_to_cart", "2026-11-28T10:00:00Z", None),
    ]
    x = features(batch)
    assert x.shape == (5, len(FEATURES)) and x.dtype == np.float64
    col = {name: x[:, i].tolist() for i, name in enumerate(FEATURES)}
    assert col["ua_missing"] == [0, 0, 0, 0, 1]
    assert col["ua_is_bot"] == [0, 0, 0, 1, 0]
    assert col["ua_desktop"] == [1, 1, 1, 0, 0]
    assert col["ua_compatible_token"] == [0, 0, 0, 1, 0]
    assert col["has_user_id"] == [1, 0, 0, 0, 0]
    assert col["is_page_view"] == [1, 0, 0, 1, 0]
    assert col["is_commerce"] == [0, 1, 1, 0, 1]
    assert col["page_is_product"] == [1, 0, 0, 1, 0]
    assert col["has_referrer"] == [1, 0, 0, 1, 0]
    # Session s: three events, gaps of 2 s and 4 s (in time order, not batch order).
    assert col["session_events_in_batch_log"] == pytest.approx([np.log1p(3)] * 3 + [np.log1p(1), 0])
    assert col["session_has_gap"] == [1, 1, 1, 0, 0]
    assert col["session_median_gap_log_s"] == pytest.approx([np.log1p(3)] * 3 + [0, 0])
    assert features([]).shape == (0, len(FEATURES))
