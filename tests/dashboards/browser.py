"""Open Superset dashboards in headless Chromium, as a person would, and record what they show."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Response

from resources.settings import SupersetSettings
from tests.chromium import chromium_page

# Selectors of a dashboard's charts, of a chart still loading, and of an error shown in place
# of a chart (Superset 6.x).
CHART = ".dashboard-component-chart-holder"
LOADING = ".dashboard-component-chart-holder .loading, [data-test='loading-indicator']"
ERROR = (
    ".dashboard-component-chart-holder [role='alert'], "
    ".dashboard-component-chart-holder .ant-alert-error, "
    "[data-test='error-alert']"
)
# What a chart that drew something contains: an ECharts canvas, a table, a big number.
DRAWN = "canvas, svg, table, .header-line"
# Superset's empty state, shown in place of a chart whose query returned no rows.
EMPTY = ".dashboard-component-chart-holder .ant-empty"


@dataclass
class DashboardView:
    """What a dashboard showed: its charts, the chart-data answers, errors, the screenshot."""

    charts: int
    drawn: int = 0
    """Charts that drew something (a canvas, a table, a number)."""
    empty: int = 0
    """Charts that show Superset's "no results" state."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The chart-data requests the page sent: the query contexts Superset's front end builds."""
    data_answers: list[dict[str, Any]] = field(default_factory=list)
    failed_answers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def _rison(value: object) -> str:
    """``value`` (dicts and strings) in Rison, the notation of Superset's URL parameters."""
    if isinstance(value, Mapping):
        return "(" + ",".join(f"{_rison(k)}:{_rison(v)}" for k, v in value.items()) + ")"
    text = str(value).replace("!", "!!").replace("'", "!'")
    return f"'{text}'"


def with_native_filter(url: str, filter_id: str, extra_form_data: Mapping[str, str]) -> str:
    """The dashboard's address with a native filter set, as a shared link carries it."""
    value = extra_form_data.get("time_range", "")
    mask = {
        filter_id: {
            "id": filter_id,
            "extraFormData": dict(extra_form_data),
            "filterState": {"value": value},
            "ownState": {},
        }
    }
    return f"{url}?native_filters={urllib.parse.quote(_rison(mask))}"


@contextmanager
def logged_in(settings: SupersetSettings) -> Iterator[Page]:
    """A browser page logged in to Superset through its login form."""
    with chromium_page() as page:
        page.goto(f"{settings.url.rstrip('/')}/login/")
        page.fill("#username", settings.admin_username)
        page.fill("#password", settings.secret("admin_password"))
        page.click("button[type='submit']")
        page.wait_for_url(lambda url: "/login" not in url)
        yield page


def open_dashboard(page: Page, url: str, screenshot: Path, timeout: float = 120) -> DashboardView:
    """Open ``url``, wait until every chart has its data and has rendered, then screenshot."""
    answers: list[Response] = []

    def record(resp: Response) -> None:
        if "/api/v1/chart/data" in resp.url and resp.request.method == "POST":
            answers.append(resp)

    page.on("response", record)
    try:
        page.goto(url)
        page.wait_for_selector(CHART)
        charts = page.locator(CHART).count()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(answers) >= charts and page.locator(LOADING).count() == 0:
                break
            page.wait_for_timeout(500)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1000)  # animations of the ECharts charts
    finally:
        page.remove_listener("response", record)
    holders = page.locator(CHART)
    view = DashboardView(
        charts=charts,
        drawn=sum(holders.nth(i).locator(DRAWN).count() > 0 for i in range(charts)),
        empty=page.locator(EMPTY).count(),
    )
    for resp in answers:
        body = resp.request.post_data_json
        if isinstance(body, dict):
            view.requests.append(body)
        if resp.ok:
            view.data_answers.append(resp.json())
        else:
            view.failed_answers.append(f"{resp.status} {resp.text()[:500]}")
    view.errors = [text for text in page.locator(ERROR).all_inner_texts() if text.strip()]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    view.screenshot = screenshot
    return view
