"""The dashboards bundle is consistent before it ever reaches Superset."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from typing import Any

import pytest
import yaml

from platform_assets.reporting.views import LIVE_VIEWS
from resources.settings import PlatformSettings, TrinoSettings
from stack.dashboards import (
    ZIP_ROOT,
    BundleAssets,
    database_passwords,
    database_uris,
    load_bundle,
    render_bundle,
    trino_uri,
)

pytestmark = pytest.mark.unit

FILES = load_bundle()


def _of(kind: str) -> dict[str, dict[str, Any]]:
    return {name: content for name, content in FILES.items() if name.startswith(f"{kind}/")}


def _chart_uuids(position: dict[str, Any]) -> list[str]:
    return [
        node["meta"]["uuid"]
        for node in position.values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    ]


# An identifier in a SQL metric that is not a function call, a keyword or a number.
_IDENTIFIER = re.compile(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", re.IGNORECASE)
_SQL_WORDS = {"distinct", "case", "when", "then", "else", "end", "and", "or", "not", "null"}


def _columns_used(params: dict[str, Any]) -> set[str]:
    """Dataset columns a chart's form data refers to (axes, dimensions, metrics, filters)."""
    used: set[str] = set()
    metrics = [
        *params.get("metrics", []),
        params.get("metric"),
        params.get("timeseries_limit_metric"),
    ]
    for metric in metrics:
        if isinstance(metric, dict) and metric.get("expressionType") == "SIMPLE":
            used.add(metric["column"]["column_name"])
        elif isinstance(metric, dict) and metric.get("expressionType") == "SQL":
            words = set(_IDENTIFIER.findall(metric["sqlExpression"]))
            used |= {w for w in words if w.lower() not in _SQL_WORDS}
    for key in ("groupby", "columns", "all_columns"):
        used |= {c for c in params.get(key, []) if isinstance(c, str)}
    if isinstance(params.get("x_axis"), str):
        used.add(params["x_axis"])
    used |= {f["subject"] for f in params.get("adhoc_filters", []) if f.get("subject")}
    return used


def test_every_uuid_is_unique_and_every_kind_is_present() -> None:
    uuids = Counter(str(content["uuid"]) for name, content in FILES.items() if "uuid" in content)
    assert [u for u, n in uuids.items() if n > 1] == []
    for kind in ("databases", "datasets", "charts", "dashboards"):
        assert _of(kind), f"the bundle has no {kind}"
    assert FILES["metadata.yaml"]["type"] == "assets"


def test_references_resolve_inside_the_bundle() -> None:
    databases = {c["uuid"] for c in _of("databases").values()}
    datasets = {c["uuid"]: c for c in _of("datasets").values()}
    charts = {c["uuid"]: c for c in _of("charts").values()}
    for name, dataset in _of("datasets").items():
        assert dataset["database_uuid"] in databases, name
    for name, chart in _of("charts").items():
        assert chart["dataset_uuid"] in datasets, name
        assert chart["params"]["viz_type"] == chart["viz_type"], name
    on_dashboards: list[str] = []
    for name, dashboard in _of("dashboards").items():
        placed = _chart_uuids(dashboard["position"])
        assert placed, f"{name} shows no chart"
        assert set(placed) <= set(charts), f"{name} places charts the bundle lacks"
        on_dashboards += placed
    assert sorted(on_dashboards) == sorted(charts), "every chart is on exactly one dashboard"


def test_charts_use_only_columns_their_dataset_declares() -> None:
    datasets = {c["uuid"]: c for c in _of("datasets").values()}
    for name, chart in _of("charts").items():
        dataset = datasets[chart["dataset_uuid"]]
        declared = {c["column_name"] for c in dataset["columns"]}
        missing = _columns_used(chart["params"]) - declared
        assert not missing, f"{name} uses {missing}, not in {dataset['table_name']}"


def test_a_sql_metric_names_its_columns() -> None:
    # The check above reads the columns of a SQL metric from its expression.
    params = {
        "metrics": [
            {"expressionType": "SQL", "sqlExpression": "approx_percentile(latency_ms, 0.95)"},
            {"expressionType": "SQL", "sqlExpression": "count(distinct event_name)"},
        ]
    }
    assert _columns_used(params) == {"latency_ms", "event_name"}


