"""The trace's search-store look-up on each engine (the rest of the trace is engine-free).

``test_trace.py`` traces the real stream's events with OpenSearch; here an event and the dead
letter of another are indexed into fresh daily indices of each engine, through the same
templates the real-time loader puts, and each is traced.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from privacy.trace import Stage, State, Tracer
from resources.kafka import make_kafka_admin
from resources.search import SearchStore, index_body
from resources.search_indices import IndexLayout, provision_indices
from resources.settings import PlatformSettings, TopicNames
from resources.topics import ensure_topics, platform_topics
from tests.streaming.realtime_helpers import drop_indices

pytestmark = pytest.mark.integration


@pytest.fixture()
def prefix(store: SearchStore) -> Iterator[str]:
    prefix = f"trace-{uuid.uuid4().hex[:10]}"
    yield prefix
    drop_indices(store, prefix)


def test_the_search_store_finds_the_event_and_the_dead_letter_on_each_engine(
    kafka: PlatformSettings, search: PlatformSettings, store: SearchStore, prefix: str
) -> None:
    now = datetime.now(UTC)
    layout = IndexLayout(prefix)
    provision_indices(store, layout, now.date())
    indexed, refused = str(uuid.uuid4()), str(uuid.uuid4())
    body = index_body(
        [
            (
                layout.events_index(now.date()),
                indexed,
                {"event_id": indexed, "event_timestamp": now.isoformat()},
            ),
            (
                layout.deadletters_index(now.date()),
                f"dl-{refused}",
                {
                    "event_id": refused,
                    "stage": "enricher",
                    "failure_type": "schema_violation",
                    "errors": [{"field": "/payload/page_url", "reason": "is required"}],
                    "failed_at": now.isoformat(),
                },
            ),
        ]
    )
    assert all(item.ok for item in store.bulk(body))
    store.refresh(f"{prefix}-*")
    # Empty topics of this test's own: the Kafka steps read nothing, quickly.
    topics = TopicNames(**{name: f"{prefix}.{name}" for name in TopicNames.model_fields})
    ensure_topics(make_kafka_admin(kafka.kafka), platform_topics(topics, kafka.kafka))
    settings = search.model_copy(
        update={
            "topics": topics,
            "search": search.search.model_copy(update={"index_prefix": prefix}),
        }
    )
    with Tracer(settings) as tracer:
        found, letter = tracer.trace(indexed), tracer.trace(refused)
        unknown = tracer.trace(str(uuid.uuid4()))
    step = found.step(Stage.SEARCH)
    assert step.state is State.FOUND, found.lines()
    assert step.where == {"index": layout.events_index(now.date()), "document": indexed}
    step = letter.step(Stage.SEARCH)
    assert step.state is State.DEAD_LETTER and step.reason is not None
    assert "enricher" in step.reason and "schema_violation" in str(step.where)
    assert unknown.step(Stage.SEARCH).state is State.ABSENT
