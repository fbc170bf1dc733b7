"""``tributary stack`` against real servers, on ports and a state folder of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cli.errors import ExitCode

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIBUTARY = str(Path(sys.executable).parent / "tributary")


def _env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(
        {
            "TRIBUTARY_STACK__STATE_DIR": str(state),
            # Ports of their own, away from the suite's servers and, gRPC twins (+10000) included,
            # below the kernel's ephemeral range (32768+), where any connection may take them.
            "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:21092",
            "TRIBUTARY_STACK__KAFKA_CONTROLLER_PORT": "21093",
            "TRIBUTARY_S3__ENDPOINT_URL": "http://127.0.0.1:21333",
            "TRIBUTARY_S3__ICEBERG_CATALOG_URI": "http://127.0.0.1:21181",
            "TRIBUTARY_STACK__SEAWEEDFS_MASTER_PORT": "21334",
            "TRIBUTARY_STACK__SEAWEEDFS_VOLUME_PORT": "21340",
            "TRIBUTARY_STACK__SEAWEEDFS_FILER_PORT": "21888",
            "TRIBUTARY_STACK__SEAWEEDFS_ADMIN_PORT": "21646",
            "TRIBUTARY_STACK__SEAWEEDFS_LANCE_PORT": "21101",
            "TRIBUTARY_STACK__START_TIMEOUT_S": "120",
            **extra,
        }
    )
    return env


def run(state: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRIBUTARY, "stack", *args],
        env=_env(state, **extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def processes_under(state: Path) -> list[psutil.Process]:
    """Every live process whose command line or working folder lies in ``state``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if str(state) in text:
            found.append(proc)
    return found


def pid_of(state: Path, name: str) -> int:
    import json

    return int(json.loads((state / f"{name}.pid").read_text())["pid"])


@pytest.fixture()
def state(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "state"
    yield folder
    run(folder, "down")
    for proc in processes_under(folder):
        proc.kill()


def test_lifecycle_up_status_down(state: Path) -> None:
    up = run(state, "up", "seaweedfs", "kafka")
    assert up.returncode == 0, up.stderr + up.stdout
    assert "topic tributary.events.raw created" in up.stdout
    assert "bucket tributary-raw created" in up.stdout

    status = run(state, "status", "kafka", "seaweedfs")
    assert status.returncode == 0, status.stdout
    kafka_pid, weed_pid = pid_of(state, "kafka"), pid_of(state, "seaweedfs")
    for line, pid, url in (
        ("kafka", kafka_pid, "127.0.0.1:21092"),
        ("seaweedfs", weed_pid, "http://127.0.0.1:21333"),
    ):
        row = next(r for r in status.stdout.splitlines() if f" {line} " in r)
        assert "healthy" in row and str(pid) in row and url in row, row
        assert psutil.pid_exists(pid)

    again = run(state, "up", "seaweedfs", "kafka")
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert (pid_of(state, "kafka"), pid_of(state, "seaweedfs")) == (kafka_pid, weed_pid)

    # A service that died is noticed, reported, and restarted by the next `up`.
    os.kill(weed_pid, signal.SIGKILL)
    psutil.Process(weed_pid).wait(10) if psutil.pid_exists(weed_pid) else None
    dead = run(state, "status", "seaweedfs")
    assert dead.returncode == 1
    assert "dead" in dead.stdout
    revived = run(state, "up", "seaweedfs")
    assert revived.returncode == 0, revived.stderr
    assert "had died; restarting" in revived.stdout
    assert pid_of(state, "seaweedfs") != weed_pid

    down = run(state, "down")
    assert down.returncode == 0, down.stderr
    assert "kafka: stopped" in down.stdout and "seaweedfs: stopped" in down.stdout
    assert processes_under(state) == [], "down left processes behind"
    assert not list(state.glob("*.pid"))
    final = run(state, "status", "kafka", "seaweedfs")
    assert final.stdout.count("stopped") == 2


def test_a_server_it_did_not_start_is_reused_and_never_stopped(state: Path, tmp_path: Path) -> None:
    assert run(state, "up", "seaweedfs").returncode == 0
    pid = pid_of(state, "seaweedfs")
    other = tmp_path / "other-state"
    status = run(other, "status", "seaweedfs")
    assert "external" in status.stdout
    up = run(other, "up", "seaweedfs")
    assert up.returncode == 0 and "reusing" in up.stdout
    down = run(other, "down", "seaweedfs")
    assert down.returncode == 0 and "nothing of ours to stop" in down.stdout
    assert psutil.pid_exists(pid)


def test_wrong_s3_credentials_end_with_a_clear_message(state: Path) -> None:
    assert run(state, "up", "seaweedfs").returncode == 0
    wrong = run(state, "up", "seaweedfs", TRIBUTARY_S3__SECRET_ACCESS_KEY="wrong-secret")
    assert wrong.returncode == ExitCode.STACK
    assert "refused the credentials" in wrong.stderr
    assert "TRIBUTARY_S3__SECRET_ACCESS_KEY" in wrong.stderr


def test_a_taken_port_is_named(state: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 21092))
        sock.listen()
        result = run(state, "up", "kafka")
    assert result.returncode == ExitCode.STACK
    assert "21092" in result.stderr and "already in use" in result.stderr
    assert processes_under(state) == []


