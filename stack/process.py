"""Start, watch and stop one server process, tracked by a PID file in its state folder.

A PID file records the process's PID and its kernel start time, so a PID reused by an
unrelated process after a crash is never mistaken for ours and never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.errors import StackError


def _start_time(pid: int) -> int | None:
    """Return the kernel start time of ``pid`` (clock ticks since boot), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces; fields after its closing ')' are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when something listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: int
    command: list[str]
    started_at: float

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start_time


class ManagedProcess:
    """A server process whose PID file lives at ``<state>/<name>.pid``."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.pid_file = state_dir / f"{name}.pid"
        self.log_file = state_dir / "logs" / f"{name}.out"

    def record(self) -> PidRecord | None:
        try:
            data = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return PidRecord(**data)

    def start(self, command: Sequence[str], env: Mapping[str, str], cwd: Path) -> PidRecord:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(command),
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session and process group: it outlives this command, and ``stop``
                # can signal every process it spawned (no orphans).
                start_new_session=True,
            )
        start_time = _start_time(proc.pid)
        if start_time is None:
            raise StackError(f"{self.name} exited immediately; see {self.log_file}")
        rec = PidRecord(proc.pid, start_time, list(command), time.time())
        self.pid_file.write_text(json.dumps(rec.__dict__))
        return rec

    def stop(self, timeout: float, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Stop the process group we started; return True if something was stopped."""
        rec = self.record()
        if rec is None:
            return False
        stopped = False
        if rec.alive():
            stopped = True
            _signal_group(rec.pid, sig)
            deadline = time.monotonic() + timeout
            while _group_alive(rec.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _group_alive(rec.pid):
                _signal_group(rec.pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while _group_alive(rec.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    # Reap the leader if it is our own child (the test suite starts servers in-process).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies keep the group "alive" for killpg; count only live members.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
