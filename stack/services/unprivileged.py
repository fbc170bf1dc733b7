"""Running a server that refuses root (Elasticsearch, PostgreSQL) when the stack runs as root.

Started by root (as on CI), such a server runs as an unprivileged system user, created when
missing, who owns its files; ``setpriv`` drops to that user just before the server starts, so
it stays in the process group the stack started and is stopped with it. Where the state folder
is out of that user's reach (a home folder of mode 700, pytest's temporary folders), the
server's files go to a folder of its own under the system's temporary folder instead.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from stack.errors import StackError


def running_as_root() -> bool:
    return os.geteuid() == 0


def reachable_by_others(path: Path) -> bool:
    """Whether a user that is neither owner nor group can walk down to ``path``."""
    for folder in (path, *path.parents):
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def shared_folder(server: str) -> Path:
    """``<tmp>/tributary-<server>``, walkable by every user (made when missing)."""
    folder = Path(tempfile.gettempdir()) / f"tributary-{server}"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    return folder


def server_home(home: Path, server: str, as_root: bool) -> Path:
    """Where a server's files live: ``home``, unless the server's user cannot reach it."""
    if not as_root or reachable_by_others(home):
        return home
    tag = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    return shared_folder(server) / tag


def service_user(user: str, server: str) -> pwd.struct_passwd:
    """The unprivileged system user ``user`` (made if missing, with a group of its name)."""
    try:
        return pwd.getpwnam(user)
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
            user,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 9):  # 9: made meanwhile by another start
        raise StackError(
            f"{server} refuses to run as root, and the user {user} could not be "
            f"created: {proc.stderr.strip()}; create it, or run the stack as another user"
        )
    return pwd.getpwnam(user)


def as_user(user: pwd.struct_passwd, command: list[str]) -> list[str]:
    """``command`` run as ``user`` (through ``setpriv``, which execs it: same PID and group)."""
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [
        setpriv,
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--init-groups",
        "--",
        *command,
    ]


def chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    uid, gid = user.pw_uid, user.pw_gid
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
