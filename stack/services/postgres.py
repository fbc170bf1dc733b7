"""PostgreSQL 15 from Debian's packages: the shop's operational database, for change capture.

The server binaries are the system's (``/usr/lib/postgresql/15/bin``; ``scripts/bootstrap``
installs ``postgresql-15`` where they are missing), the cluster lives in the state folder
(``initdb`` on the first start), listens on 127.0.0.1 only (no Unix socket) and is
configured for logical decoding: ``wal_level=logical`` with WAL senders and replication slots
for the Debezium connector. The bootstrap superuser is ``TRIBUTARY_POSTGRES__USER``, password
authentication (SCRAM) for every connection.

PostgreSQL refuses to run as root: started by root (as on CI), the cluster belongs to the
unprivileged system user ``tributary-postgres`` and the server runs as that user
(:mod:`stack.services.unprivileged`).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from resources.postgres import answers, ensure_cdc
from stack.errors import StackError
from stack.services.base import Service, local_port
from stack.services.unprivileged import (
    as_user,
    chown_tree,
    running_as_root,
    server_home,
    service_user,
)

SERVICE_USER = "tributary-postgres"


class Postgres(Service):
    name = "postgres"
    description = "PostgreSQL 15 (logical decoding on, loopback only)"
    # Fast shutdown: SIGTERM ("smart") would wait for every client to leave.
    stop_signal = signal.SIGINT

    @property
    def port(self) -> int:
        pg = self.settings.postgres
        return local_port(f"{pg.host}:{pg.port}", "TRIBUTARY_POSTGRES__HOST/PORT")

    @property
    def url(self) -> str:
        return f"postgresql://127.0.0.1:{self.port}/{self.settings.postgres.database}"

    def ports(self) -> dict[str, int]:
        return {"sql": self.port}

    @property
    def bin(self) -> Path:
        return self.options.postgres_bin

    def install(self) -> None:
        if not (self.bin / "postgres").exists():
            raise StackError(
                f"PostgreSQL's server is not installed ({self.bin}/postgres is missing): run "
                "scripts/bootstrap, or apt-get install postgresql-15, or point "
                "TRIBUTARY_STACK__POSTGRES_BIN at another PostgreSQL's bin folder"
            )

    def launch(self) -> tuple[list[str], dict[str, str]]:
        as_root = running_as_root()
        home = server_home(self.home, self.name, as_root)
        self.home.mkdir(parents=True, exist_ok=True)  # the process's working folder
        home.mkdir(parents=True, exist_ok=True)
        data = home / "data"
        user = service_user(SERVICE_USER, "PostgreSQL") if as_root else None

        def run_as(command: list[str]) -> list[str]:
            return as_user(user, command) if user is not None else command

        if not (data / "PG_VERSION").exists():
            self._initdb(home, data, run_as, user)
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "wal_level": "logical",
            "max_wal_senders": str(self.options.postgres_max_wal_senders),
            "max_replication_slots": str(self.options.postgres_max_replication_slots),
            "shared_buffers": self.options.postgres_shared_buffers,
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        command = [str(self.bin / "postgres"), "-D", str(data)]
        for key, value in options.items():
            command += ["-c", f"{key}={value}"]
        return run_as(command), {}

    def _initdb(
        self,
        home: Path,
        data: Path,
        run_as: Callable[[list[str]], list[str]],
        user: pwd.struct_passwd | None,
    ) -> None:
        pg = self.settings.postgres
        pwfile = home / ".initdb-password"
        pwfile.write_text(pg.secret("password") + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            chown_tree(home, user)
        try:
            proc = subprocess.run(
                run_as(
                    [
                        str(self.bin / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        pg.user,
                        f"--pwfile={pwfile}",
                        "--auth=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C",
                    ]
                ),
                capture_output=True,
                text=True,
                check=False,
                cwd=home,
                env={**os.environ, "LC_ALL": "C"},
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise StackError(f"initdb failed:\n{proc.stdout}{proc.stderr}")

    def in_use(self) -> bool:
        """Only with change capture on (``TRIBUTARY_STACK__CDC``): nothing reads it otherwise."""
        return self.options.cdc

    def healthy(self) -> bool:
        return answers(self.settings.postgres)

    def provision(self) -> list[str]:
        return ensure_cdc(self.settings.postgres).done or ["database, role, publication present"]
