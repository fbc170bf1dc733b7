"""The test layers and the rule that ties their markers to the fixtures a test uses."""

from __future__ import annotations

LAYERS = ("unit", "integration")

SERVER_FIXTURES = frozenset(
    {
        "servers",
        "kafka",
        "s3",
        "opensearch",
        "elasticsearch",
        "search",
        "trino",
        "superset",
        "postgres",
        "connect",
    }
)
"""The fixtures that start or reach a real server; each goes through ``servers``, so a new one
is caught by its dependency on ``servers`` even before it is named here."""


def layer_problems(nodeid: str, markers: set[str], fixtures: set[str]) -> list[str]:
    """What is wrong with a test's layer markers, given its markers and its fixture closure."""
    problems = []
    servers = sorted(fixtures & SERVER_FIXTURES)
    if servers and "integration" not in markers:
        problems.append(f"{nodeid} uses {', '.join(servers)} but is not marked integration")
    if servers and "unit" in markers:
        problems.append(f"{nodeid} is marked unit but uses {', '.join(servers)}")
    if not markers & set(LAYERS):
        problems.append(f"{nodeid} is marked neither unit nor integration")
    if set(LAYERS) <= markers:
        problems.append(f"{nodeid} is marked both unit and integration")
    return problems
