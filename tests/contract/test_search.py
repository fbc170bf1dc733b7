"""The search store's names: daily indices, their wildcard and the family's alias."""

from __future__ import annotations

from datetime import date

import pytest

from contract import search
from contract.search import DEADLETTERS, EVENTS, FAMILIES, index_day, index_name

pytestmark = pytest.mark.unit


def test_index_naming() -> None:
    day = date(2026, 11, 28)
    assert FAMILIES == (EVENTS, DEADLETTERS) == ("events", "deadletters")
    assert index_name("tributary", EVENTS, day) == "tributary-events-2026.11.28"
    assert index_name("tributary", DEADLETTERS, day) == "tributary-deadletters-2026.11.28"
    assert index_day("tributary", EVENTS, "tributary-events-2026.11.28") == day
    assert index_day("tributary", EVENTS, "tributary-deadletters-2026.11.28") is None
    assert index_day("tributary", EVENTS, "tributary-events-2026.13.01") is None
    assert index_day("tributary", EVENTS, "tributaryx-events-2026.11.28") is None
    assert index_day("tributary", EVENTS, "tributary-events-archive") is None
    assert search.alias_name("tributary", EVENTS) == "tributary-events"
    assert search.index_pattern("tributary", EVENTS) == "tributary-events-*"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_daily_index_falls_under_its_family_s_pattern_and_no_other(family: str) -> None:
    name = index_name("shop", family, date(2026, 1, 2))
    stems = {f: search.index_pattern("shop", f).removesuffix("*") for f in FAMILIES}
    assert [f for f, stem in stems.items() if name.startswith(stem)] == [family]
    assert index_day("shop", family, name) == date(2026, 1, 2)
