"""Offline checks of the compose deployment (docker/compose.yaml).

No Docker engine runs on the development machines, so the file is validated, not run: as
Compose loads it (YAML, interpolation from docker/.env.example, then the compose-spec JSON
Schema; see ``tests.docker.compose_spec``), for the rules of the deployment read from the YAML
itself, and against the local stack, which is the one source of the servers' versions and of
Trino's catalogs (``stack.compose``).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.compose import (
    CREDENTIAL_ENV,
    IMAGES,
    SUPERSET_IMAGE,
    compose_settings,
    server_versions,
    stale,
    superset_trino_driver,
    trino_catalogs,
)
from tests.docker.compose_spec import (
    InterpolationError,
    interpolate,
    read_env_file,
    schema_errors,
)
from tests.docker.image import dockerfile_stages

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
    "dashboards",
}
# Jobs that run once and exit 0; the services that need them wait for
# `service_completed_successfully`.
ONE_SHOT = {"topics-and-buckets", "superset-init", "dashboards"}
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


# --------------------------------------------------------------------------- compose-spec


def _loaded(env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Compose loads it: YAML with merge keys, then interpolation."""
    unset: set[str] = set()
    document = interpolate(yaml.safe_load(COMPOSE.read_text()), env, unset)
    assert not unset, f"variables left to default to an empty string: {sorted(unset)}"
    assert isinstance(document, dict)
    return document


@pytest.mark.unit
def test_compose_file_is_valid_compose_spec_with_the_example_env_file() -> None:
    document = _loaded(read_env_file(ENV_EXAMPLE))
    assert schema_errors(document) == []
    # Nothing is left unresolved but the escapes (`$${...}`, left to the container's shell).
    leftovers = re.findall(r"\$\{[^}]*\}", yaml.safe_dump(document, width=10**6))
    escapes = re.findall(r"\$(\$\{[^}]*\})", COMPOSE.read_text())
    assert sorted(set(leftovers)) == sorted(set(escapes))


@pytest.mark.unit
def test_the_schema_refuses_what_compose_refuses() -> None:
    """The validator is live: a misspelt key and a wrong type are both reported."""
    document = _loaded(read_env_file(ENV_EXAMPLE))
    broken = copy.deepcopy(document)
    broken["services"]["collector"]["depend_on"] = broken["services"]["collector"].pop("depends_on")
    broken["services"]["trino"]["depends_on"]["seaweedfs"]["condition"] = "service_ready"
    errors = schema_errors(broken)
    assert any("collector" in e and "depend_on" in e for e in errors), errors
    assert any(e.startswith("services/trino/depends_on") for e in errors), errors


@pytest.mark.unit
def test_a_missing_secret_stops_compose() -> None:
    env = read_env_file(ENV_EXAMPLE)
    assert "TRIBUTARY_S3__SECRET_ACCESS_KEY" in env, "the example must set the S3 secret"
    for value in (None, ""):
        broken = {k: v for k, v in env.items() if k != "TRIBUTARY_S3__SECRET_ACCESS_KEY"}
        if value is not None:
            broken["TRIBUTARY_S3__SECRET_ACCESS_KEY"] = value
        with pytest.raises(InterpolationError, match="TRIBUTARY_S3__SECRET_ACCESS_KEY"):
            _loaded(broken)


# --------------------------------------------------------------------------- the local stack


@pytest.mark.unit
def test_compose_files_are_in_step_with_the_local_stack() -> None:
    outdated = [str(p.relative_to(ROOT)) for p in stale()]
    assert not outdated, (
        f"{outdated} differ from the local stack: run `uv run python -m stack.compose`"
    )


@pytest.mark.unit
def test_servers_run_the_local_stacks_versions(services: dict[str, dict[str, Any]]) -> None:
    versions = server_versions()
    for service, image in IMAGES.items():
        assert services[service]["image"] == f"{image}:{versions[service]}", service
    args = {
        i.arguments.split("=", 1)[0]: i.arguments.split("=", 1)[1]
        for i in dockerfile_stages()["superset"].instructions
        if i.keyword == "ARG"
    } | _global_args()
    assert args["SUPERSET_IMAGE"] == f"{SUPERSET_IMAGE}:{versions['superset']}"
    runs = " ".join(i.arguments for i in dockerfile_stages()["superset"].all("RUN"))
    assert f"trino[sqlalchemy]=={superset_trino_driver()}" in runs