def test_legends_show_event_names_not_schema_uris() -> None:
    # A chart split by event type shows the short name (page_view), never the Iglu URI.
    for name, chart in _of("charts").items():
        assert "event_type" not in chart["params"].get("groupby", []), name


def test_latency_is_a_line_over_time_of_percentiles_per_bucket() -> None:
    chart = FILES["charts/live_ingest_latency.yaml"]
    params = chart["params"]
    assert chart["viz_type"] == "echarts_timeseries_line"
    assert [m["label"] for m in params["metrics"]] == ["p50 (ms)", "p95 (ms)", "max (ms)"]
    # Percentiles are taken of the events in each bucket: the view has one row per event.
    dataset = next(d for d in _of("datasets").values() if d["uuid"] == chart["dataset_uuid"])
    assert {c["column_name"] for c in dataset["columns"]} == {
        "received_at",
        "event_name",
        "latency_ms",
    }
    assert all(m["expressionType"] == "SQL" for m in params["metrics"])
    # Its buckets times the rows of the live views' window fit in its row limit.
    assert params["time_grain_sqla"] == "PT5S" and params["row_limit"] >= 24 * 3600 // 5


def _temporal_filters(params: dict[str, Any]) -> list[str]:
    return [
        f["subject"]
        for f in params.get("adhoc_filters", [])
        if f.get("operator") == "TEMPORAL_RANGE"
    ]


def test_each_dashboard_has_a_time_range_filter_over_every_chart() -> None:
    charts = {c["uuid"]: c for c in _of("charts").values()}
    datasets = {c["uuid"]: c for c in _of("datasets").values()}
    for name, dashboard in _of("dashboards").items():
        filters = dashboard["metadata"]["native_filter_configuration"]
        [time_range] = [f for f in filters if f["filterType"] == "filter_time"]
        assert time_range["scope"] == {"rootPath": ["ROOT_ID"], "excluded": []}, name
        assert time_range["targets"] == [{}], name
        assert time_range["id"].startswith("NATIVE_FILTER-"), name
        # No default: the whole of the data until a person narrows it.
        assert time_range["defaultDataMask"]["filterState"] == {}, name
        # The filter reaches a chart through the chart's time-range filter on a temporal
        # column of its dataset: every chart has one.
        for uuid in _chart_uuids(dashboard["position"]):
            chart = charts[uuid]
            dataset = datasets[chart["dataset_uuid"]]
            temporal = {c["column_name"] for c in dataset["columns"] if c["is_dttm"]}
            subjects = _temporal_filters(chart["params"])
            assert len(subjects) == 1 and subjects[0] in temporal, (name, chart["slice_name"])


def test_layout_titles_are_the_charts_titles() -> None:
    titles = {c["uuid"]: c["slice_name"] for c in _of("charts").values()}
    for name, dashboard in _of("dashboards").items():
        for node in dashboard["position"].values():
            if isinstance(node, dict) and node.get("type") == "CHART":
                assert node["meta"]["sliceName"] == titles[node["meta"]["uuid"]], name


def test_dashboards_have_stable_unique_slugs() -> None:
    slugs = [c["slug"] for c in _of("dashboards").values()]
    assert all(slugs) and len(set(slugs)) == len(slugs)


def test_the_live_dashboards_are_those_on_the_live_views() -> None:
    # A dataset named live_* is a live view (it reads the search store through Trino): the
    # demo says which dashboards need a store that Trino reads.
    tables = {c["table_name"] for c in _of("datasets").values()}
    assert {t for t in tables if t.startswith("live_")} == {v.name for v in LIVE_VIEWS}
    assert BundleAssets.read().live == {"live-operations"}


