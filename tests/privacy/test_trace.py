"""``tributary trace`` on what the real stream wrote (OpenSearch; the search step on both
engines is ``test_trace_engines.py``'s).

The five processes (``tests.pipeline_rig``) take a simulated clickstream and a few events of
known fates: one the collector refuses (its timestamp has no offset), one the enricher
dead-letters (a page view without its required ``page_url``), one the lake's validation
quarantines (an ``ftp://`` page URL: a URI to the schema, not a shop page to the lake), one sent
twice (a producer retrying after a lost answer), and a plain one. The curated chain is then
materialised in-process (as ``tests/platform_assets/test_curated_lake.py`` does) into a local
Iceberg catalog, and each event is traced before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from contract.envelope import rfc3339
from ingestion.producers.config import ProducerOptions
from ingestion.producers.emitter import Emitter, EmitterStats
from ingestion.producers.spool import SqliteSpool
from ingestion.producers.transports import make_transport
from platform_assets.assets.lake.curated import CURATED_ASSETS
from platform_assets.resources import resources_for
from privacy.trace import Hints, Outcome, Stage, State, Trace, Tracer
from resources.kafka import key_partition
from resources.search import make_search_store
from resources.settings import LakeSettings, PlatformSettings, Profile
from streaming.reconcile import Reconciler
from tests.pipeline_rig import Feed, Rig, settle, start_rig
from tests.streaming.realtime_helpers import drop_indices

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIBUTARY = str(Path(sys.executable).parent / "tributary")
PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"


def _event(
    ts: datetime, user: str, page_url: str | None = "https://shop.example.com/"
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": PAGE_VIEW,
        "event_timestamp": rfc3339(ts),
        "source": "trace-test",
        "payload": {} if page_url is None else {"page_url": page_url, "page_title": "Home"},
        "context": {"user_id": user, "session_id": f"s-{user}"},
    }


@dataclass
class Traced:
    rig: Rig
    settings: PlatformSettings  # the rig's topics, store and raw zone, a local lake
    day: date
    plain: dict[str, Any]
    refused: dict[str, Any]
    broken: dict[str, Any]
    quarantined: dict[str, Any]
    twice: dict[str, Any]
    before_curation: dict[str, Trace]


def send(rig: Rig, events: list[dict[str, Any]]) -> EmitterStats:
    """Send ``events`` through the platform's producer; each must be answered."""
    options = ProducerOptions(collector_url=rig.pipeline.collector_url, api_key=rig.key)
    spool = SqliteSpool(rig.work / f"spool-{uuid.uuid4().hex}.sqlite")
    emitter = Emitter.from_options(make_transport("rest", options), spool, options)
    stats = emitter.run([dict(e) for e in events])
    assert stats.error is None and stats.sent == len(events), stats
    return stats


