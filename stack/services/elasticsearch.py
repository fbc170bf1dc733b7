"""Elasticsearch 8, from Elastic's minimal distribution published on Maven Central.

``org.elasticsearch.distribution.integ-test-zip`` holds the server with the modules
``transport-netty4``, ``x-pack-core``, ``x-pack-security`` and ``apm`` only: no ILM, ingest
pipelines, SQL, painless, reindex or delete-by-query, and no ``GET /``. It serves everything
the platform asks of the search store (:mod:`resources.search`). It is run unmodified, as
downloaded (Elastic License 2.0 / SSPL / AGPL; not bundled with the project).

Security: off, as for the local OpenSearch node. The node binds 127.0.0.1 only, and a default
password would be one more local secret; a production Elasticsearch keeps security on and the
platform is given its user, password and CA (``TRIBUTARY_SEARCH__ELASTICSEARCH__*``).

Elasticsearch refuses to run as root and has no switch for it. Started by root (as on CI), the
stack runs it as the unprivileged system user ``tributary-search`` (:mod:`stack.services.
unprivileged`), who owns the node's config, data, logs and temporary folders; the
distribution is copied where that user can read it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from resources.settings import SearchEngine
from stack.fetch import fetch_archive, java_executable
from stack.services.base import local_port
from stack.services.search_server import SearchServer
from stack.services.unprivileged import (
    as_user,
    chown_tree,
    reachable_by_others,
    running_as_root,
    server_home,
    service_user,
    shared_folder,
)

SERVICE_USER = "tributary-search"


class ElasticsearchServer(SearchServer):
    engine = SearchEngine.ELASTICSEARCH
    name = "elasticsearch"
    description = "Elasticsearch 8 (single node, security off, loopback only)"

    @property
    def port(self) -> int:
        return local_port(
            self.settings.search.elasticsearch.url, "TRIBUTARY_SEARCH__ELASTICSEARCH__URL"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ports(self) -> dict[str, int]:
        return {"http": self.port, "transport": self.options.elasticsearch_transport_port}

    @property
    def dist(self) -> Path:
        return self.cache / f"elasticsearch-{self.options.elasticsearch_version}"

    def install(self) -> None:
        fetch_archive(
            self.options.maven_repository,
            "org.elasticsearch.distribution.integ-test-zip:elasticsearch:"
            f"{self.options.elasticsearch_version}:zip",
            self.dist,
        )

    def _readable_dist(self, as_root: bool) -> Path:
        """The distribution, where the node's user can read it (a copy when the cache is not).

        One copy per version, shared by every state folder: the cache under a home folder of
        mode 700 (root's) is out of the node user's reach.
        """
        if not as_root or reachable_by_others(self.dist):
            return self.dist
        shared = shared_folder(self.name)
        copy = shared / f"dist-{self.options.elasticsearch_version}"
        if not (copy / ".complete").exists():
            partial = Path(tempfile.mkdtemp(prefix=f".{copy.name}-", dir=shared))
            shutil.rmtree(partial)
            shutil.copytree(self.dist, partial, symlinks=True)
            shutil.rmtree(copy, ignore_errors=True)
            partial.rename(copy)
        return copy

    def launch(self) -> tuple[list[str], dict[str, str]]:
        java = java_executable(self.options.java_home, 17, system_java=self.options.system_java)
        as_root = running_as_root()
        home = server_home(self.home, self.name, as_root)
        self.home.mkdir(parents=True, exist_ok=True)  # the process's working folder
        home.mkdir(parents=True, exist_ok=True)
        dist = self._readable_dist(as_root)
        config, data, logs, tmp = (home / d for d in ("config", "data", "logs", "tmp"))
        for d in (data, logs, tmp):
            d.mkdir(parents=True, exist_ok=True)
        # A config folder of our own: the distribution's stays pristine, and the node writes
        # its keystore there.
        shutil.rmtree(config, ignore_errors=True)
        shutil.copytree(dist / "config", config)
        heap = self.options.elasticsearch_heap
        jvm = (config / "jvm.options").read_text()
        # Relative paths in jvm.options resolve against the working folder; keep them ours.
        jvm = jvm.replace("ErrorFile=hs_err", f"ErrorFile={logs}/hs_err")
        jvm = jvm.replace("file=gc.log", f"file={logs}/gc.log")
        jvm = re.sub(r"^-XX:\+HeapDumpOnOutOfMemoryError$", "", jvm, flags=re.M)
        (config / "jvm.options").write_text(jvm)
        settings = {
            "cluster.name": "tributary",
            "node.name": "tributary-es-1",
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": self.options.elasticsearch_transport_port,
            "discovery.type": "single-node",
            "path.data": data,
            "path.logs": logs,
            "xpack.security.enabled": "false",
            # A laptop's disk is often fuller than the default 85% watermark.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        (config / "elasticsearch.yml").write_text(
            "".join(f"{k}: {v}\n" for k, v in settings.items())
        )
        env = {
            "ES_JAVA_HOME": str(java).removesuffix("/bin/java"),
            "JAVA_HOME": "",
            "ES_PATH_CONF": str(config),
            "ES_TMPDIR": str(tmp),
            # Touching the whole heap at start doubles the resident memory of an idle node.
            "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap} -XX:-AlwaysPreTouch",
        }
        command = [str(dist / "bin" / "elasticsearch")]
        if as_root:
            user = service_user(SERVICE_USER, "Elasticsearch")
            for d in (config, data, logs, tmp):
                chown_tree(d, user)
            command = as_user(user, command)
        return command, env