def test_rendering_takes_each_database_uri_from_the_settings() -> None:
    settings = PlatformSettings()
    uris = database_uris(settings)
    with zipfile.ZipFile(io.BytesIO(render_bundle(settings))) as zf:
        names = zf.namelist()
        assert {n.split("/", 1)[0] for n in names} == {ZIP_ROOT}
        assert len(names) == len(FILES)
        for name in names:
            if "/databases/" in name:
                content = yaml.safe_load(zf.read(name))
                stem = name.rsplit("/", 1)[1].removesuffix(".yaml")
                assert content["sqlalchemy_uri"] == uris[stem]
    assert set(uris) == {
        n.removeprefix("databases/").removesuffix(".yaml") for n in _of("databases")
    }


def test_database_uris_follow_the_trino_settings() -> None:
    settings = PlatformSettings().model_copy(
        update={
            "trino": TrinoSettings(
                url="http://trino.internal:18080",
                user="bi",
                iceberg_catalog="lake_a1",
                opensearch_catalog="search_b2",
            )
        }
    )
    assert database_uris(settings) == {
        "tributary_lake": "trino://bi@trino.internal:18080/lake_a1",
        "tributary_realtime": "trino://bi@trino.internal:18080/search_b2",
    }
    assert database_passwords(settings) == {}


def test_a_trino_password_goes_to_the_import_not_into_the_bundle() -> None:
    trino = TrinoSettings.model_validate(
        {"url": "https://trino.example.com:8443", "user": "bi", "password": "s3cret"}
    )
    settings = PlatformSettings().model_copy(update={"trino": trino})
    uris = database_uris(settings)
    assert uris["tributary_lake"] == (
        "trino://bi:XXXXXXXXXX@trino.example.com:8443/iceberg?protocol=https"
    )
    assert database_passwords(settings) == {
        "databases/tributary_lake.yaml": "s3cret",
        "databases/tributary_realtime.yaml": "s3cret",
    }
    with zipfile.ZipFile(io.BytesIO(render_bundle(settings))) as zf:
        assert not [n for n in zf.namelist() if b"s3cret" in zf.read(n)]


@pytest.mark.parametrize(
    ("url", "user", "catalog", "expected"),
    [
        (
            "http://127.0.0.1:8080",
            "tributary",
            "iceberg",
            "trino://tributary@127.0.0.1:8080/iceberg",
        ),
        (
            "https://trino.example.com:8443",
            "bi reader",
            "opensearch",
            "trino://bi%20reader@trino.example.com:8443/opensearch?protocol=https",
        ),
    ],
)
def test_trino_uri(url: str, user: str, catalog: str, expected: str) -> None:
    assert trino_uri(url, user, catalog) == expected


# Form-data keys that decide a chart's query: the saved query context must agree on them.
QUERY_KEYS = (
    "viz_type",
    "metrics",
    "metric",
    "groupby",
    "x_axis",
    "time_grain_sqla",
    "adhoc_filters",
    "row_limit",
    "timeseries_limit_metric",
    "order_desc",
)


def test_each_chart_saved_query_context_matches_its_form_data() -> None:
    # Superset's chart-data API (GET /api/v1/chart/<id>/data/) runs the saved query context,
    # the dashboard builds its query from the form data: they must not drift apart.
    for name, chart in _of("charts").items():
        assert chart["query_context"], f"{name} has no query context"
        saved = json.loads(chart["query_context"])
        form_data = saved["form_data"]
        # Keys the chart leaves out take the front end's defaults in the saved context.
        for key in QUERY_KEYS:
            if key in chart["params"]:
                assert form_data.get(key) == chart["params"][key], f"{name}: {key} differs"
        [query] = saved["queries"]
        columns = [c if isinstance(c, str) else c.get("sqlExpression") for c in query["columns"]]
        dimensions = [*chart["params"].get("groupby", [])]
        if isinstance(chart["params"].get("x_axis"), str):
            dimensions.insert(0, chart["params"]["x_axis"])
        assert columns == dimensions, f"{name}: the saved query groups by {columns}"
        labels = [m["label"] for q in saved["queries"] for m in q["metrics"] or []]
        wanted = [m["label"] for m in chart["params"].get("metrics", [])] or [
            chart["params"]["metric"]["label"]
        ]
        assert labels == wanted, name