@pytest.fixture(scope="module")
def traced(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    opensearch: PlatformSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Traced]:
    work = tmp_path_factory.mktemp("trace")
    # One engine: the search store's look-up on both is test_trace_engines.py's.
    rig = start_rig(kafka, s3.model_copy(update={"search": opensearch.search}), work)
    # Ten minutes ago, on one day: the lake's partition of every event of the test.
    now = datetime.now(UTC)
    ts = max(now - timedelta(minutes=10), now.replace(hour=0, minute=0, second=1))
    plain, twice = _event(ts, "trace-plain"), _event(ts, "trace-twice")
    broken = _event(ts, "trace-broken", page_url=None)
    quarantined = _event(ts, "trace-ftp", page_url="ftp://shop.example.com/")
    refused = {**_event(ts, "trace-refused"), "event_timestamp": "2026-01-31T12:00:00"}
    settings = PlatformSettings(
        profile=Profile.LOCAL,
        kafka=rig.settings.kafka,
        topics=rig.settings.topics,
        s3=rig.settings.s3,
        search=rig.settings.search,
        lake=LakeSettings(local_root=work / "lake"),
    )
    try:
        with Reconciler(rig.settings) as reconciler:
            feed = Feed(rig, 600, None, seed=19, start=ts - timedelta(minutes=5)).start()
            mine = send(rig, [plain, refused, broken, quarantined, twice])
            result = settle(reconciler, rig, producers=[feed.join(), mine])
        assert result.settled, result.problems()
        with Reconciler(rig.settings) as reconciler:  # the resend, as a retrying producer's
            again = send(rig, [twice])
            assert settle(reconciler, rig, producers=[again]).settled
    finally:
        rig.pipeline.stop()
    with Tracer(settings) as tracer:
        before = {
            "plain": tracer.trace(plain["event_id"]),
            "by_date": tracer.trace(plain["event_id"], Hints(day=ts.date())),
        }
    day = ts.date()
    materialised = dg.materialize(
        CURATED_ASSETS,
        partition_key=day.isoformat(),
        resources=resources_for(settings),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert materialised.success
    store = make_search_store(rig.settings.search)
    try:
        yield Traced(rig, settings, day, plain, refused, broken, quarantined, twice, before)
    finally:
        drop_indices(store, rig.settings.search.index_prefix)
        store.close()


def run(traced: Traced, event: dict[str, Any], hints: Hints | None = None) -> Trace:
    with Tracer(traced.settings) as tracer:
        return tracer.trace(event["event_id"], hints)


def test_an_event_the_collector_refused_is_its_dead_letter(traced: Traced) -> None:
    result = run(traced, traced.refused)
    dead = result.step(Stage.COLLECTOR_DLQ)
    assert dead.state is State.DEAD_LETTER
    assert dead.reason is not None and dead.reason.startswith("envelope_violation")
    assert dead.where["pointer"] == "/event_timestamp"
    assert dead.where["topic"] == traced.settings.topics.collector_dlq
    assert result.step(Stage.SEARCH).state is State.DEAD_LETTER  # the loader indexed it
    assert result.step(Stage.RAW_TOPIC).state is State.ABSENT
    assert result.outcome is Outcome.PARTIAL and result.stopped_at is Stage.COLLECTOR_DLQ


def test_an_event_the_enricher_dead_lettered_says_why_and_where(traced: Traced) -> None:
    result = run(traced, traced.broken)
    raw = result.step(Stage.RAW_TOPIC)
    assert raw.state is State.FOUND and raw.where["topic"] == traced.settings.topics.raw
    dead = result.step(Stage.ENRICHER_DLQ)
    assert dead.state is State.DEAD_LETTER
    assert dead.reason is not None and dead.reason.startswith("schema_violation")
    assert dead.where["pointer"] == "/payload/page_url"
    assert result.step(Stage.ENRICHED_TOPIC).state is State.ABSENT
    assert result.step(Stage.RAW_ZONE).state is State.ABSENT
    assert result.outcome is Outcome.PARTIAL and result.stopped_at is Stage.ENRICHER_DLQ


def test_an_indexed_event_before_curation_is_partly_found(traced: Traced) -> None:
    result = traced.before_curation["plain"]
    search = result.step(Stage.SEARCH)
    assert search.state is State.FOUND
    assert search.where["index"].startswith(f"{traced.settings.search.index_prefix}-events-")
    assert search.where["document"] == traced.plain["event_id"]
    zone = result.step(Stage.RAW_ZONE)
    assert zone.state is State.FOUND
    assert zone.where["object"].startswith(
        f"{traced.settings.s3.raw_prefix}event_date={traced.day.isoformat()}/"
    )
    assert isinstance(zone.where["row"], int)
    # The raw record and the enriched one are read at the offsets the stages stamped.
    raw, enriched = result.step(Stage.RAW_TOPIC), result.step(Stage.ENRICHED_TOPIC)
    assert raw.state is enriched.state is State.FOUND
    assert (raw.where["partition"], raw.where["offset"]) == (
        zone.where["lineage_source_partition"],
        zone.where["lineage_source_offset"],
    )
    assert (enriched.where["partition"], enriched.where["offset"]) == (
        zone.where["kafka_partition"],
        zone.where["kafka_offset"],
    )
    assert raw.how.startswith("read at") and enriched.how.startswith("read at")
    assert result.step(Stage.CURATED).state is State.ABSENT
    assert result.outcome is Outcome.PARTIAL and result.stopped_at is Stage.CURATED


def test_the_raw_zone_found_by_date_alone_leads_to_the_topics(traced: Traced) -> None:
    """Without the search store (an empty prefix), the date's folder of the raw zone."""
    empty = traced.settings.model_copy(
        update={"search": traced.settings.search.model_copy(update={"index_prefix": "nothing"})}
    )
    with Tracer(empty) as tracer:
        result = tracer.trace(traced.plain["event_id"], Hints(day=traced.day))
    assert result.step(Stage.SEARCH).state is State.ABSENT
    assert result.step(Stage.RAW_ZONE).state is State.FOUND
    assert result.step(Stage.RAW_TOPIC).state is State.FOUND
    assert result.step(Stage.ENRICHED_TOPIC).state is State.FOUND
    assert result.step(Stage.CURATED).state is State.FOUND
    assert result.outcome is Outcome.PARTIAL and result.stopped_at is Stage.SEARCH


def test_a_curated_event_has_its_session_and_fact_rows(traced: Traced) -> None:
    result = run(traced, traced.plain)
    curated = result.step(Stage.CURATED)
    assert curated.state is State.FOUND, curated
    assert curated.where["stg_events"]["user_key"] == "u:trace-plain"
    session = curated.where["stg_events"]["session_id"]
    assert session.startswith("u:trace-plain#")
    assert curated.where["fct_events"]["event_id"] == traced.plain["event_id"]
    assert [row["session_id"] for row in curated.where["fct_sessions"]] == [session]
    assert "removed_as_duplicate" not in curated.where
    assert result.outcome is Outcome.COMPLETE and result.stopped_at is None


def test_a_quarantined_event_names_the_failed_check(traced: Traced) -> None:
    result = run(traced, traced.quarantined)
    curated = result.step(Stage.CURATED)
    assert curated.state is State.QUARANTINED
    assert any(c.startswith("payload.page_url") for c in curated.where["failed_checks"]), curated
    assert result.step(Stage.RAW_ZONE).state is State.FOUND
    assert result.outcome is Outcome.PARTIAL and result.stopped_at is Stage.CURATED


def test_an_event_sent_twice_is_kept_once_and_its_copy_removed(traced: Traced) -> None:
    result = run(traced, traced.twice)
    zone = result.step(Stage.RAW_ZONE)
    assert zone.state is State.FOUND and len(zone.where["copies"]) == 2
    enriched = result.step(Stage.ENRICHED_TOPIC)
    assert len(enriched.where["copies"]) == 2, enriched
    curated = result.step(Stage.CURATED)
    assert curated.state is State.FOUND
    assert len(curated.where["validated"]) == 2
    assert len(curated.where["removed_as_duplicate"]) == 1
    kept = {k: v for k, v in curated.where["kept"].items() if k != "event_date"}
    assert kept in curated.where["validated"]
    assert kept not in curated.where["removed_as_duplicate"]
    assert result.outcome is Outcome.COMPLETE


def test_the_user_id_reads_one_partition_the_producer_chose(traced: Traced) -> None:
    """A windowed read of the key's partition only: the producers' partitioner, checked."""
    empty = traced.settings.model_copy(
        update={"search": traced.settings.search.model_copy(update={"index_prefix": "nothing"})}
    )
    with Tracer(empty) as tracer:
        first = tracer.trace(traced.plain["event_id"], Hints(user_id="trace-plain"))
        # Its consumer reads the same partitions again (none left paused by the first read).
        result = tracer.trace(traced.plain["event_id"], Hints(user_id="trace-plain"))
    assert first.step(Stage.ENRICHED_TOPIC).where == result.step(Stage.ENRICHED_TOPIC).where
    enriched = result.step(Stage.ENRICHED_TOPIC)
    assert enriched.state is State.FOUND, enriched
    partitions = traced.rig.settings.kafka.partitions
    assert enriched.where["partition"] == key_partition("user_id:trace-plain", partitions)
    assert f"partition {enriched.where['partition']} (key user_id:trace-plain)" in enriched.how
    # The enriched record's lineage then leads to the raw record, read at its offset.
    raw = result.step(Stage.RAW_TOPIC)
    assert raw.state is State.FOUND and raw.how.startswith("read at")
    assert raw.where["partition"] == enriched.where["partition"]


def test_an_unknown_event_is_not_found(traced: Traced) -> None:
    result = run(traced, {"event_id": str(uuid.uuid4())}, Hints(day=traced.day))
    assert result.outcome is Outcome.NOT_FOUND and result.stopped_at is None
    assert {s.state for s in result.steps} == {State.ABSENT}


def _cli_env(settings: PlatformSettings) -> dict[str, str]:
    env = dict(os.environ)
    topics = settings.topics
    env.update(
        TRIBUTARY_PROFILE="local",
        TRIBUTARY_LAKE__CATALOG="sql",
        TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS=settings.kafka.bootstrap_servers,
        TRIBUTARY_TOPICS__RAW=topics.raw,
        TRIBUTARY_TOPICS__COLLECTOR_DLQ=topics.collector_dlq,
        TRIBUTARY_TOPICS__ENRICHED=topics.enriched,
        TRIBUTARY_TOPICS__ENRICHED_DLQ=topics.enriched_dlq,
        TRIBUTARY_TOPICS__LOADER_DLQ=topics.loader_dlq,
        TRIBUTARY_S3__ENDPOINT_URL=settings.s3.endpoint_url,
        TRIBUTARY_S3__RAW_PREFIX=settings.s3.raw_prefix,
        TRIBUTARY_SEARCH__ENGINE=str(settings.search.engine),
        TRIBUTARY_SEARCH__INDEX_PREFIX=settings.search.index_prefix,
        TRIBUTARY_LAKE__LOCAL_ROOT=str(settings.lake.local_root),
    )
    return env


@pytest.mark.parametrize(
    ("which", "code", "outcome"),
    [("plain", 0, "complete"), ("broken", 6, "partial"), (None, 7, "not_found")],
)
def test_the_command_prints_json_and_exits_by_outcome(
    traced: Traced, which: str | None, code: int, outcome: str
) -> None:
    event_id = str(uuid.uuid4()) if which is None else getattr(traced, which)["event_id"]
    done = subprocess.run(
        [TRIBUTARY, "trace", event_id, "--json", "--date", traced.day.isoformat()],
        capture_output=True,
        text=True,
        timeout=180,
        env=_cli_env(traced.settings),
        check=False,
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    answer = json.loads(done.stdout)
    assert answer["event_id"] == event_id and answer["outcome"] == outcome
    assert [s["stage"] for s in answer["stages"]] == [str(s) for s in Stage]
    if which != "broken":
        return  # the human output once: each run of the command costs its start-up
    human = subprocess.run(
        [TRIBUTARY, "trace", event_id, "--date", traced.day.isoformat()],
        capture_output=True,
        text=True,
        timeout=180,
        env=_cli_env(traced.settings),
        check=False,
    )
    assert human.returncode == code
    lines = human.stdout.splitlines()
    assert len(lines) == len(Stage) + 1 and lines[-1].startswith(f"{outcome}:")
