"""A real collector process (``tributary run collector``) against the suite's Kafka."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from resources.settings import PlatformSettings
from stack.private import free_port
from tests.ingestion.collector_helpers import CollectorProcess, Topics, collector_env


@pytest.fixture()
def topics(kafka: PlatformSettings) -> Topics:
    return Topics(kafka)


@pytest.fixture(scope="session")
def collector(
    kafka: PlatformSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    port, grpc_port = free_port(), free_port()
    process = CollectorProcess(
        collector_env(kafka, port, grpc_port),
        port,
        grpc_port,
        tmp_path_factory.mktemp("collector") / "collector.log",
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture()
def own_collector(kafka: PlatformSettings, tmp_path: Path) -> Iterator[CollectorProcess]:
    """A collector of the test's own, free to be stopped, killed and restarted."""
    port, grpc_port = free_port(), free_port()
    process = CollectorProcess(
        collector_env(kafka, port, grpc_port), port, grpc_port, tmp_path / "collector.log"
    )
    process.start()
    yield process
    process.stop(signal.SIGKILL)
