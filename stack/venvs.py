"""Virtualenvs of their own, in the cache, for tools whose pins clash with the app's.

Superset and Airflow each pin versions of SQLAlchemy, FastAPI or pandas that the platform's
environment cannot share, so each gets a virtualenv built with ``uv`` from PyPI the first time
it is needed and reused afterwards. A lock file serialises concurrent first uses, and a
``.complete`` marker tells a finished build from an interrupted one (which is rebuilt).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from stack import fetch
from stack.errors import StackError


def uv_command() -> list[str]:
    """The uv that runs this project (``uv run`` exports it as UV), else uv on PATH."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).exists():
            return [candidate]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise StackError(
        "uv is needed to build a tool's own virtualenv and was not found: install it "
        "(pip install uv, or ./scripts/bootstrap)"
    )


def cached_venv(venv: Path, requirements: list[str], what: str) -> Path:
    """Return ``venv`` with ``requirements`` (``uv pip install`` arguments), built if missing."""
    if (venv / ".complete").exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if not (venv / ".complete").exists():
            _build(venv, requirements, what)
    return venv


def _build(venv: Path, requirements: list[str], what: str) -> None:
    # A virtualenv is not relocatable: built in place, marked complete at the end.
    shutil.rmtree(venv, ignore_errors=True)
    uv = uv_command()
    # The interpreter this environment was made from: uv downloads none.
    python = getattr(sys, "_base_executable", sys.executable)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    steps = [
        [*uv, "venv", "--quiet", "--python", python, str(venv)],
        [*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *requirements],
    ]
    fetch.report(f"{what}: building its virtualenv with uv (its locked packages from PyPI, once)")
    began = time.monotonic()
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise StackError(
                f"could not build {what}'s virtualenv ({' '.join(step[len(uv) :][:2])}); "
                f"check that PyPI is reachable.\n{tail}"
            )
    took = time.monotonic() - began
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    fetch.report(
        f"{what}: virtualenv of {fetch.megabytes(size)} built in {took:.1f} s "
        f"({fetch.megabytes(size / max(took, 1e-6))}/s) in {venv}"
    )
    (venv / ".complete").touch()
