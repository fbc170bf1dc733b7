"""Session fixtures for the real servers, and the check that the test layers are marked.

A server whose address is configured through the environment (for example
``TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS``) is used as it is. Otherwise the local stack starts it,
or reuses the one it already runs, and at the end of the session stops only what it started.

Every test is ``unit`` (pure logic, no server, no process of its own) or ``integration`` (a
real server or a process of the platform); collection fails when one is neither, or when a
test reaches a server fixture without ``integration``: ``pytest -m unit`` then never starts
a server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from resources.settings import PlatformSettings, SearchEngine
from stack.config import StackSettings
from stack.manager import Stack
from tests.layers import layer_problems

if TYPE_CHECKING:
    from resources.search import SearchStore

_ADDRESS_ENV = {
    "kafka": "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS",
    "seaweedfs": "TRIBUTARY_S3__ENDPOINT_URL",
    "opensearch": "TRIBUTARY_SEARCH__OPENSEARCH__URL",
    "elasticsearch": "TRIBUTARY_SEARCH__ELASTICSEARCH__URL",
    "trino": "TRIBUTARY_TRINO__URL",
    "superset": "TRIBUTARY_SUPERSET__URL",
    "postgres": "TRIBUTARY_POSTGRES__PORT",
    "kafka-connect": "TRIBUTARY_CONNECT__URL",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a collection whose layer markers do not match the tests (before ``-m`` selects)."""
    problems = [
        problem
        for item in items
        for problem in layer_problems(
            item.nodeid,
            {m.name for m in item.iter_markers()},
            set(getattr(item, "fixturenames", ())),
        )
    ]
    if problems:
        raise pytest.UsageError("test layer markers:\n  " + "\n  ".join(problems))
    # Pure tests first: the servers' downloads run meanwhile (see pytest_collection_finish).
    items.sort(key=lambda item: item.get_closest_marker("unit") is None)


class Servers:
    def __init__(self) -> None:
        # The stack whose downloads began at collection, when there is one.
        self.stack = _STACK[0] if _STACK else Stack(StackSettings())
        self.settings = self.stack.settings
        self.started: list[str] = []
        self.used: dict[str, str] = {}

    def require(self, *names: str) -> None:
        """Make ``names`` answer: configured ones are checked, the others started or reused.

        The first call starts, side by side, every server the session's tests will use
        (``SESSION_NEEDS``), so each is started once and none waits for another's start.
        """
        wanted = [n for n in dict.fromkeys([*names, *SESSION_NEEDS]) if n not in self.used]
        if not any(n in names for n in wanted):
            return
        local = []
        for name in wanted:
            service = self.stack.services[name]
            if _ADDRESS_ENV[name] in os.environ:
                assert service.healthy(), (
                    f"{name} configured at {service.url} through {_ADDRESS_ENV[name]} "
                    "is not healthy"
                )
                self.used[name] = f"{service.url} (configured, reused)"
            else:
                local.append(name)
        began = time.monotonic()
        started = self.stack.up(local)
        self.started += started
        took = time.monotonic() - began
        for name in local:
            how = f"started by the suite ({took:.1f}s for {', '.join(started)})"
            self.used[name] = (
                f"{self.stack.services[name].url} ({how if name in started else 'reused'})"
            )


# Servers behind each server fixture (Trino reads the lake's catalog and the indices).
FIXTURE_SERVERS = {
    "kafka": ("kafka",),
    "s3": ("seaweedfs",),
    "opensearch": ("opensearch",),
    "elasticsearch": ("elasticsearch",),
    "trino": ("seaweedfs", "opensearch", "trino"),
    "superset": ("seaweedfs", "opensearch", "trino", "superset"),
    "postgres": ("postgres",),
    "connect": ("kafka", "postgres", "kafka-connect"),
}
SESSION_NEEDS: list[str] = []  # filled at collection: every server the selected tests use
_STACK: list[Stack] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Know every server the selected tests use, and begin fetching them."""
    config = session.config
    needs = {
        s
        for item in session.items
        for f in getattr(item, "fixturenames", ())
        for s in FIXTURE_SERVERS.get(f, ())
    }
    # The engine of each test run on both search engines (the ``search`` fixture's param).
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "search" in params:
            needs.add(str(params["search"]))
    SESSION_NEEDS[:] = [name for name in _ADDRESS_ENV if name in needs]
    if SESSION_NEEDS and not config.option.collectonly:
        stack = Stack(StackSettings())
        stack.prefetch([n for n in SESSION_NEEDS if _ADDRESS_ENV[n] not in os.environ])
        _STACK.append(stack)


_SERVERS: list[Servers] = []


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    s = Servers()
    _SERVERS.append(s)
    yield s
    s.stack.down(s.started)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for s in _SERVERS:
        terminalreporter.section("real servers used")
        for name, how in s.used.items():
            terminalreporter.write_line(f"{name}: {how}")
        if s.started:
            terminalreporter.write_line(f"stopped at the end: {', '.join(s.started)}")


@pytest.fixture(scope="session")
def platform_settings() -> PlatformSettings:
    return PlatformSettings()


@pytest.fixture(scope="session")
def kafka(servers: Servers) -> PlatformSettings:
    servers.require("kafka")
    return servers.settings


@pytest.fixture(scope="session")
def s3(servers: Servers) -> PlatformSettings:
    servers.require("seaweedfs")
    return servers.settings


@pytest.fixture(scope="session")
def opensearch(servers: Servers) -> PlatformSettings:
    servers.require("opensearch")
    return servers.settings


@pytest.fixture(scope="session")
def elasticsearch(servers: Servers) -> PlatformSettings:
    servers.require("elasticsearch")
    return servers.settings


@pytest.fixture(scope="session", params=[e.value for e in SearchEngine])
def search(request: pytest.FixtureRequest, servers: Servers) -> PlatformSettings:
    """The platform's settings with each search engine in use in turn, its server started."""
    servers.require(request.param)
    return servers.settings.model_copy(
        update={"search": servers.settings.search.using(request.param)}
    )


@pytest.fixture()
def store(search: PlatformSettings) -> Iterator[SearchStore]:
    """A store on each search engine in turn (the ``search`` fixture's)."""
    from resources.search import make_search_store

    with make_search_store(search.search) as store:
        yield store


@pytest.fixture(scope="session")
def trino(servers: Servers) -> PlatformSettings:
    """Trino, with the lake's S3 and REST catalog and OpenSearch it reads (started first)."""
    servers.require("seaweedfs", "opensearch", "trino")
    return servers.settings


@pytest.fixture(scope="session")
def superset(trino: PlatformSettings, servers: Servers) -> PlatformSettings:
    """Superset with the dashboards bundle imported (the stack provisions what it starts).

    Trino comes first: importing the bundle's database connections lists Trino's catalogs.
    """
    servers.require("superset")
    if _ADDRESS_ENV["superset"] in os.environ:
        from stack.dashboards import provision_dashboards

        provision_dashboards(servers.settings)
    return servers.settings


@pytest.fixture()
def anyio_backend() -> str:
    """In-process application tests (``pytest.mark.anyio``) run on asyncio, as uvicorn does."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres(servers: Servers) -> PlatformSettings:
    """The shop's PostgreSQL, with its database, replication role and publication."""
    servers.require("postgres")
    return servers.settings


@pytest.fixture(scope="session")
def connect(servers: Servers) -> PlatformSettings:
    """Kafka Connect with Debezium's PostgreSQL plugin, beside Kafka and PostgreSQL."""
    servers.require("kafka", "postgres", "kafka-connect")
    return servers.settings
