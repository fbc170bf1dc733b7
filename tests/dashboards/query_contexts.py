"""Write each chart's ``query_context`` as Superset's own front end builds it.

Superset's chart-data API (``GET /api/v1/chart/<id>/data/``) runs the query context saved with a
chart; a dashboard builds its queries from the chart's form data (``params``). Superset writes
the query context when a chart is saved from Explore. This does the same for the whole bundle:
it provisions the bundle into the configured Superset, opens every dashboard in headless
Chromium, records the chart-data request the page sends for each chart, and writes that
request (the dashboard's own additions removed) into the chart's YAML file::

    uv run python -m tests.dashboards.query_contexts

The tables need not hold data: the requests are built before any answer arrives.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from resources.settings import PlatformSettings
from resources.superset import SupersetClient
from stack.dashboards import BUNDLE, dashboard_urls, load_bundle, provision_dashboards
from tests.dashboards.browser import logged_in, open_dashboard

# Form-data keys a dashboard adds to a chart's own (filters of the dashboard, its id).
DASHBOARD_ONLY = (
    "dashboardId",
    "dashboard_id",
    "native_filters",
    "label_colors",
    "shared_label_colors",
    "map_label_colors",
    "color_scheme_domain",
    "own_color_scheme",
    "dashboard_color_scheme",
)


def saved_context(request: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The query context to save: the page's request, with the chart's own form data."""
    context = dict(request)
    form_data = {k: v for k, v in request["form_data"].items() if k not in DASHBOARD_ONLY}
    form_data.update({k: v for k, v in params.items() if k not in form_data})
    form_data.update(extra_form_data={}, force=False, result_format="json", result_type="full")
    context.update(form_data=form_data, force=False, result_format="json", result_type="full")
    return context


def main(folder: Path = BUNDLE) -> None:
    settings = PlatformSettings()
    provision_dashboards(settings, folder)
    with SupersetClient(settings.superset) as client:
        uuids = {row["id"]: str(row["uuid"]) for row in client.list_all("chart", ["id", "uuid"])}
    files = {
        str(c["uuid"]): folder / name
        for name, c in load_bundle(folder).items()
        if name.startswith("charts/")
    }
    requests: dict[str, dict[str, Any]] = {}
    with logged_in(settings.superset) as page, tempfile.TemporaryDirectory() as tmp:
        for title, url in dashboard_urls(settings, folder).items():
            view = open_dashboard(page, url, Path(tmp) / "dashboard.png")
            for request in view.requests:
                uuid = uuids[request["form_data"]["slice_id"]]
                requests[uuid] = request
            print(f"{title}: {len(view.requests)} chart-data requests")
    missing = set(files) - set(requests)
    if missing:
        raise SystemExit(f"no request seen for {sorted(str(files[u]) for u in missing)}")
    for uuid, path in files.items():
        chart = yaml.safe_load(path.read_text())
        context = saved_context(requests[uuid], chart["params"])
        chart["query_context"] = json.dumps(context, sort_keys=True)
        path.write_text(yaml.safe_dump(chart, sort_keys=False))
        print(f"wrote the query context of {path.relative_to(folder)}")


if __name__ == "__main__":
    main()
