"""Erasure in each store on its own: both search engines, and the lake on the REST catalog.

``test_forget.py`` runs the whole erasure on the stream's output (OpenSearch, the SQLite
catalog); here each store is checked where the other configuration applies: Elasticsearch as
well as OpenSearch, and the Iceberg REST catalog of the stack, whose files live on S3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog

from contract.search import DEADLETTERS, EVENTS, index_pattern
from privacy.forget import Subject, erase_lake, erase_search
from resources.lake import make_catalog
from resources.search import SearchStore, index_body
from resources.search_indices import IndexLayout, provision_indices
from resources.settings import LakeCatalog, PlatformSettings
from tests.streaming.realtime_helpers import drop_indices

pytestmark = pytest.mark.integration

DAYS = (date(2026, 11, 27), date(2026, 11, 28))
ERASED, KEPT = "u-000001", "u-000002"


@pytest.fixture()
def prefix(store: SearchStore) -> Iterator[str]:
    prefix = f"erase-{uuid.uuid4().hex[:10]}"
    yield prefix
    drop_indices(store, prefix)


def test_search_loses_the_persons_events_and_dead_letters_on_each_engine(
    store: SearchStore, prefix: str
) -> None:
    layout = IndexLayout(prefix)
    docs: list[tuple[str, str, dict[str, object]]] = []
    for day in DAYS:
        provision_indices(store, layout, day)
        for user in (ERASED, KEPT):
            for n in range(3):
                docs.append(
                    (
                        layout.events_index(day),
                        f"{user}-{day}-{n}",
                        {"event_id": f"{user}-{day}-{n}", "context": {"user_id": user}},
                    )
                )
            docs.append(
                (
                    layout.deadletters_index(day),
                    f"dl-{user}-{day}",
                    {
                        "stage": "enricher",
                        "original": {"encoding": "json", "data": {"context": {"user_id": user}}},
                        "loader": {"key": f"user_id:{user}"},
                    },
                )
            )
    assert all(item.ok for item in store.bulk(index_body(docs)))

    removals = erase_search(store, prefix, Subject("user_id", ERASED))

    events, dead = index_pattern(prefix, EVENTS), index_pattern(prefix, DEADLETTERS)
    assert {r.location: r.removed for r in removals} == {events: 6, dead: 2}
    store.refresh(f"{prefix}-*")
    assert store.count(events, {"term": {"context.user_id": ERASED}}) == 0
    assert store.count(events, {"term": {"context.user_id": KEPT}}) == 6
    assert store.count(dead, {"term": {"loader.key": f"user_id:{KEPT}"}}) == 2
    assert store.count(dead) == 2
    # Idempotent: nothing more to remove.
    again = erase_search(store, prefix, Subject("user_id", ERASED))
    assert sum(r.removed for r in again) == 0


@pytest.fixture()
def rest_catalog(s3: PlatformSettings) -> Iterator[tuple[Catalog, str]]:
    settings = s3.model_copy(
        update={"lake": s3.lake.model_copy(update={"catalog": LakeCatalog.REST})}
    )
    catalog = make_catalog(settings)
    namespace = f"erase_{uuid.uuid4().hex[:10]}"
    catalog.create_namespace(namespace)
    yield catalog, namespace
    for identifier in catalog.list_tables(namespace):
        catalog.purge_table(identifier)
    catalog.drop_namespace(namespace)


def test_the_lake_on_the_rest_catalog_keeps_no_snapshot_or_file_with_the_person(
    rest_catalog: tuple[Catalog, str],
) -> None:
    catalog, namespace = rest_catalog
    schema = pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("user_id", pa.string()),
            pa.field("event_date", pa.date32(), nullable=False),
        ]
    )
    table = catalog.create_table((namespace, "stg_events"), schema)
    for day in DAYS:  # two snapshots, each with a data file holding both users
        rows = [
            {"event_id": f"{user}-{day}-{n}", "user_id": user, "event_date": day}
            for user in (ERASED, KEPT)
            for n in range(4)
        ]
        table.append(pa.Table.from_pylist(rows, schema=schema))
    table = table.refresh()
    files_before = set(table.inspect.all_files()["file_path"].to_pylist())
    assert len(table.snapshots()) == 2 and len(files_before) == 2

    removals = erase_lake(catalog, Subject("user_id", ERASED), set(), namespaces=(namespace,))

    assert [(r.location, r.removed, sorted(r.dates)) for r in removals] == [
        (f"{namespace}.stg_events", 8, list(DAYS))
    ]
    table = table.refresh()
    left = table.scan().to_arrow()
    assert sorted(set(left["user_id"].to_pylist())) == [KEPT] and left.num_rows == 8
    # One snapshot left, and the files of the expired ones are gone from S3.
    assert len(table.snapshots()) == 1
    for path in files_before - set(table.inspect.all_files()["file_path"].to_pylist()):
        assert not table.io.new_input(path).exists(), path
