"""The shop's operational PostgreSQL: connections, and what change capture needs on it.

Change capture (Debezium's PostgreSQL connector, ``plugin.name=pgoutput``) reads the WAL
through a logical replication slot, as ``replication_user``: a role with ``REPLICATION``,
allowed to read every table (``pg_read_all_data``, for the initial snapshot), and a
publication that names the captured tables. :func:`ensure_cdc` makes them, idempotently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from psycopg2 import sql

from resources.settings import PostgresSettings


def connect(
    settings: PostgresSettings,
    database: str | None = None,
    replication_user: bool = False,
    timeout_s: int = 5,
) -> Any:
    """An autocommit connection to ``database`` (default: the shop's) as the owner or CDC role."""
    if replication_user:
        user, password = settings.replication_user, settings.secret("replication_password")
    else:
        user, password = settings.user, settings.secret("password")
    conn = psycopg2.connect(
        host=settings.host,
        port=settings.port,
        dbname=database or settings.database,
        user=user,
        password=password,
        connect_timeout=timeout_s,
        application_name="tributary",
    )
    conn.autocommit = True
    return conn


@contextmanager
def cursor(settings: PostgresSettings, database: str | None = None) -> Iterator[Any]:
    conn = connect(settings, database)
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def answers(settings: PostgresSettings) -> bool:
    """Whether PostgreSQL accepts the owner's login (to its ``postgres`` database)."""
    try:
        with cursor(settings, "postgres") as cur:
            cur.execute("SELECT 1")
    except psycopg2.Error:
        return False
    return True


def system_identifier(settings: PostgresSettings) -> str:
    """The cluster's identity (``initdb`` draws it): a new cluster has another one."""
    with cursor(settings, "postgres") as cur:
        cur.execute("SELECT system_identifier FROM pg_control_system()")
        return str(cur.fetchone()[0])


@dataclass
class CdcReport:
    done: list[str] = field(default_factory=list)


def ensure_cdc(settings: PostgresSettings) -> CdcReport:
    """The shop's database, the replication role and the publication; each made if missing.

    Run as ``user``, who must be allowed to create databases and roles; a publication ``FOR
    ALL TABLES`` needs a superuser (the local stack's ``user`` is its bootstrap superuser).
    The role's password is set on every run, so a changed setting takes effect.
    """
    report = CdcReport()
    with cursor(settings, "postgres") as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.database,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.database)))
            report.done.append(f"database {settings.database} created")
        role = sql.Identifier(settings.replication_user)
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (settings.replication_user,))
        verb = "ALTER" if cur.fetchone() is not None else "CREATE"
        cur.execute(
            sql.SQL(verb + " ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
                role, sql.Literal(settings.secret("replication_password"))
            )
        )
        if verb == "CREATE":
            report.done.append(f"replication role {settings.replication_user} created")
        cur.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(role))
    with cursor(settings) as cur:
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (settings.publication,))
        if cur.fetchone() is None:
            cur.execute(
                sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(
                    sql.Identifier(settings.publication)
                )
            )
            report.done.append(f"publication {settings.publication} created")
    return report


def drop_slot(settings: PostgresSettings, slot: str) -> bool:
    """Drop an inactive replication slot (a removed connector's): it holds WAL until dropped."""
    with cursor(settings) as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (slot,),
        )
        return cur.fetchone() is not None
