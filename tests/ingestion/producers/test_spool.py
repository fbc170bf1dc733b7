"""The spool: ordered, acknowledged, bounded, and durable across process restarts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ingestion.producers.spool import (
    EventStore,
    InMemoryStore,
    SpoolFull,
    SpoolLocked,
    SqliteSpool,
)

Factory = Callable[..., EventStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    if request.param == "memory":
        return lambda **kw: InMemoryStore(**kw)
    return lambda **kw: SqliteSpool(tmp_path / "spool" / "events.sqlite", **kw)


@pytest.mark.unit
def test_peek_is_oldest_first_and_ack_removes(make_store: Factory) -> None:
    store = make_store()
    store.add([b"a", b"b", b"c"])
    store.add([b"d"])
    assert len(store) == 4
    first = store.peek(2)
    assert [body for _, body in first] == [b"a", b"b"]
    assert store.peek(2) == first  # peeking does not remove
    store.ack([first[0][0]])
    assert [body for _, body in store.peek(10)] == [b"b", b"c", b"d"]
    store.ack([i for i, _ in store.peek(10)] + [999])  # unknown ids are ignored
    assert len(store) == 0 and store.peek(5) == []
    store.close()


@pytest.mark.unit
def test_bounded_store_refuses_a_batch_whole(make_store: Factory) -> None:
    store = make_store(max_events=3)
    store.add([b"1", b"2"])
    with pytest.raises(SpoolFull):
        store.add([b"3", b"4"])
    assert [b for _, b in store.peek(10)] == [b"1", b"2"]
    store.add([b"3"])
    assert len(store) == 3
    store.close()


@pytest.mark.unit
def test_sqlite_spool_survives_reopen_and_forgets_acked(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    spool = SqliteSpool(path)
    spool.add([b"e%d" % i for i in range(10)])
    spool.ack([i for i, _ in spool.peek(4)])
    spool.close()

    reopened = SqliteSpool(path)
    assert len(reopened) == 6
    rows = reopened.peek(100)
    assert [b for _, b in rows] == [b"e%d" % i for i in range(4, 10)]
    reopened.add([b"new"])
    # Ids keep growing after a restart: an ack of an old id never removes a new event.
    assert reopened.peek(100)[-1][0] > max(i for i, _ in rows)
    reopened.close()
    assert [p.name for p in tmp_path.iterdir()] == ["s.sqlite"]


@pytest.mark.integration
def test_sqlite_spool_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    script = (
        "import os, sys\n"
        "from ingestion.producers.spool import SqliteSpool\n"
        "s = SqliteSpool(sys.argv[1])\n"
        "s.add([b'x%d' % i for i in range(50)])\n"
        "s.ack([i for i, _ in s.peek(5)])\n"
        "os._exit(0)  # no close, no checkpoint\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    spool = SqliteSpool(path)
    assert [b for _, b in spool.peek(100)] == [b"x%d" % i for i in range(5, 50)]
    spool.close()


@pytest.mark.unit
def test_one_producer_per_spool(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite"
    first = SqliteSpool(path)
    with pytest.raises(SpoolLocked):
        SqliteSpool(path)
    first.close()
    SqliteSpool(path).close()
