"""The Trino service: what it unpacks, the catalogs it writes, and the running server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from resources.lake import catalog_properties
from resources.settings import PlatformSettings, Profile
from resources.trino import run_trino
from stack.config import StackSettings
from stack.manager import Stack
from stack.services.trino import TrinoServer, _wanted, iceberg_catalog


@pytest.mark.unit
@pytest.mark.parametrize(
    ("member", "kept"),
    [
        ("lib/io.trino_trino-main-476.jar", True),
        ("bin/launcher", True),
        ("bin/linux-amd64/launcher", True),
        ("bin/darwin-arm64/launcher", False),
        ("plugin/iceberg/x.jar", True),
        ("plugin/opensearch/x.jar", True),
        ("plugin/exchange-filesystem/x.jar", True),
        ("plugin/delta-lake/x.jar", False),
        ("plugin/hive/x.jar", False),
    ],
)
def test_only_the_plugins_in_use_are_unpacked(member: str, kept: bool) -> None:
    assert _wanted(member) is kept


@pytest.mark.unit
def test_the_iceberg_catalog_is_the_lake_that_pyiceberg_uses(tmp_path: Path) -> None:
    settings = StackSettings.model_validate(
        {
            "s3": {"access_key_id": "team", "secret_access_key": "s3cret"},
            "stack": {"state_dir": tmp_path},
        }
    )
    lake = catalog_properties(settings.model_copy(update={"profile": Profile.STACK}))
    trino = iceberg_catalog(settings)
    assert trino["iceberg.rest-catalog.uri"] == lake["uri"]
    assert trino["iceberg.rest-catalog.warehouse"] == lake["warehouse"] == "s3://tributary-lake/"
    assert trino["iceberg.rest-catalog.oauth2.credential"] == "team:s3cret"
    assert trino["s3.aws-secret-key"] == "s3cret"
    catalogs = TrinoServer(settings).catalogs()
    assert set(catalogs) == {"iceberg", "opensearch"}
    assert (
        catalogs["opensearch"]["opensearch.port"] == urlsplit(settings.search.opensearch.url).port
    )
    # With Elasticsearch as the store, Trino has no search catalog (it cannot read that build).
    elastic = settings.model_copy(update={"search": settings.search.using("elasticsearch")})
    assert set(TrinoServer(elastic).catalogs()) == {"iceberg"}


@pytest.mark.integration
def test_trino_runs_from_the_project_bound_to_loopback(trino: PlatformSettings) -> None:
    info = httpx.get(f"{trino.trino.url}/v1/info", timeout=5).json()
    assert info["starting"] is False
    stack = StackSettings()
    assert info["nodeVersion"]["version"] == stack.stack.trino_version
    service = Stack(stack).services["trino"]
    port = service.ports()["http"]
    # Every socket listening on the port is bound to 127.0.0.1: 0100007F in /proc/net/tcp,
    # the IPv4-mapped ::ffff:127.0.0.1 in tcp6 (Java's sockets are dual-stack).
    loopback = ("0100007F", "0000000000000000FFFF00000100007F")
    listening = [
        fields[1].split(":")[0]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port
    ]
    assert listening and all(a in loopback for a in listening), listening
    catalogs = {r[0] for r in run_trino(trino.trino, "show catalogs").rows}
    assert {trino.trino.iceberg_catalog, trino.trino.opensearch_catalog} <= catalogs
    schemas = {r[0] for r in run_trino(trino.trino, "show schemas from opensearch").rows}
    assert "default" in schemas
