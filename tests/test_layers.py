"""The rule that keeps ``pytest -m unit`` free of servers."""

from __future__ import annotations

import pytest

from tests.layers import layer_problems

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("markers", "fixtures", "wrong"),
    [
        ({"unit"}, {"tmp_path", "monkeypatch"}, []),
        ({"integration"}, {"kafka", "servers"}, []),
        ({"integration", "e2e", "slow"}, {"trino", "servers"}, []),
        # A process of the platform, no server fixture: integration is allowed.
        ({"integration"}, {"tmp_path"}, []),
        ({"e2e"}, {"kafka", "servers"}, ["not marked integration", "neither unit nor integration"]),
        ({"unit"}, {"opensearch", "servers"}, ["not marked integration", "marked unit but"]),
        # A fixture that reaches a server through ``servers`` is caught by that dependency.
        ({"unit"}, {"a_new_server", "servers"}, ["not marked integration", "marked unit but"]),
        ({"slow"}, {"tmp_path"}, ["neither unit nor integration"]),
        (set(), set(), ["neither unit nor integration"]),
        ({"unit", "integration"}, set(), ["both unit and integration"]),
    ],
)
def test_layer_problems(markers: set[str], fixtures: set[str], wrong: list[str]) -> None:
    problems = layer_problems("tests/x.py::test_y", markers, fixtures)
    assert len(problems) == len(wrong), problems
    for problem, expected in zip(problems, wrong, strict=True):
        assert problem.startswith("tests/x.py::test_y") and expected in problem
