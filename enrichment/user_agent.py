"""User-agent parsing with ``ua-parser`` (the uap-core regexes it bundles, Apache-2.0).

``ua-parser`` gives the browser, OS and device families; the device class and the bot flag are
derived here: uap-core names crawlers' device family ``Spider``, and a short list of tokens
catches scripted clients it leaves as ``Other`` (curl, python-requests, headless browsers).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ua_parser import parse

from contract.records import UserAgentInfo

_BOT_TOKENS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrape|headless|phantomjs|python-|curl/|wget/|"
    r"go-http-client|java/|okhttp|libwww|httpclient|facebookexternalhit|monitor|preview",
    re.IGNORECASE,
)
_TABLET_DEVICES = re.compile(r"ipad|tablet|kindle|silk|playbook|nexus (7|9|10)|sm-t\d", re.I)
_MOBILE_OS = {"Android", "iOS", "Windows Phone", "BlackBerry OS", "KaiOS", "HarmonyOS"}
_DESKTOP_OS = {"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD"}


def _version(*parts: str | None) -> str | None:
    present = [p for p in parts if p]
    return ".".join(present) if present else None


@lru_cache(maxsize=4096)
def parse_user_agent(ua: str | None) -> UserAgentInfo | None:
    """Parse one user-agent string; ``None`` when there is none."""
    if ua is None or not ua.strip():
        return None
    ua = ua[:1024]
    result = parse(ua)
    browser, os, device = result.user_agent, result.os, result.device
    device_family = device.family if device else None
    os_family = os.family if os else None
    is_bot = device_family == "Spider" or bool(_BOT_TOKENS.search(ua))
    if is_bot:
        device_class = "bot"
    elif (device_family and _TABLET_DEVICES.search(device_family)) or _TABLET_DEVICES.search(ua):
        device_class = "tablet"
    elif os_family == "Android" and "Mobile" not in ua:
        device_class = "tablet"  # Android tablets drop the "Mobile" token
    elif os_family in _MOBILE_OS or "Mobile" in ua:
        device_class = "mobile"
    elif os_family in _DESKTOP_OS:
        device_class = "desktop"
    else:
        device_class = "other"
    return UserAgentInfo(
        browser_family=browser.family if browser else None,
        browser_version=_version(browser.major, browser.minor, browser.patch) if browser else None,
        os_family=os_family,
        os_version=_version(os.major, os.minor, os.patch) if os else None,
        device_family=device_family,
        device_class=device_class,
        is_bot=is_bot,
    )
