"""The dashboards bundle in ``dashboards/``: render it for this configuration, import, export.

The bundle is Superset's own import/export format (``metadata.yaml``, ``databases/``,
``datasets/``, ``charts/``, ``dashboards/``), every asset with a fixed UUID. Importing it
through ``/api/v1/assets/import/`` matches each asset by UUID and overwrites it in place, so
provisioning twice changes nothing and a changed chart is updated, never duplicated.

The databases' connection URIs are not taken from the files: :func:`render_bundle` writes the
Trino URI of the current settings into each, so the same bundle serves every profile.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

from resources.settings import PlatformSettings
from resources.superset import SupersetClient

BUNDLE = Path(__file__).resolve().parents[1] / "dashboards"
# The folder every file sits in inside the ZIP (Superset expects one top-level folder).
ZIP_ROOT = "tributary_dashboards"
# Bundle database file → the setting naming the Trino catalog it connects to.
CATALOG_SETTINGS = {"tributary_lake": "iceberg_catalog", "tributary_realtime": "opensearch_catalog"}
KINDS = ("databases", "datasets", "charts", "dashboards")


# What Superset writes in place of a password in a URI; the password itself goes in the
# import's ``passwords`` field, by file name.
PASSWORD_MASK = "XXXXXXXXXX"


def trino_uri(url: str, user: str, catalog: str, with_password: bool = False) -> str:
    """The SQLAlchemy URI of a Trino coordinator at ``url`` for ``catalog``.

    With ``with_password`` the URI carries Superset's password mask, to be filled in from the
    import's ``passwords``; the password never enters the bundle.
    """
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"TRIBUTARY_TRINO__URL '{url}' has no host")
    port = parts.port or (443 if parts.scheme == "https" else 8080)
    login = quote(user, safe="") + (f":{PASSWORD_MASK}" if with_password else "")
    extra = "?protocol=https" if parts.scheme == "https" else ""
    return f"trino://{login}@{parts.hostname}:{port}/{catalog}{extra}"


def database_uris(settings: PlatformSettings) -> dict[str, str]:
    """Each bundle database's connection URI: Trino's address, user and catalog, from settings."""
    trino = settings.trino
    return {
        name: trino_uri(
            trino.url, trino.user, getattr(trino, setting), with_password=trino.password is not None
        )
        for name, setting in CATALOG_SETTINGS.items()
    }


def database_passwords(settings: PlatformSettings) -> dict[str, str]:
    """Trino's password for each database file of the bundle, when Trino has one."""
    if settings.trino.password is None:
        return {}
    secret = settings.trino.password.get_secret_value()
    return {f"databases/{name}.yaml": secret for name in CATALOG_SETTINGS}


def load_bundle(folder: Path = BUNDLE) -> dict[str, dict[str, Any]]:
    """Every YAML file of the bundle by its path relative to ``folder``."""
    files = {
        str(path.relative_to(folder)): yaml.safe_load(path.read_text())
        for path in sorted(folder.rglob("*.yaml"))
    }
    if "metadata.yaml" not in files:
        raise FileNotFoundError(f"{folder} holds no metadata.yaml: not a Superset bundle")
    return files


def render_bundle(settings: PlatformSettings, folder: Path = BUNDLE) -> bytes:
    """The bundle as a ZIP, with each database's URI taken from ``settings``."""
    uris = database_uris(settings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in load_bundle(folder).items():
            if name.startswith("databases/"):
                stem = Path(name).stem
                if stem not in uris:
                    raise ValueError(f"{name}: no connection is configured for database '{stem}'")
                content = {**content, "sqlalchemy_uri": uris[stem]}
            zf.writestr(f"{ZIP_ROOT}/{name}", yaml.safe_dump(content, sort_keys=False))
    return buffer.getvalue()


@dataclass(frozen=True)
class BundleAssets:
    """What the bundle holds: UUIDs by kind, the dashboards' slugs and titles, and the live ones."""

    uuids: dict[str, set[str]]
    dashboards: dict[str, str]
    live: frozenset[str] = frozenset()
    """Slugs of the dashboards with a chart on a dataset named ``live_*``: a live reporting
    view over the search store's indices."""

    @classmethod
    def read(cls, folder: Path = BUNDLE) -> BundleAssets:
        files = load_bundle(folder)
        uuids = {
            kind: {str(c["uuid"]) for n, c in files.items() if n.startswith(f"{kind}/")}
            for kind in KINDS
        }
        dashboards = {
            c["slug"]: c["dashboard_title"] for n, c in files.items() if n.startswith("dashboards/")
        }
        live_sets = {
            str(c["uuid"])
            for n, c in files.items()
            if n.startswith("datasets/") and str(c["table_name"]).startswith("live_")
        }
        live_charts = {
            str(c["uuid"])
            for n, c in files.items()
            if n.startswith("charts/") and str(c.get("dataset_uuid")) in live_sets
        }
        live = frozenset(
            c["slug"]
            for n, c in files.items()
            if n.startswith("dashboards/") and any(u in json.dumps(c) for u in live_charts)
        )
        return cls(uuids, dashboards, live)


def provision_dashboards(settings: PlatformSettings, folder: Path = BUNDLE) -> BundleAssets:
    """Import the bundle into the configured Superset (create or update in place)."""
    with SupersetClient(settings.superset) as client:
        client.import_assets(render_bundle(settings, folder), database_passwords(settings))
        align_query_contexts(client, load_bundle(folder))
    return BundleAssets.read(folder)


def align_query_contexts(client: SupersetClient, files: dict[str, dict[str, Any]]) -> int:
    """Point each imported chart's saved query context at the chart's dataset, by id.

    The import rewrites a chart's own link to its dataset (by UUID) but stores the query
    context as it is in the file, numeric dataset id included; the chart-data API
    (``GET /api/v1/chart/<id>/data/``) runs that context, so without this it would query
    whichever dataset happens to carry the id. Returns the number of charts updated.
    """
    charts = {str(c["uuid"]): c for n, c in files.items() if n.startswith("charts/")}
    updated = 0
    for row in client.list_all("chart", ["id", "uuid", "datasource_id"]):
        chart = charts.get(str(row["uuid"]))
        if chart is None or not chart.get("query_context"):
            continue
        context = json.loads(chart["query_context"])
        context["datasource"] = {"id": row["datasource_id"], "type": "table"}
        if isinstance(context.get("form_data"), dict):
            context["form_data"]["datasource"] = f"{row['datasource_id']}__table"
            context["form_data"]["slice_id"] = row["id"]
        client.request(
            "PUT",
            f"/api/v1/chart/{row['id']}",
            json={"query_context": json.dumps(context), "query_context_generation": True},
        )
        updated += 1
    return updated


def dashboard_urls(settings: PlatformSettings, folder: Path = BUNDLE) -> dict[str, str]:
    """Each dashboard's title → its address on the configured Superset."""
    base = settings.superset.url.rstrip("/")
    return {
        title: f"{base}/superset/dashboard/{slug}/"
        for slug, title in BundleAssets.read(folder).dashboards.items()
    }
