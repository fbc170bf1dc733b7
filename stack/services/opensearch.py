"""OpenSearch, from the official minimal distribution published on Maven Central."""

from __future__ import annotations

import os
import re
import shutil

from resources.settings import SearchEngine
from stack.fetch import fetch_archive, java_executable
from stack.services.base import local_port
from stack.services.search_server import SearchServer


class OpenSearchServer(SearchServer):
    engine = SearchEngine.OPENSEARCH
    name = "opensearch"
    description = "OpenSearch (single node, no security plugin)"

    @property
    def port(self) -> int:
        return local_port(self.settings.search.opensearch.url, "TRIBUTARY_SEARCH__OPENSEARCH__URL")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ports(self) -> dict[str, int]:
        return {"http": self.port, "transport": self.options.opensearch_transport_port}

    @property
    def dist(self):  # type: ignore[no-untyped-def]
        return self.cache / f"opensearch-{self.options.opensearch_version}"

    def install(self) -> None:
        fetch_archive(
            self.options.maven_repository,
            "org.opensearch.distribution.integ-test-zip:opensearch:"
            f"{self.options.opensearch_version}:zip",
            self.dist,
        )

    def launch(self) -> tuple[list[str], dict[str, str]]:
        major = int(self.options.opensearch_version.split(".")[0])
        # 2.x runs under a Security Manager, which Java 24 removed; 3.x needs Java 21+.
        java = java_executable(
            self.options.java_home,
            21 if major >= 3 else 11,
            None if major >= 3 else 23,
            system_java=self.options.system_java,
        )
        config, data, logs, tmp = (self.home / d for d in ("config", "data", "logs", "tmp"))
        for d in (data, logs, tmp):
            d.mkdir(parents=True, exist_ok=True)
        # A config folder of our own: the distribution's stays pristine in the cache, and
        # OpenSearch writes its keystore into the config folder.
        shutil.rmtree(config, ignore_errors=True)
        shutil.copytree(self.dist / "config", config)
        jvm_options = (config / "jvm.options").read_text()
        heap = self.options.opensearch_heap
        jvm_options = re.sub(r"^-Xms\S+$", f"-Xms{heap}", jvm_options, flags=re.M)
        jvm_options = re.sub(r"^-Xmx\S+$", f"-Xmx{heap}", jvm_options, flags=re.M)
        # Relative paths in jvm.options resolve against the distribution; keep them ours.
        jvm_options = jvm_options.replace("logs/gc.log", f"{logs}/gc.log")
        jvm_options = jvm_options.replace("HeapDumpPath=data", f"HeapDumpPath={data}")
        jvm_options = jvm_options.replace("ErrorFile=logs/", f"ErrorFile={logs}/")
        (config / "jvm.options").write_text(jvm_options)
        settings = {
            "cluster.name": "tributary",
            "node.name": "tributary-1",
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": self.options.opensearch_transport_port,
            "discovery.type": "single-node",
            "path.data": data,
            "path.logs": logs,
            # A laptop's disk is often fuller than the default 85% watermark.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        (config / "opensearch.yml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
        java_home = str(java).removesuffix("/bin/java")
        # Touching the whole heap at start doubles the resident memory of an idle node.
        java_opts = ["-XX:-AlwaysPreTouch"]
        if os.geteuid() == 0:
            # OpenSearch refuses to run as root, and finds out through JNA's native library;
            # without it the check cannot fire (nor can memory locking or the syscall
            # filter, which a local development node does without).
            java_opts.append("-Djna.nounpack=true")
        env = {
            "OPENSEARCH_JAVA_HOME": java_home,
            "JAVA_HOME": "",
            "OPENSEARCH_PATH_CONF": str(config),
            "OPENSEARCH_TMPDIR": str(tmp),
            "OPENSEARCH_JAVA_OPTS": " ".join(java_opts),
        }
        return [str(self.dist / "bin" / "opensearch")], env
