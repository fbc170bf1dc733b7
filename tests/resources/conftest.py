"""Fixtures of the resources' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from resources.search import SearchStore, make_search_store
from resources.settings import PlatformSettings


@pytest.fixture()
def store(search: PlatformSettings) -> Iterator[SearchStore]:
    """A store on each search engine in turn (the ``search`` fixture's)."""
    with make_search_store(search.search) as store:
        yield store
