"""Both dashboards on real servers show the data underneath them, and a browser sees it.

A curated lake of the module's own (``lake_on_stack``: several days, Dagster assets into the
REST catalog, mounted in Trino as a catalog of its own) and a stream run (``pipeline_rig``:
events over HTTP into indices of its own) feed the reporting views, which
``reporting_views_job`` creates. The bundle is then provisioned with connections to that
catalog, and:

- for every chart, ``GET /api/v1/chart/<id>/data/`` (the saved query context) returns the
  values Trino returns for the chart's question asked directly of the views;
- the totals agree with what the lake and the stream did (revenue of the marts, events and
  dead letters the reconciliation counted);
- headless Chromium logs in, opens each dashboard, finds no chart in error and every chart
  drawn with data, and saves a screenshot under ``test-artefacts/dashboards/`` (the README's
  pictures: ``docs/images``);
- each dashboard's time-range filter reaches every chart: opened with a range that holds no
  data, every chart asks for that range and shows nothing.

The Superset connections are restored to the platform's settings at the end.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import pytest

from platform_assets.definitions import build_definitions
from platform_assets.reporting.views import LAKE_VIEWS, LIVE_VIEWS
from resources.settings import PlatformSettings
from resources.superset import SupersetClient
from resources.trino import run_trino
from stack.dashboards import BundleAssets, dashboard_urls, load_bundle, provision_dashboards
from streaming.reconcile import Reconciler
from tests.chromium import ARTEFACTS as TEST_ARTEFACTS
from tests.dashboards.browser import logged_in, open_dashboard, with_native_filter
from tests.pipeline_rig import Feed, settle, start_rig
from tests.platform_assets.lake_on_stack import CuratedLake, curated_lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAKE_EVENTS = 6_000  # a day, on each of LAKE_DAYS days
LAKE_DAYS = 5
STREAM_EVENTS = 600
STREAM_RATE = 20.0  # events/s: arrivals over half a minute, several of the latency's buckets
ARTEFACTS = TEST_ARTEFACTS / "dashboards"


@dataclass
class Reporting:
    settings: PlatformSettings
    """Lake catalog and index prefix of this module; the bundle is provisioned with them."""
    lake: CuratedLake
    events: int
    """Events the reconciliation found enriched (and so in the real-time index)."""
    dead_letters: dict[tuple[str, str], int]
    """Dead letters of the collector and the enricher, by stage and reason."""


@pytest.fixture(scope="module")
def reporting(
    kafka: PlatformSettings, superset: PlatformSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reporting]:
    with curated_lake(superset, LAKE_EVENTS, days=LAKE_DAYS) as lake:
        rig = start_rig(kafka, lake.settings, tmp_path_factory.mktemp("rig"))
        try:
            with Reconciler(rig.settings) as reconciler:
                stats = Feed(rig, STREAM_EVENTS, STREAM_RATE, seed=23).start().join()
                result = settle(reconciler, rig, producers=[stats])
        finally:
            rig.pipeline.stop()
        assert result.settled, result.problems()
        enriched = set(result.enriched) & set(result.accepted)
        dead = set(result.enriched_dead_letters) & set(result.accepted)
        assert enriched and dead, "the feed should yield events and dead letters"
        assert result.collector_dead_letters, "the feed should break some envelopes"
        letters = {
            **{("enricher", str(k)): v for k, v in result.enriched_dead_letter_reasons.items()},
            **{("collector", str(k)): v for k, v in result.collector_dead_letters.items()},
        }
        settings = lake.settings.model_copy(
            update={
                "search": lake.settings.search.model_copy(
                    update={"index_prefix": rig.settings.search.index_prefix}
                )
            }
        )
        job = build_definitions(settings).get_job_def("reporting_views_job")
        views = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
        assert views.success
        provision_dashboards(settings)
        try:
            yield Reporting(settings, lake, len(enriched), letters)
        finally:
            provision_dashboards(superset)


def _ms(value: object) -> object:
    """A temporal value as Superset's JSON answers carry it: milliseconds since the epoch."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    return value


