"""A small client for Superset's REST API: log in, import a bundle, list assets, chart data.

Superset's API wants a JWT (``/api/v1/security/login``) and, for writes, a CSRF token bound
to the session cookie (``/api/v1/security/csrf_token/``); :class:`SupersetClient` keeps both.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from resources.settings import SupersetSettings


class SupersetError(RuntimeError):
    """Superset refused a request; the message carries its answer."""


class SupersetClient:
    def __init__(self, settings: SupersetSettings, timeout: float = 120) -> None:
        self.url = settings.url.rstrip("/")
        self._settings = settings
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._logged_in = False

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def login(self) -> None:
        """Log in as the configured admin; raise :class:`SupersetError` when refused."""
        resp = self._http.post(
            "/api/v1/security/login",
            json={
                "username": self._settings.admin_username,
                "password": self._settings.secret("admin_password"),
                "provider": "db",
                "refresh": False,
            },
        )
        if resp.status_code == 401:
            raise SupersetError(
                f"Superset at {self.url} refused the login of '{self._settings.admin_username}'; "
                "check TRIBUTARY_SUPERSET__ADMIN_USERNAME and TRIBUTARY_SUPERSET__ADMIN_PASSWORD"
            )
        _check(resp, "login")
        self._http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        csrf = self._http.get("/api/v1/security/csrf_token/")
        _check(csrf, "CSRF token")
        self._http.headers["X-CSRFToken"] = csrf.json()["result"]
        self._http.headers["Referer"] = self.url
        self._logged_in = True

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send an authenticated request and return its JSON answer."""
        if not self._logged_in:
            self.login()
        resp = self._http.request(method, path, **kwargs)
        _check(resp, f"{method} {path}")
        return resp.json()

    def get(self, path: str, **params: Any) -> Any:
        query = {"q": _rison(params)} if params else None
        return self.request("GET", path, params=query)

    def import_assets(self, bundle: bytes, passwords: dict[str, str] | None = None) -> None:
        """Import a ZIP bundle through ``/api/v1/assets/import/``.

        Every asset is matched by its UUID and overwritten in place; assets the bundle does not
        name are left alone.
        """
        data = {"passwords": json.dumps(passwords or {})}
        files = {"bundle": ("bundle.zip", bundle, "application/zip")}
        self.request("POST", "/api/v1/assets/import/", data=data, files=files)

    def export_assets(self) -> bytes:
        """Every asset of the instance, as the ZIP bundle ``/api/v1/assets/export/`` returns."""
        if not self._logged_in:
            self.login()
        resp = self._http.get("/api/v1/assets/export/")
        _check(resp, "export")
        return resp.content

    def list_all(self, resource: str, columns: list[str]) -> list[dict[str, Any]]:
        """Every ``resource`` (``chart``, ``dashboard``, ``dataset``, ``database``), all pages."""
        rows: list[dict[str, Any]] = []
        page = 0
        while True:
            answer = self.get(f"/api/v1/{resource}/", columns=columns, page=page, page_size=100)
            rows += answer["result"]
            if len(rows) >= answer["count"] or not answer["result"]:
                return rows
            page += 1

    def chart_data(self, chart_id: int) -> list[dict[str, Any]]:
        """The results of a saved chart's query context (one entry per query)."""
        answer = self.request("GET", f"/api/v1/chart/{chart_id}/data/", params={"format": "json"})
        result: list[dict[str, Any]] = answer["result"]
        return result


def _check(resp: httpx.Response, what: str) -> None:
    if resp.is_success:
        return
    raise SupersetError(f"Superset answered {resp.status_code} to {what}: {resp.text[:2000]}")


def _rison(value: Any) -> str:
    """Encode ``value`` in Rison, the query language of Superset's list endpoints."""
    if isinstance(value, dict):
        return "(" + ",".join(f"{k}:{_rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(_rison(v) for v in value) + ")"
    if isinstance(value, bool):
        return "!t" if value else "!f"
    if value is None:
        return "!n"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if text and all(c.isalnum() or c in "_-./~" for c in text) and not text[0].isdigit():
        return text
    return "'" + text.replace("!", "!!").replace("'", "!'") + "'"
