"""Trino, one node acting as coordinator and worker, with the platform's catalogs.

The server comes from Maven Central: ``io.trino:trino-server:<version>:tar.gz``, the last
release whose distribution is published there is 476. Its plugin zips are published one by
one too, except the OpenSearch connector's, so the whole distribution is downloaded and only
the plugins the platform uses are unpacked (``PLUGINS``).

Catalogs (``etc/catalog/<name>.properties``, written at every start from the settings):

- ``iceberg``: the curated lake through SeaweedFS's Iceberg REST catalog (OAuth2 client
  credentials, the S3 keys of the platform), data read with Trino's native S3 file system;
  the reporting views live there too (``iceberg.reporting``: the REST catalog stores Iceberg
  views);
- ``opensearch``: the real-time indices of the loader, one table per index and per alias.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from resources.lake import catalog_properties
from resources.settings import LakeCatalog, PlatformSettings
from stack.errors import StackError
from stack.fetch import fetch_archive, java_executable
from stack.services.base import Service, local_port

# The plugins the platform uses, and those the server itself loads at start (the set of
# ``trino-server-core``). Every other connector of the distribution stays in the archive.
PLUGINS = frozenset(
    {
        "iceberg",
        "opensearch",
        "exchange-filesystem",
        "functions-python",
        "geospatial",
        "password-authenticators",
        "resource-group-managers",
        "session-property-managers",
        "spooling-filesystem",
    }
)

# Trino's recommended JVM options (docs: installation/deployment), without the heap size.
_JVM_OPTIONS = [
    "-server",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:+EnableDynamicAgentLoading",
    # As for OpenSearch: touching the whole heap at start only costs resident memory.
    "-XX:-AlwaysPreTouch",
]


def _wanted(member: str) -> bool:
    """Whether a path of the distribution (below its top folder) is unpacked."""
    parts = member.split("/")
    if parts[0] == "plugin" and len(parts) > 1 and parts[1]:
        return parts[1] in PLUGINS
    other_systems = ("darwin", "linux-ppc")
    return not (parts[0] == "bin" and len(parts) > 1 and parts[1].startswith(other_systems))


def iceberg_catalog(settings: PlatformSettings) -> dict[str, object]:
    """Trino's properties for the curated lake: the catalog that ``resources.lake`` describes.

    The same REST catalog, credential and warehouse as pyiceberg's in the ``stack`` profile,
    so Trino reads exactly the tables the Dagster assets write. Trino authenticates with the
    OAuth2 client-credentials flow against SeaweedFS's token endpoint, as pyiceberg does.
    """
    lake = catalog_properties(settings, LakeCatalog.REST)
    return {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "rest",
        "iceberg.rest-catalog.uri": lake["uri"],
        "iceberg.rest-catalog.warehouse": lake["warehouse"],
        "iceberg.rest-catalog.security": "OAUTH2",
        "iceberg.rest-catalog.oauth2.credential": lake["credential"],
        "iceberg.rest-catalog.oauth2.server-uri": lake["oauth2-server-uri"],
        "fs.native-s3.enabled": "true",
        "s3.endpoint": lake["s3.endpoint"],
        "s3.region": lake["s3.region"],
        "s3.path-style-access": lake["s3.path-style-access"],
        "s3.aws-access-key": lake["s3.access-key-id"],
        "s3.aws-secret-key": lake["s3.secret-access-key"],
    }


def _properties(values: dict[str, object]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


class TrinoServer(Service):
    name = "trino"
    description = "Trino (coordinator and worker in one node; lake, search and reporting catalogs)"

    @property
    def needs(self) -> tuple[str, ...]:  # type: ignore[override]
        """The lake's REST catalog, and OpenSearch when the real-time indices are read there."""
        return ("seaweedfs", "opensearch") if self.settings.search.read_by_trino else ("seaweedfs",)

    @property
    def port(self) -> int:
        return local_port(self.settings.trino.url, "TRIBUTARY_TRINO__URL")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ports(self) -> dict[str, int]:
        return {"http": self.port}

    @property
    def dist(self) -> Path:
        return self.cache / f"trino-server-{self.options.trino_version}"

    def install(self) -> None:
        fetch_archive(
            self.options.maven_repository,
            f"io.trino:trino-server:{self.options.trino_version}:tar.gz",
            self.dist,
            include=_wanted,
        )

    def catalogs(self) -> dict[str, dict[str, object]]:
        """The catalogs' properties by catalog name (the search one only if Trino reads it)."""
        trino = self.settings.trino
        if not self.settings.search.read_by_trino:
            return {trino.iceberg_catalog: iceberg_catalog(self.settings)}
        search = self.settings.search.opensearch
        parts = urlsplit(search.url)
        opensearch: dict[str, object] = {
            "connector.name": "opensearch",
            "opensearch.host": parts.hostname,
            "opensearch.port": parts.port or (443 if parts.scheme == "https" else 9200),
            "opensearch.tls.enabled": str(parts.scheme == "https").lower(),
            "opensearch.default-schema-name": "default",
        }
        if search.username:
            opensearch["opensearch.security"] = "PASSWORD"
            opensearch["opensearch.auth.user"] = search.username
            opensearch["opensearch.auth.password"] = (
                search.password.get_secret_value() if search.password else ""
            )
        return {
            trino.iceberg_catalog: iceberg_catalog(self.settings),
            trino.opensearch_catalog: opensearch,
        }

    def launch(self) -> tuple[list[str], dict[str, str]]:
        java = java_executable(self.options.java_home, 24, system_java=self.options.system_java)
        etc, data = self.home / "etc", self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        # Written afresh at every start: the settings are the one source of the configuration.
        shutil.rmtree(etc, ignore_errors=True)
        (etc / "catalog").mkdir(parents=True)
        (etc / "node.properties").write_text(
            _properties(
                {
                    "node.environment": "tributary",
                    "node.id": "tributary-1",
                    "node.data-dir": data,
                    "node.bind-ip": "127.0.0.1",
                    "node.internal-address": "127.0.0.1",
                }
            )
        )
        heap = self.options.trino_heap
        (etc / "jvm.config").write_text(
            "\n".join([*_JVM_OPTIONS, f"-Xmx{heap}", f"-Djava.io.tmpdir={data}"]) + "\n"
        )
        (etc / "config.properties").write_text(
            _properties(
                {
                    "coordinator": "true",
                    "node-scheduler.include-coordinator": "true",
                    "http-server.http.port": self.port,
                    "discovery.uri": self.url,
                    "query.max-memory": self.options.trino_query_max_memory,
                    "query.max-memory-per-node": self.options.trino_query_max_memory,
                    # The plugins folder of the cached distribution, shared by every state dir.
                    "plugin.dir": self.dist / "plugin",
                    # CREATE CATALOG / DROP CATALOG at run time (a test's own lake, for one):
                    # kept in etc/catalog, which every start writes afresh.
                    "catalog.management": "dynamic",
                    "catalog.store": "file",
                }
            )
        )
        (etc / "log.properties").write_text("io.trino=INFO\n")
        for catalog, properties in self.catalogs().items():
            (etc / "catalog" / f"{catalog}.properties").write_text(_properties(properties))
        launcher = self.dist / "bin" / "launcher"
        if not launcher.exists():
            raise StackError(f"{launcher} is missing: remove {self.dist} and start again")
        command = [
            str(launcher),
            "run",
            f"--etc-dir={etc}",
            f"--data-dir={data}",
            f"--server-log-file={data / 'var' / 'log' / 'server.log'}",
        ]
        return command, {"JAVA_HOME": str(java).removesuffix("/bin/java")}

    def healthy(self) -> bool:
        try:
            resp = httpx.get(f"{self.url}/v1/info", timeout=2)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200 and resp.json().get("starting") is False
