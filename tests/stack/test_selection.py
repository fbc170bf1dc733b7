"""Which services a stack command acts on."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.config import StackSettings
from stack.manager import Stack

pytestmark = pytest.mark.unit


def test_none_means_every_service_and_an_empty_list_none(tmp_path: Path) -> None:
    # The test suite stops "the services it started": when it started none, that must stop
    # none, not every server the user had started with `tributary stack up`.
    stack = Stack(StackSettings.model_validate({"stack": {"state_dir": tmp_path}}))
    assert [s.name for s in stack.select(None)] == [
        "kafka",
        "seaweedfs",
        "opensearch",
        "elasticsearch",
        "trino",
        "superset",
        "postgres",
        "kafka-connect",
    ]
    # `stack up` without names starts what the settings use: one search engine.
    assert "elasticsearch" not in [s.name for s in stack.in_use()]
    assert "opensearch" in [s.name for s in stack.in_use()]
    elastic = Stack(
        StackSettings.model_validate(
            {"stack": {"state_dir": tmp_path}, "search": {"engine": "elasticsearch"}}
        )
    )
    names = [s.name for s in elastic.in_use()]
    assert "elasticsearch" in names and "opensearch" not in names
    # Trino reads the real-time indices only from OpenSearch: with Elasticsearch it needs
    # the lake alone, and has no search catalog.
    assert elastic.services["trino"].needs == ("seaweedfs",)
    assert stack.services["trino"].needs == ("seaweedfs", "opensearch")
    assert stack.services["kafka-connect"].needs == ("kafka", "postgres")
    # Change capture's servers only when asked for (nothing reads them otherwise yet).
    assert not {"postgres", "kafka-connect"} & {s.name for s in stack.in_use()}
    cdc = Stack(StackSettings.model_validate({"stack": {"state_dir": tmp_path, "cdc": True}}))
    assert {"postgres", "kafka-connect"} <= {s.name for s in cdc.in_use()}
    assert stack.select([]) == []
    assert stack.down([]) == []
    assert [s.name for s in stack.select(["opensearch"])] == ["opensearch"]
