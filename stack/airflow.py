"""Airflow 3 in a virtualenv of its own, and an ``AIRFLOW_HOME`` to run the bridge's DAGs in.

Airflow's pins (SQLAlchemy, FastAPI) clash with the platform's, so it never joins the app's
environment: :func:`airflow_venv` creates ``<cache>/venvs/airflow-<version>`` from PyPI the
first time it is needed and reuses it afterwards (``stack.venvs.cached_venv``).
:class:`AirflowHome` initialises a home folder (metadata in SQLite, ``airflow db migrate``) whose
DAG folder is ``airflow_bridge/dags`` and runs ``airflow`` commands in it, for example
``airflow dags test``. Only the ``airflow_bridge`` package is put on Airflow's path, as an
Airflow deployment would install it, so the DAGs cannot reach the app's other packages.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from stack.errors import StackError
from stack.venvs import cached_venv

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "airflow_bridge"
DAGS_FOLDER = BRIDGE / "dags"
AIRFLOW_VERSION = "3.3.2"


def airflow_venv(cache_dir: Path, version: str = AIRFLOW_VERSION) -> Path:
    """Return a virtualenv with ``apache-airflow==version``, creating it when missing."""
    return cached_venv(
        cache_dir / "venvs" / f"airflow-{version}", [f"apache-airflow=={version}"], "Airflow"
    )


class AirflowHome:
    """An ``AIRFLOW_HOME`` with SQLite metadata and the bridge's DAGs, run with ``venv``."""

    def __init__(self, home: Path, venv: Path, env: Mapping[str, str] | None = None) -> None:
        self.home = home.resolve()
        self.venv = venv
        self.extra_env = dict(env or {})
        # Only the bridge package on Airflow's path, as an Airflow deployment installs it.
        self.packages = self.home / "packages"

    @property
    def env(self) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "TRIBUTARY_", "DAGSTER_"))
            and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        }
        return {
            **base,
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{base.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.venv),
            "PYTHONPATH": str(self.packages),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            **self.extra_env,
        }

    def init(self) -> AirflowHome:
        """Create the home folder and its metadata database (idempotent)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.packages.mkdir(exist_ok=True)
        link = self.packages / BRIDGE.name
        if not link.is_symlink():
            link.symlink_to(BRIDGE, target_is_directory=True)
        proc = self.run("db", "migrate", timeout=600)
        if proc.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}")
        return self

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` in this home; stdout and stderr together in ``stdout``."""
        return subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            env=self.env,
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    def dags_test(self, dag_id: str, logical_date: str) -> subprocess.CompletedProcess[str]:
        """``airflow dags test``: one run of ``dag_id`` in this process, no scheduler."""
        return self.run("dags", "test", dag_id, logical_date)
