"""Airflow 3 in a virtualenv of its own, and an ``AIRFLOW_HOME`` to run the bridge's DAGs in.

Airflow's pins (SQLAlchemy, FastAPI) clash with the platform's, so it never joins the app's
environment: :func:`airflow_venv` creates ``<cache>/venvs/airflow-<version>`` from PyPI with
``uv`` the first time it is needed and reuses it afterwards (a lock file serialises concurrent
first uses; a ``.complete`` marker tells a finished install from an interrupted one).
:class:`AirflowHome` initialises a home folder (metadata in SQLite, ``airflow db migrate``) whose
DAG folder is ``airflow_bridge/dags`` and runs ``airflow`` commands in it, for example
``airflow dags test``. Only the ``airflow_bridge`` package is put on Airflow's path, as an
Airflow deployment would install it, so the DAGs cannot reach the app's other packages.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from stack.errors import StackError

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "airflow_bridge"
DAGS_FOLDER = BRIDGE / "dags"
AIRFLOW_VERSION = "3.3.2"


def _uv() -> str:
    # `uv run` names itself in UV; otherwise the uv on PATH (scripts/bootstrap installs one).
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise StackError("uv is needed to create the Airflow virtualenv; run ./scripts/bootstrap")
    return uv


def _run(command: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise StackError(f"{what} failed (exit {proc.returncode}); is PyPI reachable?\n{tail}")


def airflow_venv(cache_dir: Path, version: str = AIRFLOW_VERSION) -> Path:
    """Return a virtualenv with ``apache-airflow==version``, creating it when missing."""
    venvs = cache_dir / "venvs"
    venv = venvs / f"airflow-{version}"
    if (venv / ".complete").exists():
        return venv
    venvs.mkdir(parents=True, exist_ok=True)
    with (venvs / f"airflow-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing it right now
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        uv = _uv()
        # The interpreter of this environment's base Python: uv downloads none.
        python = getattr(sys, "_base_executable", sys.executable)
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        env.pop("VIRTUAL_ENV", None)
        _run([uv, "venv", "--quiet", "--python", python, str(venv)], "uv venv", env)
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                f"apache-airflow=={version}",
            ],
            f"installing apache-airflow=={version}",
            env,
        )
        (venv / ".complete").touch()
    return venv


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
