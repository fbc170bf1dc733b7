"""The producer's spool: events are stored before they are sent, and removed once answered.

``SqliteSpool`` keeps them in one SQLite file (WAL mode, synchronous commits), so events
survive a crash or restart of the producer and are sent on its next start; ``InMemoryStore``
has the same interface without durability. Events are opaque bytes, kept in insertion order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol


class SpoolFull(Exception):
    """Adding the events would exceed the store's ``max_events``."""


class SpoolLocked(Exception):
    """Another producer has the spool file open."""


class EventStore(Protocol):
    """Events waiting to be sent, oldest first."""

    def add(self, events: list[bytes]) -> None:
        """Store events (all or none); raise ``SpoolFull`` past ``max_events``."""
        ...

    def peek(self, n: int) -> list[tuple[int, bytes]]:
        """The oldest ``n`` events with their ids, without removing them."""
        ...

    def ack(self, ids: Iterable[int]) -> None:
        """Remove events that got a terminal answer."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


def _check_room(current: int, adding: int, max_events: int | None) -> None:
    if max_events is not None and current + adding > max_events:
        raise SpoolFull(
            f"the spool holds {current} events; {adding} more would exceed its limit of "
            f"{max_events}"
        )


class InMemoryStore:
    """A store in memory: lost with the process."""

    def __init__(self, max_events: int | None = None) -> None:
        self.max_events = max_events
        self._events: dict[int, bytes] = {}
        self._next = 1
        self._lock = threading.Lock()

    def add(self, events: list[bytes]) -> None:
        with self._lock:
            _check_room(len(self._events), len(events), self.max_events)
            for event in events:
                self._events[self._next] = event
                self._next += 1

    def peek(self, n: int) -> list[tuple[int, bytes]]:
        with self._lock:
            out: list[tuple[int, bytes]] = []
            for item in self._events.items():  # dicts keep insertion (= id) order
                if len(out) >= n:
                    break
                out.append(item)
            return out

    def ack(self, ids: Iterable[int]) -> None:
        with self._lock:
            for i in ids:
                self._events.pop(i, None)

    def __len__(self) -> int:
        return len(self._events)

    def close(self) -> None:
        pass


class SqliteSpool:
    """A durable store in one SQLite file.

    Args:
        path: The database file (its directory is created).
        max_events: Refuse to hold more than this many events.
        synchronous: SQLite's ``synchronous`` pragma. ``FULL`` survives power loss; ``NORMAL``
            survives a crash of the process only, and is faster.
    """

    def __init__(
        self,
        path: Path | str,
        max_events: int | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self.path = Path(path)
        self.max_events = max_events
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=1
        )
        try:
            # One producer per spool: two sending the same events would duplicate them.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("BEGIN EXCLUSIVE")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "body BLOB NOT NULL)"
            )
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc):
                raise SpoolLocked(f"{self.path} is in use by another producer") from exc
            raise
        self._count = int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def add(self, events: list[bytes]) -> None:
        if not events:
            return
        with self._lock:
            _check_room(self._count, len(events), self.max_events)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO events (body) VALUES (?)", ((e,) for e in events))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._count += len(events)

    def peek(self, n: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM events ORDER BY id LIMIT ?", (n,)
            ).fetchall()
        return [(int(i), bytes(body)) for i, body in rows]

    def ack(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._db.executemany(
                    "DELETE FROM events WHERE id = ?", ((i,) for i in ids)
                ).rowcount
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._count -= deleted

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