def _global_args() -> dict[str, str]:
    """The Dockerfile's ARGs before its first FROM."""
    args = {}
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            break
        if line.startswith("ARG ") and "=" in line:
            name, value = line[4:].split("=", 1)
            args[name.strip()] = value.strip()
    return args


@pytest.mark.unit
def test_trino_catalogs_are_the_stacks(services: dict[str, dict[str, Any]]) -> None:
    catalogs = DOCKER / "trino" / "catalog"
    expected = trino_catalogs()
    assert {p.stem for p in catalogs.glob("*.properties")} == set(expected)
    for name, properties in expected.items():
        written = _properties(catalogs / f"{name}.properties")
        assert written == {k: str(v) for k, v in properties.items()}, name
    iceberg = _properties(catalogs / "iceberg.properties")
    # The stack's REST catalog authentication (OAuth2 client credentials), not SigV4.
    assert iceberg["iceberg.rest-catalog.security"] == "OAUTH2"
    assert not any("sigv4" in key for key in iceberg)
    assert iceberg["iceberg.rest-catalog.uri"] == "http://seaweedfs:8181"
    # Every ${ENV:...} the catalogs read is set in Trino's container.
    trino_env = _environment(services["trino"])
    for path in catalogs.glob("*.properties"):
        for name in re.findall(r"\$\{ENV:([A-Za-z0-9_]+)\}", path.read_text()):
            assert name in trino_env, f"{path.name} reads {name}, which trino's environment lacks"
    credential = trino_env[CREDENTIAL_ENV]
    assert credential == (
        "${TRIBUTARY_S3__ACCESS_KEY_ID:?set in docker/.env}:"
        "${TRIBUTARY_S3__SECRET_ACCESS_KEY:?set in docker/.env}"
    )


@pytest.mark.unit
def test_dashboards_are_provisioned(services: dict[str, dict[str, Any]]) -> None:
    job = services["dashboards"]
    assert job["image"].startswith("tributary-app:")
    assert job["command"] == ["python", "-m", "stack.provision", "dashboards"]
    assert job["depends_on"]["superset"]["condition"] == "service_healthy"
    assert job["depends_on"]["trino"]["condition"] == "service_healthy"
    env = _environment(job)
    assert env["TRIBUTARY_SUPERSET__URL"] == compose_settings().superset.url
    assert env["TRIBUTARY_TRINO__URL"] == compose_settings().trino.url
    # It logs in as the admin superset-init creates.
    init = " ".join(services["superset-init"]["command"])
    assert (
        env["TRIBUTARY_SUPERSET__ADMIN_USERNAME"]
        == "${SUPERSET_ADMIN_USERNAME:?set in docker/.env}"
    )
    assert '--username "$${SUPERSET_ADMIN_USERNAME}"' in init
    assert (
        env["TRIBUTARY_SUPERSET__ADMIN_PASSWORD"]
        == "${SUPERSET_ADMIN_PASSWORD:?set in docker/.env}"
    )
    assert '--password "$${SUPERSET_ADMIN_PASSWORD}"' in init


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
    # The addresses the stack's configuration is rendered for (stack.compose).
    settings = compose_settings()
    expected = {
        "TRIBUTARY_PROFILE": str(settings.profile),
        "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "TRIBUTARY_S3__ENDPOINT_URL": settings.s3.endpoint_url,
        "TRIBUTARY_S3__ICEBERG_CATALOG_URI": settings.s3.iceberg_catalog_uri,
        "TRIBUTARY_SEARCH__OPENSEARCH__URL": settings.search.opensearch.url,
        "TRIBUTARY_TRINO__URL": settings.trino.url,
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


def _properties(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}