def test_missing_java_is_explained(state: Path) -> None:
    result = run(state, "up", "kafka", TRIBUTARY_STACK__JAVA_HOME="/nonexistent/jdk")
    assert result.returncode == ExitCode.STACK
    assert "Java 17+ is required" in result.stderr
    assert "TRIBUTARY_STACK__JAVA_HOME" in result.stderr


def test_too_old_java_is_explained(state: Path, tmp_path: Path) -> None:
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\"' >&2\n")
    (fake / "java").chmod(0o755)
    result = run(state, "up", "kafka", TRIBUTARY_STACK__JAVA_HOME=str(fake.parent))
    assert result.returncode == ExitCode.STACK
    assert "Java 11" in result.stderr and "Java 17+ is required" in result.stderr


# A Kafka version without a lock in stack/locks is resolved by Maven (here a stand-in that
# fails as Maven does on a version the repository lacks: Maven is not installed by bootstrap).
_UNLOCKED = {"TRIBUTARY_STACK__KAFKA_VERSION": "0.0.1-does-not-exist"}
_FAILING_MAVEN = """#!/bin/sh
echo "[ERROR] Failed to execute goal on project kafka-runtime: Could not resolve dependencies"
echo "[ERROR] org.apache.kafka:kafka_2.13:jar:0.0.1-does-not-exist was not found"
exit 1
"""


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {**_UNLOCKED, "TRIBUTARY_STACK__MAVEN": "no-such-mvn"},
            "Maven ('no-such-mvn') is not installed",
        ),
        (
            {**_UNLOCKED, "TRIBUTARY_STACK__MAVEN": "{failing}"},
            "could not download org.apache.kafka:kafka_2.13:0.0.1-does-not-exist",
        ),
    ],
)
def test_fetch_failures_are_explained(
    state: Path, tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    cache = tmp_path / "empty-cache"
    failing = tmp_path / "mvn"
    failing.write_text(_FAILING_MAVEN)
    failing.chmod(0o755)
    settings = {k: v.format(failing=failing) for k, v in settings.items()}
    result = run(state, "up", "kafka", TRIBUTARY_STACK__CACHE_DIR=str(cache), **settings)
    assert result.returncode == ExitCode.STACK
    assert message in result.stderr
    assert not list(cache.glob("kafka-*/libs")), "a failed fetch left a partial download"


def test_unknown_service_is_refused(state: Path) -> None:
    result = run(state, "up", "mysql")
    assert result.returncode == ExitCode.STACK
    assert "unknown service(s) mysql" in result.stderr


def test_non_loopback_address_is_refused(state: Path) -> None:
    result = run(state, "up", "kafka", TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS="kafka.example.com:9092")
    assert result.returncode == ExitCode.STACK
    assert "not a loopback host:port" in result.stderr


def test_dead_pid_of_another_process_is_never_signalled(state: Path) -> None:
    """A PID file whose PID now belongs to someone else (PID reuse) is treated as dead."""
    import json

    state.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (state / "seaweedfs.pid").write_text(
            json.dumps(
                {
                    "pid": sleeper.pid,
                    "start_time": 1,
                    "command": ["weed"],
                    "started_at": time.time(),
                }
            )
        )
        status = run(state, "status", "seaweedfs")
        assert "dead" in status.stdout
        run(state, "down", "seaweedfs")
        assert sleeper.poll() is None, "down signalled a process it did not start"
    finally:
        sleeper.kill()