def _same(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def _rows_equal(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    if len(got) != len(want):
        return False
    return all(
        len(g) == len(w) and all(_same(x, y) for x, y in zip(g, w, strict=True))
        for g, w in zip(sorted(got, key=repr), sorted(want, key=repr), strict=True)
    )


# Five-second buckets of arrival, as Trino's time grain PT5S in Superset makes them.
_FIVE_SECONDS = (
    "date_trunc('second', received_at) - interval '1' second * (second(received_at) % 5)"
)

# Each chart's question asked of the views directly. "series" charts (time series, pivoted by
# Superset) are compared as (x, series, value) triples; "rows" charts row by row, columns in the
# order of the chart's answer.
EXPECTED: dict[str, tuple[str, str]] = {
    "daily_sessions": (
        "series",
        "select date, 'Sessions', sum(sessions) from reporting.daily_kpis group by 1",
    ),
    "revenue_per_day": (
        "series",
        "select date, 'Revenue (EUR)', sum(revenue_eur) from reporting.daily_kpis group by 1",
    ),
    "total_revenue": ("rows", "select sum(revenue_eur) from reporting.daily_kpis"),
    "funnel_conversion": (
        "rows",
        "select s.step, s.sessions from (select sum(funnel_page_view) as a, "
        "sum(funnel_product_view) as b, sum(funnel_add_to_cart) as c, "
        "sum(funnel_checkout_started) as d, sum(funnel_purchase) as e "
        "from reporting.daily_kpis) cross join unnest(array['page view', 'product view', "
        "'add to cart', 'checkout started', 'purchase'], array[a, b, c, d, e]) "
        "as s (step, sessions)",
    ),
    "top_products": (
        "rows",
        "select product_name, category, sum(revenue_eur), sum(units) from reporting.top_products "
        "group by 1, 2 order by 3 desc limit 10",
    ),
    "new_vs_returning_users": (
        "series",
        "select date, 'New users', sum(new_users) from reporting.user_mix group by 1 "
        "union all select date, 'Returning users', sum(returning_users) "
        "from reporting.user_mix group by 1",
    ),
    "live_events_total": ("rows", "select sum(events) from reporting.live_events_per_minute"),
    "live_events_per_minute": (
        "series",
        "select minute, event_name, sum(events) from reporting.live_events_per_minute "
        "group by 1, 2",
    ),
    "live_dead_letters_by_reason": (
        "series",
        "select reason, stage, sum(dead_letters) from reporting.live_dead_letters_by_reason "
        "group by 1, 2",
    ),
    "live_ingest_latency": (
        "series",
        " union all ".join(
            f"select {_FIVE_SECONDS}, '{label}', {aggregate} "
            "from reporting.live_ingest_latency group by 1"
            for label, aggregate in (
                ("p50 (ms)", "approx_percentile(latency_ms, 0.5)"),
                ("p95 (ms)", "approx_percentile(latency_ms, 0.95)"),
                ("max (ms)", "max(latency_ms)"),
            )
        ),
    ),
}


def _as_series(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A pivoted time-series answer as (x, series, value) triples, empty cells left out."""
    x, *series = answer["colnames"]
    return [
        (row[x], name, row[name])
        for row in answer["data"]
        for name in series
        if row[name] is not None
    ]


def _asked_columns(chart: str) -> list[str]:
    """The dimensions and metrics a chart's saved query asks for, in order (a pie's answer
    carries its share of the total besides)."""
    context = json.loads(load_bundle()[f"charts/{chart}.yaml"]["query_context"])
    [query] = context["queries"]
    columns = [c if isinstance(c, str) else c["label"] for c in query["columns"]]
    return [*columns, *(m["label"] for m in query["metrics"])]


def _chart_ids(client: SupersetClient) -> dict[str, int]:
    """Chart file stem → the chart's id in Superset."""
    ids = {str(row["uuid"]): row["id"] for row in client.list_all("chart", ["id", "uuid"])}
    return {
        name.removeprefix("charts/").removesuffix(".yaml"): ids[str(content["uuid"])]
        for name, content in load_bundle().items()
        if name.startswith("charts/")
    }


def test_every_chart_answers_what_trino_answers(reporting: Reporting) -> None:
    trino = reporting.settings.trino
    with SupersetClient(reporting.settings.superset) as client:
        charts = _chart_ids(client)
        assert set(charts) == set(EXPECTED), "every chart of the bundle has its expected query"
        for name, chart_id in charts.items():
            shape, sql = EXPECTED[name]
            [answer] = client.chart_data(chart_id)
            assert answer["status"] == "success", (name, answer.get("error"))
            want = [
                tuple(_ms(v) for v in row)
                for row in run_trino(trino, sql, catalog=trino.iceberg_catalog).rows
            ]
            assert want and all(v is not None for row in want for v in row), name
            if shape == "series":
                got = _as_series(answer)
            else:
                asked = _asked_columns(name)
                got = [tuple(row[c] for c in asked) for row in answer["data"]]
            assert _rows_equal(got, want), (name, got[:5], want[:5])


def test_the_charts_totals_are_what_the_lake_and_the_stream_hold(reporting: Reporting) -> None:
    kpis = reporting.lake.mart("agg_daily_kpis")
    with SupersetClient(reporting.settings.superset) as client:
        charts = _chart_ids(client)

        def single(name: str) -> Any:
            [answer] = client.chart_data(charts[name])
            [row] = answer["data"]
            return next(iter(row.values()))

        assert math.isclose(single("total_revenue"), kpis["revenue_eur"].sum(), abs_tol=0.01)
        assert single("live_events_total") == reporting.events
        [letters] = client.chart_data(charts["live_dead_letters_by_reason"])
        by_reason = {(stage, reason): n for reason, stage, n in _as_series(letters)}
        # The collector's refusals too, as many as it wrote to its dead-letter topic.
        assert by_reason == reporting.dead_letters
        [sessions] = client.chart_data(charts["daily_sessions"])
        assert len(sessions["data"]) == len(reporting.lake.days) == LAKE_DAYS
        [events] = client.chart_data(charts["live_events_per_minute"])
        # Legends name the event (page_view), not its schema's URI.
        _minute, *series = events["colnames"]
        assert series and not [name for name in series if "iglu:" in name], series
    # The views the charts read are the ones Dagster created, all of them.
    listed = run_trino(
        reporting.settings.trino,
        "select table_name from information_schema.views where table_schema = 'reporting'",
        catalog=reporting.settings.trino.iceberg_catalog,
    ).rows
    assert {r[0] for r in listed} == {v.name for v in (*LAKE_VIEWS, *LIVE_VIEWS)}


def test_chromium_opens_each_dashboard_without_errors_and_with_data(
    reporting: Reporting,
) -> None:
    files = load_bundle()
    placed = {
        c["slug"]: sum(
            1 for n in c["position"].values() if isinstance(n, dict) and n.get("type") == "CHART"
        )
        for n, c in files.items()
        if n.startswith("dashboards/")
    }
    slugs = {title: slug for slug, title in BundleAssets.read().dashboards.items()}
    with logged_in(reporting.settings.superset) as page:
        for title, url in dashboard_urls(reporting.settings).items():
            slug = slugs[title]
            view = open_dashboard(page, url, ARTEFACTS / f"{slug}.png")
            assert view.charts == placed[slug], (title, view.charts)
            assert view.errors == [], (title, view.errors)
            assert view.failed_answers == [], (title, view.failed_answers)
            assert len(view.data_answers) >= view.charts, title
            for answer in view.data_answers:
                assert all(r["rowcount"] > 0 for r in answer["result"]), (title, answer)
            assert view.empty == 0, title
            assert view.drawn == view.charts, (title, view.drawn, view.charts)
            assert view.screenshot is not None and view.screenshot.stat().st_size > 20_000


# A time range that holds no data: the lake's days are in 2026, the stream's minutes are now.
EMPTY_RANGE = "2001-01-01T00:00:00 : 2001-01-02T00:00:00"


def _time_ranges(requests: list[dict[str, Any]]) -> list[str | None]:
    """The time range each chart-data request asks for (one per request, or None)."""
    found = []
    for request in requests:
        ranges = {query.get("time_range") for query in request["queries"]}
        found.append(ranges.pop() if len(ranges) == 1 else None)
    return found


def test_each_dashboards_time_range_filter_reaches_every_chart(reporting: Reporting) -> None:
    files = load_bundle()
    dashboards = {c["slug"]: c for n, c in files.items() if n.startswith("dashboards/")}
    slugs = {title: slug for slug, title in BundleAssets.read().dashboards.items()}
    with logged_in(reporting.settings.superset) as page:
        for title, url in dashboard_urls(reporting.settings).items():
            dashboard = dashboards[slugs[title]]
            [time_range] = [
                f
                for f in dashboard["metadata"]["native_filter_configuration"]
                if f["filterType"] == "filter_time"
            ]
            address = with_native_filter(url, time_range["id"], {"time_range": EMPTY_RANGE})
            view = open_dashboard(page, address, ARTEFACTS / f"{slugs[title]}-empty-range.png")
            assert view.errors == [] and view.failed_answers == [], title
            assert len(view.requests) == view.charts, (title, len(view.requests))
            # Every chart asked for the filter's range, Superset applied it to the chart's
            # time column, and found nothing in it.
            assert _time_ranges(view.requests) == [EMPTY_RANGE] * view.charts, title
            for answer in view.data_answers:
                for result in answer["result"]:
                    assert result["applied_filters"] and not result["rejected_filters"], title
                    values = [v for row in result["data"] for v in row.values()]
                    assert all(v is None for v in values), (title, result["data"][:3])
