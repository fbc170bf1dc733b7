"""Fetch server artefacts from Maven Central into the cache, once, atomically."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from stack.errors import StackError

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


def _maven(maven: str) -> str:
    path = shutil.which(maven)
    if path is None:
        raise StackError(
            f"Maven ('{maven}') is not installed; it fetches the servers from Maven Central. "
            "Install it (Debian: apt-get install maven) or set TRIBUTARY_STACK__MAVEN."
        )
    return path


def _run_maven(maven: str, args: list[str], cwd: Path, what: str) -> None:
    proc = subprocess.run(
        [_maven(maven), "-B", "-q", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise StackError(
            f"could not download {what} from Maven Central (mvn exit {proc.returncode}). "
            f"Check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml).\n{tail}"
        )


def fetch_runtime_jars(maven: str, name: str, coordinates: list[str], target: Path) -> Path:
    """Resolve ``group:artifact:version`` coordinates with their runtime deps into ``target``."""
    if (target / ".complete").exists():
        return target
    deps = "\n".join(
        _DEPENDENCY.format(group=g, artifact=a, version=v)
        for g, a, v in (c.split(":") for c in coordinates)
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(_POM.format(name=name, dependencies=deps))
        out = work / "libs"
        _run_maven(
            maven,
            [
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={out}",
            ],
            work,
            ", ".join(coordinates),
        )
        (out / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    return target


def _unpack(archive: Path, into: Path, include: Callable[[str], bool]) -> None:
    """Unpack the members of a zip or tar.gz whose path (below the top folder) ``include``s."""

    def wanted(name: str) -> bool:
        parts = name.split("/", 1)
        return include(parts[1] if len(parts) == 2 else "")

    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into, members=[m for m in zf.namelist() if wanted(m)])
        # Zip entries lose their execute bits.
        for script in into.rglob("bin/*"):
            script.chmod(0o755)
    else:
        with tarfile.open(archive) as tf:
            members = [m for m in tf if wanted(m.name)]
            tf.extractall(into, members=members, filter="tar")


def fetch_archive(
    maven: str,
    coordinate: str,
    target: Path,
    include: Callable[[str], bool] = lambda _: True,
) -> Path:
    """Download ``group:artifact:version:zip`` (or ``:tar.gz``) and unpack it into ``target``.

    ``include`` chooses the members to unpack by their path below the archive's top folder
    (``plugin/iceberg/x.jar``), so a large distribution costs only the disk of what is used.
    The archive itself is downloaded into a throwaway local Maven repository: what stays in
    the cache is the unpacked tree, not a second copy of the download in ``~/.m2``.
    """
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    group, artifact, version, packaging = coordinate.split(":")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{artifact}-") as tmp:
        work = Path(tmp)
        _run_maven(
            maven,
            [
                "dependency:copy",
                f"-Dartifact={group}:{artifact}:{version}:{packaging}",
                f"-DoutputDirectory={work}",
                f"-Dmaven.repo.local={work / 'repository'}",
            ],
            work,
            coordinate,
        )
        archive = next(work.glob(f"*.{packaging}"))
        unpacked = work / "unpacked"
        _unpack(archive, unpacked, include)
        archive.unlink()
        roots = list(unpacked.iterdir())
        home = roots[0] if len(roots) == 1 and roots[0].is_dir() else unpacked
        (home / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        home.rename(target)
    return target


def _java_version(java: str) -> int | None:
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', proc.stderr + proc.stdout)
    return int(match.group(1)) if match else None


def java_executable(java_home: Path | None, minimum: int, maximum: int | None = None) -> str:
    """Return a ``java`` whose major version lies in [minimum, maximum], or say how to get one.

    With ``java_home`` set, only that JDK is considered; otherwise ``java`` on PATH and then
    the JDKs under /usr/lib/jvm, so a machine with Java 17 and a newer JDK serves both the
    servers that need 17 and those that need 21+.
    """
    wanted = f"Java {minimum}+" if maximum is None else f"Java {minimum} to {maximum}"
    if java_home is not None:
        candidates = [str(java_home / "bin" / "java")]
    else:
        on_path = shutil.which("java")
        candidates = [on_path] if on_path else []
        candidates += [str(p) for p in sorted(Path("/usr/lib/jvm").glob("*/bin/java"))]
    seen = []
    for java in candidates:
        if not Path(java).exists():
            continue
        version = _java_version(java)
        seen.append(f"{java} (Java {version})")
        if version is not None and version >= minimum and (maximum is None or version <= maximum):
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
