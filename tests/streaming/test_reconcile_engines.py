"""Reconciliation on each search engine: the whole stream, every event accounted for.

The stream's processes (collector, enricher, enrichment API, both loaders) run on the shared
Kafka and S3 with the search store of the ``search`` fixture's engine, and the reconciler
finds every accepted event once in the store (by ``_id``), in the raw zone and on the topics.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.search import DEADLETTERS, EVENTS, index_pattern
from resources.search import make_search_store
from resources.settings import PlatformSettings
from streaming.reconcile import Reconciler
from tests.pipeline_rig import Feed, settle, start_rig
from tests.streaming.realtime_helpers import drop_indices

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_event_reconciles_on_each_engine(
    kafka: PlatformSettings, s3: PlatformSettings, search: PlatformSettings, tmp_path: Path
) -> None:
    servers = s3.model_copy(update={"search": search.search})
    rig = start_rig(kafka, servers, tmp_path)
    store = make_search_store(rig.settings.search)
    try:
        with Reconciler(rig.settings) as reconciler:
            stats = Feed(rig, 400, None, seed=5).start().join()
            result = settle(reconciler, rig, producers=[stats])
        assert result.settled, result.problems()
        assert result.problems() == []
        # What the reconciler counted is what the engine in use holds, and nothing twice.
        assert store.engine is search.search.engine
        prefix = rig.settings.search.index_prefix
        store.refresh(f"{prefix}-*")
        assert store.count(index_pattern(prefix, EVENTS)) == len(result.enriched) > 0
        assert set(result.indexed_events) == set(result.enriched)
        assert max(result.indexed_events.values()) == 1
        dead_ids = set(result.enriched_dead_letters)
        assert dead_ids and set(result.indexed_dead_letters) >= dead_ids
        assert store.count(index_pattern(prefix, DEADLETTERS)) >= len(dead_ids)
    finally:
        rig.pipeline.stop()
        drop_indices(store, rig.settings.search.index_prefix)
        store.close()
