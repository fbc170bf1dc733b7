"""Offline checks of the compose deployment (docker/compose.yaml).

No Docker engine runs on the development machines, so the file is validated, not run:
``docker-compose config`` (Debian's docker-compose 1.29, which parses and interpolates without
an engine) and structural rules read from the YAML itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"

EXPECTED_SERVICES = {
    "kafka",
    "seaweedfs",
    "opensearch",
    "trino",
    "superset",
    "postgres",
    "dagster-webserver",
    "dagster-daemon",
    "topics-and-buckets",
    "collector",
    "enrichment-api",
    "enricher",
    "realtime-loader",
    "batch-loader",
}
# Jobs that run once and exit 0; the services that need them wait for
# `service_completed_successfully`.
ONE_SHOT = {"topics-and-buckets", "superset-init"}
# Long-running Kafka consumers with no port to probe: no healthcheck, `restart` instead.
WORKERS = {"enricher", "realtime-loader", "batch-loader"}
# Every other service is a server and must report its health.

# Variables that must never have a default in the compose file.
SECRETS = {
    "TRIBUTARY_S3__ACCESS_KEY_ID",
    "TRIBUTARY_S3__SECRET_ACCESS_KEY",
    "DAGSTER_PG_PASSWORD",
    "SUPERSET_SECRET_KEY",
    "SUPERSET_ADMIN_PASSWORD",
}
# Container variables that carry the S3 secret.
S3_SECRET_KEYS = {"TRIBUTARY_S3__SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"}
REQUIRED_S3_SECRET = re.compile(r"^\$\{TRIBUTARY_S3__SECRET_ACCESS_KEY:\?[^}]+\}$")
# A compose interpolation; `$${...}` is an escape left to the container's shell.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")


def _interpolations() -> list[tuple[str, str]]:
    """``(name, modifier)`` of every interpolation in the compose file, comments excluded."""
    lines = (ln for ln in COMPOSE.read_text().splitlines() if not ln.lstrip().startswith("#"))
    return [(m.group(1), m.group(2)) for m in INTERPOLATION.finditer("\n".join(lines))]


def _docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "the 'docker-compose' binary is missing: it validates docker/compose.yaml offline. "
            "Install it (Debian: apt-get update && apt-get install -y docker-compose).",
            pytrace=False,
        )
    return path


def _clean_env() -> dict[str, str]:
    """The process environment minus every variable the compose file interpolates.

    Compose lets the environment override the env file, so a developer's or CI's
    ``TRIBUTARY_*`` settings must not leak into the checks.
    """
    names = {name for name, _ in _interpolations()}
    names.add("COMPOSE_PROJECT_NAME")
    return {k: v for k, v in os.environ.items() if k not in names}


def _compose_config(env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE), "--env-file", str(env_file), "config", *extra],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# --------------------------------------------------------------------------- docker-compose


@pytest.mark.integration
def test_compose_config_is_valid_with_the_example_env_file() -> None:
    result = _compose_config(ENV_EXAMPLE, "-q")
    assert result.returncode == 0, result.stderr
    # A variable missing from the example file shows up as a warning or an error.
    assert "not set" not in result.stderr, result.stderr


@pytest.mark.integration
def test_rendered_config_keeps_every_service_and_volume(compose: dict[str, Any]) -> None:
    result = _compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) == set(compose["services"])
    assert set(rendered.get("volumes") or {}) == set(compose.get("volumes") or {})
    # Interpolation took the example's values, so nothing is left unresolved (`$${...}` is an
    # escape for the container's shell, kept as it is).
    assert not re.search(r"(?<!\$)\$\{", result.stdout)


@pytest.mark.integration
def test_a_missing_secret_stops_compose(tmp_path: Path) -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    kept = [ln for ln in lines if not ln.startswith("TRIBUTARY_S3__SECRET_ACCESS_KEY=")]
    assert len(kept) == len(lines) - 1, "the example must set TRIBUTARY_S3__SECRET_ACCESS_KEY"
    env_file = tmp_path / "missing-secret.env"
    env_file.write_text("\n".join(kept) + "\n")

    result = _compose_config(env_file, "-q")
    assert result.returncode != 0
    assert "TRIBUTARY_S3__SECRET_ACCESS_KEY" in result.stderr


# --------------------------------------------------------------------------- structure


@pytest.mark.unit
def test_every_platform_service_is_present(services: dict[str, Any]) -> None:
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"
    assert set(services) >= ONE_SHOT


@pytest.mark.unit
def test_healthchecks_everywhere_but_one_shot_jobs_and_workers(
    services: dict[str, dict[str, Any]],
) -> None:
    without = {name for name, svc in services.items() if "healthcheck" not in svc}
    assert without == ONE_SHOT | WORKERS, (
        f"services without a healthcheck: {sorted(without)}; "
        f"only {sorted(ONE_SHOT | WORKERS)} may have none"
    )
    for name, svc in services.items():
        check = svc.get("healthcheck")
        if check is not None:
            assert check.get("test"), f"{name}: empty healthcheck"
            assert not check.get("disable"), f"{name}: healthcheck disabled"


@pytest.mark.unit
def test_workers_publish_no_port_and_restart(services: dict[str, dict[str, Any]]) -> None:
    for name in WORKERS:
        assert not services[name].get("ports"), f"{name} publishes a port: give it a healthcheck"
        assert services[name].get("restart") == "unless-stopped", name


@pytest.mark.unit
def test_one_shot_jobs_do_not_restart(services: dict[str, dict[str, Any]]) -> None:
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", name
        assert not services[name].get("ports"), name


@pytest.mark.unit
def test_every_depends_on_has_a_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on")
        if deps is None:
            continue
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = (spec or {}).get("condition")
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert condition == expected, f"{name} -> {dep}: condition {condition!r}"
            if expected == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}, which has none"


@pytest.mark.unit
def test_app_services_wait_for_provisioning(services: dict[str, dict[str, Any]]) -> None:
    app_services = {
        name
        for name, svc in services.items()
        if svc.get("image", "").startswith("tributary-app:") and name != "topics-and-buckets"
    }
    assert app_services >= {
        "collector",
        "enrichment-api",
        "enricher",
        "realtime-loader",
        "batch-loader",
        "dagster-webserver",
        "dagster-daemon",
    }
    for name in app_services:
        assert "topics-and-buckets" in services[name].get("depends_on", {}), name


@pytest.mark.unit
def test_published_ports_bind_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


@pytest.mark.unit
def test_no_default_for_any_secret() -> None:
    for name, modifier in _interpolations():
        if name in SECRETS:
            assert modifier.startswith(":?"), f"${{{name}{modifier}}}: use ${{{name}:?message}}"
    # and no literal S3 secret either: every container variable holding it is required
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for svc_name, svc in services.items():
        for key, value in _environment(svc).items():
            if key in S3_SECRET_KEYS:
                assert REQUIRED_S3_SECRET.match(value), f"{svc_name}: {key}={value!r}"


@pytest.mark.unit
def test_app_services_share_the_platform_env(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "TRIBUTARY_PROFILE": "stack",
        "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
        "TRIBUTARY_S3__ENDPOINT_URL": "http://seaweedfs:8333",
        "TRIBUTARY_S3__ICEBERG_CATALOG_URI": "http://seaweedfs:8181",
        "TRIBUTARY_OPENSEARCH__URL": "http://opensearch:9200",
    }
    for name, svc in services.items():
        if not svc.get("image", "").startswith("tributary-app:"):
            continue
        env = _environment(svc)
        for key, value in expected.items():
            assert env.get(key) == value, f"{name}: {key}={env.get(key)!r}"
        assert env["TRIBUTARY_S3__ACCESS_KEY_ID"].startswith("${TRIBUTARY_S3__ACCESS_KEY_ID:?")


@pytest.mark.unit
def test_example_env_file_covers_every_required_variable() -> None:
    required = {name for name, modifier in _interpolations() if modifier.startswith(":?")}
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    }
    assert required <= example, f"missing from .env.example: {sorted(required - example)}"


@pytest.mark.unit
def test_files_the_compose_file_mounts_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source} is missing"
        build = svc.get("build")
        if build:
            context = DOCKER / build["context"]
            assert (context / build["dockerfile"]).is_file(), name


@pytest.mark.unit
def test_trino_catalogs_point_at_the_compose_services() -> None:
    catalogs = DOCKER / "trino" / "catalog"
    iceberg = _properties(catalogs / "iceberg.properties")
    assert iceberg["connector.name"] == "iceberg"
    assert iceberg["iceberg.catalog.type"] == "rest"
    assert iceberg["iceberg.rest-catalog.uri"] == "http://seaweedfs:8181"
    assert iceberg["s3.endpoint"] == "http://seaweedfs:8333"
    assert iceberg["s3.aws-secret-key"] == "${ENV:TRIBUTARY_S3__SECRET_ACCESS_KEY}"
    opensearch = _properties(catalogs / "opensearch.properties")
    assert opensearch["connector.name"] == "opensearch"
    assert opensearch["opensearch.host"] == "opensearch"


def _properties(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}
