"""Bulk indexing on both search engines, side by side in one run: OpenSearch and Elasticsearch.

Starts a private OpenSearch and a private Elasticsearch (free ports, a temporary folder, both
with the stack's heap and settings), puts the real-time loader's index templates on each, and
indexes the same enriched-event documents into a fresh daily index, ``--rounds`` times each:

- **raw client** (the baseline): the engine's own client library, ``helpers.bulk`` with its
  default serialisation, ``--batch`` actions per request;
- **seam**: what the real-time loader sends, the NDJSON body serialised with orjson and
  ``SearchStore.bulk`` (per-item results), ``--batch`` actions per request.

Each round ends with a refresh and a count, so it measures documents searchable per second.
Printed per engine: median documents/s of both, the seam over the raw client, and the seam on
Elasticsearch over the seam on OpenSearch. Both servers run on the same cores, one at a time
indexing; a two-core machine shared with other work gives noisy figures, hence the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_enricher import private_stack, say, stoppable

from contract.search import EVENTS, index_name
from resources.search import SearchStore, index_body, make_search_store
from resources.search_indices import IndexLayout, ensure_templates
from resources.settings import SearchEngine
from simulator.world import COUNTRIES, catalogue

ENGINES = (SearchEngine.OPENSEARCH, SearchEngine.ELASTICSEARCH)


def documents(n: int) -> list[dict[str, Any]]:
    """``n`` documents shaped like the loader's: an enriched event plus ``location``."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    products = catalogue()
    countries = list(COUNTRIES)
    docs = []
    for i in range(n):
        when = start + timedelta(milliseconds=37 * i)
        product = products[i % len(products)]
        country = countries[i % len(countries)]
        docs.append(
            {
                "event_id": str(uuid.UUID(int=i)),
                "event_type": "iglu:com.tributary.shop/purchase/jsonschema/1-0-0",
                "event_timestamp": when.isoformat(),
                "source": "bench",
                "payload": {
                    "order_id": f"o-{i}",
                    "sku": product.product_id,
                    "total": 10.5 + i % 90,
                },
                "context": {"user_id": f"u-{i % 5000}", "session_id": f"s-{i % 20000}"},
                "collector": {
                    "received_at": when.isoformat(),
                    "collector_id": "collector-1",
                    "request_id": str(uuid.UUID(int=i + 1)),
                    "producer": "bench",
                    "client_ip": "203.0.113.7",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                    "path": "rest",
                },
                "enrichment": {
                    "user_agent": {"browser_family": "Firefox", "os_family": "Linux"},
                    "geo": {"country_code": country, "latitude": 48.85, "longitude": 2.35},
                    "money": [{"field": "/total", "amount": 10.5, "currency": "EUR"}],
                    "scores": {"bot_probability": 0.02},
                    "model_version": "bot-1",
                },
                "lineage": {"enricher_version": "0.1.0", "schema_version": "1-0-0"},
                "location": {"lat": 48.85, "lon": 2.35},
                "loader": {"topic": "bench", "partition": 0, "offset": i},
            }
        )
    return docs


def seam_bulk(store: SearchStore, index: str, docs: list[dict[str, Any]], batch: int) -> None:
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        items = store.bulk(index_body((index, d["event_id"], d) for d in chunk))
        assert all(i.ok for i in items), next(i.error for i in items if not i.ok)


def raw_bulk(store: SearchStore, index: str, docs: list[dict[str, Any]], batch: int) -> None:
    if store.engine is SearchEngine.OPENSEARCH:
        from opensearchpy import helpers as os_helpers

        bulk: Callable[..., Any] = os_helpers.bulk
    else:
        from elasticsearch import helpers as es_helpers

        bulk = es_helpers.bulk
    actions = ({"_index": index, "_id": d["event_id"], "_source": d} for d in docs)
    ok, errors = bulk(store.client, actions, chunk_size=batch, max_chunk_bytes=100 * 2**20)
    assert ok == len(docs) and not errors, errors


def one_round(
    store: SearchStore,
    how: Callable[[SearchStore, str, list[dict[str, Any]], int], None],
    index: str,
    docs: list[dict[str, Any]],
    batch: int,
) -> float:
    store.delete_index(index)
    began = time.perf_counter()
    how(store, index, docs, batch)
    store.refresh(index)
    took = time.perf_counter() - began
    assert store.count(index) == len(docs)
    store.delete_index(index)
    return len(docs) / took


def rates(
    store: SearchStore, docs: list[dict[str, Any]], batch: int, rounds: int
) -> Iterator[tuple[str, float]]:
    layout = IndexLayout("bench")
    ensure_templates(store, layout)
    index = index_name(layout.prefix, EVENTS, datetime(2026, 12, 1, tzinfo=UTC).date())
    # One unmeasured round of each warms the JIT and the index template.
    one_round(store, raw_bulk, index, docs[: len(docs) // 4], batch)
    one_round(store, seam_bulk, index, docs[: len(docs) // 4], batch)
    raw, seam = [], []
    for _ in range(rounds):  # interleaved, so a noisy moment hurts both
        raw.append(one_round(store, raw_bulk, index, docs, batch))
        seam.append(one_round(store, seam_bulk, index, docs, batch))
    yield "raw client", statistics.median(raw)
    yield "seam", statistics.median(seam)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000, help="documents per round")
    parser.add_argument("--batch", type=int, default=500, help="actions per bulk request")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of each")
    parser.add_argument("--keep", action="store_true", help="keep the servers' folder")
    args = parser.parse_args()
    docs = documents(args.docs)
    say(f"{args.docs:,} documents, {args.batch} per bulk request, {args.rounds} rounds")
    names = [e.value for e in ENGINES]
    results: dict[SearchEngine, dict[str, float]] = {}
    with stoppable(), private_stack(names, "bench-search-", args.keep) as (settings, _):
        for engine in ENGINES:
            with make_search_store(settings.search.using(engine)) as store:
                results[engine] = dict(rates(store, docs, args.batch, args.rounds))
            raw, seam = results[engine]["raw client"], results[engine]["seam"]
            say(f"{engine}: raw client {raw:,.0f} docs/s, seam {seam:,.0f} docs/s")
    say()
    say("| engine | raw client docs/s | seam docs/s | seam / raw client | seam / OpenSearch seam |")
    say("|---|---|---|---|---|")
    base = results[SearchEngine.OPENSEARCH]["seam"]
    for engine, r in results.items():
        say(
            f"| {engine} | {r['raw client']:,.0f} | {r['seam']:,.0f} | "
            f"{r['seam'] / r['raw client']:.2f} | {r['seam'] / base:.2f} |"
        )


if __name__ == "__main__":
    main()
