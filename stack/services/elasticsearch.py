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
stack runs it as the unprivileged system user ``tributary-search``, created when missing, who
owns the node's config, data, logs and temporary folders; the distribution is copied where
that user can read it.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from resources.settings import SearchEngine
from stack.errors import StackError
from stack.fetch import fetch_archive, java_executable
from stack.services.base import local_port
from stack.services.search_server import SearchServer

SERVICE_USER = "tributary-search"
# Where the node's files go when the stack runs as root and its state folder is out of the
# node user's reach (a home folder of mode 700, pytest's temporary folders).
_SHARED = Path(tempfile.gettempdir()) / "tributary-elasticsearch"


def _reachable_by_others(path: Path) -> bool:
    """Whether a user that is neither owner nor group can walk down to ``path``."""
    for folder in (path, *path.parents):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _service_user() -> pwd.struct_passwd:
    """The unprivileged user the node runs as when the stack runs as root; made if missing."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    proc = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 9):  # 9: made meanwhile by another start
        raise StackError(
            f"Elasticsearch refuses to run as root, and the user {SERVICE_USER} could not be "
            f"created: {proc.stderr.strip()}; create it, or run the stack as another user"
        )
    return pwd.getpwnam(SERVICE_USER)


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

    def _node_home(self, as_root: bool) -> Path:
        """Where the node's files live: the state folder, unless its user cannot reach it."""
        if not as_root or _reachable_by_others(self.home):
            return self.home
        tag = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return _SHARED / tag

    def _readable_dist(self, as_root: bool) -> Path:
        """The distribution, where the node's user can read it (a copy when the cache is not).

        One copy per version, shared by every state folder: the cache under a home folder of
        mode 700 (root's) is out of the node user's reach.
        """
        if not as_root or _reachable_by_others(self.dist):
            return self.dist
        copy = _SHARED / f"dist-{self.options.elasticsearch_version}"
        if not (copy / ".complete").exists():
            partial = Path(tempfile.mkdtemp(prefix=f".{copy.name}-", dir=_SHARED))
            shutil.rmtree(partial)
            shutil.copytree(self.dist, partial, symlinks=True)
            shutil.rmtree(copy, ignore_errors=True)
            partial.rename(copy)
        return copy

    def launch(self) -> tuple[list[str], dict[str, str]]:
        java = java_executable(self.options.java_home, 17, system_java=self.options.system_java)
        as_root = os.geteuid() == 0
        home = self._node_home(as_root)
        self.home.mkdir(parents=True, exist_ok=True)  # the process's working folder
        if as_root:
            _SHARED.mkdir(parents=True, exist_ok=True)
            _SHARED.chmod(0o755)
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
            user = _service_user()
            for d in (config, data, logs, tmp):
                _chown_tree(d, user.pw_uid, user.pw_gid)
            setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
            command = [
                setpriv,
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--init-groups",
                "--",
                *command,
            ]
        return command, env


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
