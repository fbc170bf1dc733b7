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
# Bundle database file → the Trino catalog it connects to.
CATALOGS = {"tributary_lake": "iceberg", "tributary_realtime": "opensearch"}
KINDS = ("databases", "datasets", "charts", "dashboards")


def trino_uri(url: str, user: str, catalog: str) -> str:
    """The SQLAlchemy URI of a Trino coordinator at ``url`` for ``catalog``."""
    parts = urlsplit(url)
    scheme = "trino"
    extra = "?protocol=https" if parts.scheme == "https" else ""
    return f"{scheme}://{quote(user, safe='')}@{parts.hostname}:{parts.port}/{catalog}{extra}"


def database_uris(settings: PlatformSettings) -> dict[str, str]:
    """The connection URI of each database of the bundle, from the settings."""
    return {
        name: trino_uri("http://127.0.0.1:8080", "tributary", catalog)
        for name, catalog in CATALOGS.items()
    }


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
    """What the bundle holds: UUIDs by kind, and the dashboards' slugs and titles."""

    uuids: dict[str, set[str]]
    dashboards: dict[str, str]

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
        return cls(uuids, dashboards)


def provision_dashboards(settings: PlatformSettings, folder: Path = BUNDLE) -> BundleAssets:
    """Import the bundle into the configured Superset (create or update in place)."""
    with SupersetClient(settings.superset) as client:
        client.import_assets(render_bundle(settings, folder))
    return BundleAssets.read(folder)


def dashboard_urls(settings: PlatformSettings, folder: Path = BUNDLE) -> dict[str, str]:
    """Each dashboard's title → its address on the configured Superset."""
    base = settings.superset.url.rstrip("/")
    return {
        title: f"{base}/superset/dashboard/{slug}/"
        for slug, title in BundleAssets.read(folder).dashboards.items()
    }
