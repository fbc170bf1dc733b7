"""The Dagster side of the search store on each real engine: assets keyed by it, dead letters."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from contract.search import DEADLETTERS, index_name
from platform_assets.assets.lake.curated import dead_letters_by_reason
from platform_assets.definitions import build_definitions
from platform_assets.resources import resources_for
from resources.search import index_body, make_search_store
from resources.search_indices import IndexLayout, ensure_templates
from resources.settings import PlatformSettings, SearchEngine
from tests.streaming.realtime_helpers import drop_indices, failed_event


@pytest.mark.unit
@pytest.mark.parametrize("engine", list(SearchEngine))
def test_the_index_assets_are_keyed_and_kinded_by_the_engine(engine: SearchEngine) -> None:
    settings = PlatformSettings(search={"engine": engine})
    graph = build_definitions(settings).resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    other = next(e for e in SearchEngine if e is not engine)
    assert {f"{engine}/events", f"{engine}/deadletters"} <= keys
    assert not any(k.startswith(f"{other}/") for k in keys)
    spec = graph.get(dg.AssetKey([engine.value, "events"]))
    assert spec.kinds == {engine.value}
    # The live views read the indices through Trino's OpenSearch catalog: only then built.
    live = {k for k in keys if k.startswith("trino/reporting/live_")}
    assert bool(live) is (engine is SearchEngine.OPENSEARCH)


@pytest.mark.integration
def test_the_kpis_dead_letters_come_from_the_engine_in_use(search: PlatformSettings) -> None:
    prefix = f"kpi-{uuid.uuid4().hex[:10]}"
    settings = search.model_copy(
        update={"search": search.search.model_copy(update={"index_prefix": prefix})}
    )
    day = date(2026, 11, 30)
    index = index_name(prefix, DEADLETTERS, day)
    when = datetime(2026, 11, 30, 12, tzinfo=UTC)
    letters = [failed_event(str(uuid.uuid4()), when) for _ in range(3)]
    with make_search_store(settings.search) as store:
        try:
            ensure_templates(store, IndexLayout(prefix))
            body = index_body(
                (index, str(f.event_id), f.model_dump_json().encode()) for f in letters
            )
            assert all(i.ok for i in store.bulk(body))
            store.refresh(index)
            frame = dead_letters_by_reason(resources_for(settings)["search"], day)
            assert frame.to_dicts() == [{"reason": "schema_violation", "count": 3}]
            # A day without an index is no dead letter, not an error.
            empty = dead_letters_by_reason(resources_for(settings)["search"], date(2020, 1, 1))
            assert empty.height == 0
        finally:
            drop_indices(store, prefix)
