"""Superset, in a virtualenv of its own, with its metadata in SQLite under the state folder.

Superset's pins clash with the app's (SQLAlchemy < 2, pandas < 2.2), so it never enters the
app's environment: :meth:`Superset.install` builds a virtualenv from the locked
``superset_requirements.txt`` into the cache, once per lock file. The first start upgrades the
metadata database, runs ``superset init`` and creates the admin account from the settings;
``provision`` then imports the dashboards bundle (``stack/dashboards.py``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

import httpx

from resources.superset import SupersetError
from stack.dashboards import provision_dashboards
from stack.errors import StackError
from stack.services.base import Service, local_port
from stack.venvs import cached_venv

REQUIREMENTS = Path(__file__).with_name("superset_requirements.txt")

_CONFIG = """# Written at each start by stack/services/superset.py: edit that instead.

SQLALCHEMY_DATABASE_URI = "sqlite:///{database}"
SUPERSET_WEBSERVER_ADDRESS = "127.0.0.1"
SUPERSET_WEBSERVER_PORT = {port}
DATA_DIR = "{home}"
UPLOAD_FOLDER = "{home}/uploads/"
# No usage pixel, no example data, no dashboards' thumbnails workers.
SCARF_ANALYTICS = False
FEATURE_FLAGS = {{"DASHBOARD_RBAC": False, "THUMBNAILS": False}}
# Rate limits kept in memory: one local process, no Redis.
RATELIMIT_STORAGE_URI = "memory://"
"""


def superset_version() -> str:
    match = re.search(r"^apache-superset==(\S+)", REQUIREMENTS.read_text(), re.M)
    if match is None:
        raise StackError(f"{REQUIREMENTS} does not pin apache-superset")
    return match.group(1)


class Superset(Service):
    name = "superset"
    description = "Superset (its own virtualenv, metadata in SQLite)"

    @property
    def port(self) -> int:
        return local_port(self.settings.superset.url, "TRIBUTARY_SUPERSET__URL")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ports(self) -> dict[str, int]:
        return {"http": self.port}

    @property
    def venv(self) -> Path:
        """One virtualenv per lock file: a changed lock builds a new one beside the old."""
        digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:10]
        python = f"py{sys.version_info.major}{sys.version_info.minor}"
        return self.cache / "venvs" / f"superset-{superset_version()}-{python}-{digest}"

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def install(self) -> None:
        cached_venv(self.venv, ["--requirement", str(REQUIREMENTS)], "Superset")

    def environment(self) -> dict[str, str]:
        """What every Superset command of this stack runs with."""
        return {
            "SUPERSET_CONFIG_PATH": str(self.home / "superset_config.py"),
            "SUPERSET_HOME": str(self.home),
            "SUPERSET_SECRET_KEY": self._setting("secret_key"),
            "FLASK_APP": "superset.app:create_app()",
            "PYTHONUNBUFFERED": "1",
        }

    def _setting(self, name: Literal["admin_password", "secret_key"]) -> str:
        try:
            return self.settings.superset.secret(name)
        except ValueError as exc:
            raise StackError(str(exc)) from exc

    def superset(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``superset <args>`` in the virtualenv; raise with its output when it fails."""
        command = [self.bin("superset"), *args]
        proc = subprocess.run(
            command,
            cwd=self.home,
            env={**os.environ, **self.environment()},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with (self.home / "setup.log").open("a") as log:
            shown = [
                "***" if prev == "--password" else a
                for prev, a in zip(("", *args), args, strict=False)
            ]
            log.write(f"$ superset {' '.join(shown)}\n")
            log.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise StackError(f"'superset {args[0]}' failed (exit {proc.returncode}):\n{tail}")
        return proc

    def launch(self) -> tuple[list[str], dict[str, str]]:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "superset_config.py").write_text(
            _CONFIG.format(database=self.home / "superset.db", port=self.port, home=self.home)
        )
        # Once per state folder and Superset version: the metadata schema, the roles and
        # permissions, and the admin account.
        marker = self.home / f".initialised-{superset_version()}"
        if not marker.exists():
            self.superset("db", "upgrade")
            self.superset("init")
            ss = self.settings.superset
            created = self.superset(
                "fab",
                "create-admin",
                "--username",
                ss.admin_username,
                "--firstname",
                "Tributary",
                "--lastname",
                "Admin",
                "--email",
                f"{ss.admin_username}@tributary.invalid",
                "--password",
                self._setting("admin_password"),
            )
            if "created" not in created.stdout + created.stderr and "already exists" not in (
                created.stdout + created.stderr
            ):
                raise StackError(f"Superset did not create the admin account: {created.stdout}")
            marker.touch()
        command = [
            self.bin("gunicorn"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--timeout",
            "120",
            "--limit-request-line",
            "0",
            "--limit-request-field_size",
            "0",
            "superset.app:create_app()",
        ]
        return command, self.environment()

    def provision(self) -> list[str]:
        try:
            assets = provision_dashboards(self.settings)
        except SupersetError as exc:
            raise StackError(str(exc)) from exc
        counts = ", ".join(f"{len(uuids)} {kind}" for kind, uuids in assets.uuids.items())
        return [f"dashboards bundle imported ({counts})"]

    def healthy(self) -> bool:
        try:
            resp = httpx.get(f"{self.url}/health", timeout=2)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and resp.text.strip() == "OK"
