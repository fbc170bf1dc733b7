"""Pseudonyms on the real stream: no original reaches the enriched topic, the search store or
the lake, and the pseudonyms are the keyed HMACs.

The five processes run on topics, groups, an index prefix and a raw-zone prefix of their
own (``tests.pipeline_rig``), with pseudonyms on: the client IP, ``context.user_id``, the
``message`` of every version of ``log_record`` (an email in it) and the ``page_title`` of
``page_view`` 1-0-0 only. Events of a few people go in over HTTP, some broken so that both the
collector and the enricher dead-letter them. Then every record of the enriched topic and the
enricher's dead letters (keys and values), every document of the search store (events and
dead letters), every row of every raw-zone Parquet object and of every curated table is
searched, as text, for each original; and curation still sessionises by the pseudonymised id.
The raw topic and the collector's dead-letter topic keep the originals (until retention):
that they are found there shows that the search can find them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import httpx
import orjson
import polars as pl
import pytest

from contract.envelope import rfc3339
from platform_assets.assets.lake.curated import CURATED_ASSETS
from platform_assets.resources import resources_for
from privacy.forget import forget
from privacy.trace import Hints, Stage, State, Tracer
from resources.kafka import key_partition
from resources.lake import make_catalog
from resources.s3 import make_s3_client
from resources.search import make_search_store
from resources.settings import LakeSettings, PlatformSettings, PrivacySettings, Profile
from streaming.reconcile import Reconciler
from tests.kafka_helpers import read_committed, read_since
from tests.pipeline_rig import Rig, settle, start_rig
from tests.streaming.batch_helpers import read_lake
from tests.streaming.realtime_helpers import all_docs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN = uuid.uuid4().hex[:8]
KEY = f"pipeline-test-key-{RUN}"
VERSION = "t2"
LOG = "iglu:com.tributary.app/log_record/jsonschema/1-0-0"
VIEW_100 = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"
VIEW_101 = "iglu:com.tributary.shop/page_view/jsonschema/1-0-1"
PEOPLE = 6
PRIVACY = PrivacySettings(
    pseudonyms={
        "enabled": True,
        "key": KEY,
        "key_version": VERSION,
        # A retired key travels to the processes too (as JSON, with its secret).
        "retired_keys": {"t1": f"retired-test-key-{RUN}"},
        "payload_fields": {
            "com.tributary.app/log_record": ["/message"],
            "com.tributary.shop/page_view/1-0-0": ["/page_title"],
        },
    }
)


def hmac_of(value: str) -> str:
    return f"ps:{VERSION}:" + hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


@dataclass
class Person:
    n: int
    user_id: str = ""
    email: str = ""
    ip: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        self.user_id = f"person-{RUN}-{self.n}"
        self.email = f"person.{RUN}.{self.n}@example.org"
        self.ip = f"81.2.69.{140 + self.n}"
        self.title = f"Private page of person {RUN} {self.n}"


@dataclass
class Sent:
    people: list[Person]
    start: datetime
    originals: list[str]
    public_titles: list[str] = field(default_factory=list)
    collector_refused: str = ""  # the event_id of the event the collector dead-letters
    enricher_refused: str = ""  # the event_id of the event the enricher dead-letters


def event(event_type: str, ts: datetime, payload: dict[str, Any], person: Person) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_timestamp": rfc3339(ts),
        "source": "privacy-test",
        "payload": payload,
        "context": {
            "user_id": person.user_id,
            "session_id": f"s-{uuid.uuid4()}",
            "client_ip": person.ip,
        },
    }


def events_of(people: list[Person], start: datetime) -> tuple[list[dict[str, Any]], Sent]:
    sent = Sent(people, start, originals=["127.0.0.1"])
    out: list[dict[str, Any]] = []
    for p in people:
        sent.originals += [p.user_id, p.email, p.ip, p.title]
        # Two visits two hours apart: two sessions each.
        for visit in (start + timedelta(minutes=p.n), start + timedelta(hours=2, minutes=p.n)):
            public = f"Public page {uuid.uuid4()}"
            sent.public_titles.append(public)
            out += [
                event(
                    VIEW_100,
                    visit,
                    {"page_url": "https://shop.example.com/", "page_title": p.title},
                    p,
                ),
                event(
                    VIEW_101,
                    visit + timedelta(seconds=20),
                    {"page_url": "https://shop.example.com/a", "page_title": public},
                    p,
                ),
                event(
                    LOG,
                    visit + timedelta(seconds=30),
                    {"service": "auth", "level": "info", "message": f"login by {p.email}"},
                    p,
                ),
            ]
    first = people[0]
    # The enricher refuses this one (an unknown level), the collector the next (an extra
    # top-level field): both dead letters quote the person.
    broken = event(LOG, start, {"service": "auth", "level": "loud", "message": first.email}, first)
    sent.enricher_refused = broken["event_id"]
    refused = event(LOG, start, {"service": "auth", "level": "info", "message": first.email}, first)
    refused["extra"] = "field"
    sent.collector_refused = refused["event_id"]
    return [*out, broken, refused], sent


@dataclass
class Outputs:
    rig: Rig
    sent: Sent
    raw: list[bytes]
    collector_dlq: list[bytes]
    enriched: list[tuple[bytes, bytes]]
    enriched_dlq: list[tuple[bytes, bytes]]
    documents: list[dict[str, Any]]
    lake_rows: list[dict[str, Any]]
    lake_bytes: list[bytes]
    settings: PlatformSettings


def text(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


@pytest.fixture(scope="module")
def outputs(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    opensearch: PlatformSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Outputs]:
    work = tmp_path_factory.mktemp("pseudonyms")
    rig = start_rig(kafka, s3, work, privacy=PRIVACY)
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    events, sent = events_of([Person(n) for n in range(PEOPLE)], start)
    settings = rig.settings
    try:
        with Reconciler(settings) as reconciler:
            answer = httpx.post(
                f"{rig.pipeline.collector_url}/v1/events",
                content=orjson.dumps(events),
                headers={"authorization": f"Bearer {rig.key}", "content-type": "application/json"},
                timeout=30,
            )
            assert answer.status_code in (200, 207), answer.text
            result = settle(reconciler, rig)
        assert result.settled, result.problems()
        topics = settings.topics
        raw = [
            m.value() or b"" for m in read_since(settings.kafka, topics.raw, {}, len(events) - 1)
        ]
        collector_dlq = [
            m.value() or b"" for m in read_since(settings.kafka, topics.collector_dlq, {}, 1)
        ]
        enriched = [
            (m.key() or b"", m.value() or b"")
            for m in read_committed(settings.kafka, topics.enriched)
        ]
        enriched_dlq = [
            (m.key() or b"", m.value() or b"")
            for m in read_committed(settings.kafka, topics.enriched_dlq)
        ]
        store = make_search_store(settings.search)
        documents = [d["_source"] for d in all_docs(store, f"{settings.search.index_prefix}-*")]
        objects, _ = read_lake(settings.s3, settings.s3.raw_prefix)
        lake_rows = [row for o in objects for row in o.table.to_pylist()]
        client = make_s3_client(settings.s3)
        lake_bytes = [
            client.get_object(Bucket=settings.s3.raw_bucket, Key=o.key)["Body"].read()
            for o in objects
        ]
    finally:
        rig.pipeline.stop()
    lake = PlatformSettings(
        profile=Profile.LOCAL,
        kafka=settings.kafka,
        s3=settings.s3,
        search=settings.search,
        lake=LakeSettings(local_root=work / "lake"),
    )
    yield Outputs(
        rig,
        sent,
        raw,
        collector_dlq,
        enriched,
        enriched_dlq,
        documents,
        lake_rows,
        lake_bytes,
        lake,
    )


def leaks(haystack: str, sent: Sent) -> list[str]:
    return [o for o in sent.originals if o in haystack]


def test_the_originals_are_on_the_raw_topic_and_the_collectors_dead_letters(
    outputs: Outputs,
) -> None:
    """Where they stay until retention; and proof that the search below finds them."""
    raw = b"\n".join(outputs.raw).decode()
    assert leaks(raw, outputs.sent) == outputs.sent.originals
    refused = b"\n".join(outputs.collector_dlq).decode()
    assert outputs.sent.people[0].email in refused


def test_no_original_on_the_enriched_topic_and_the_pseudonyms_are_the_hmacs(
    outputs: Outputs,
) -> None:
    sent = outputs.sent
    assert len(outputs.enriched) == PEOPLE * 6
    for key, value in outputs.enriched:
        assert leaks(key.decode() + value.decode(), sent) == []
    records = [orjson.loads(v) for _, v in outputs.enriched]
    by_user = {hmac_of(p.user_id): p for p in sent.people}
    assert {r["context"]["user_id"] for r in records} == set(by_user)
    for (key, _), r in zip(outputs.enriched, records, strict=True):
        person = by_user[r["context"]["user_id"]]
        assert key.decode() == f"user_id:{hmac_of(person.user_id)}"
        assert r["context"]["client_ip"] == hmac_of(person.ip)
        assert r["collector"]["client_ip"] == hmac_of("127.0.0.1")
        assert r["lineage"]["pseudonym_key_version"] == VERSION
        # Geo was looked up on the real address before it was replaced.
        assert r["enrichment"]["geo"]["country_code"], r["enrichment"]
        payload = r["payload"]
        if r["event_type"] == LOG:
            assert payload["message"] == hmac_of(f"login by {person.email}")
            assert payload["service"] == "auth"
        elif r["event_type"] == VIEW_100:
            assert payload["page_title"] == hmac_of(person.title)
        else:  # 1-0-1: its page_title is not declared
            assert payload["page_title"] in sent.public_titles


def test_no_original_in_the_enrichers_dead_letters(outputs: Outputs) -> None:
    sent = outputs.sent
    assert len(outputs.enriched_dlq) == 1
    key, value = outputs.enriched_dlq[0]
    assert leaks(key.decode() + value.decode(), sent) == []
    failed = orjson.loads(value)
    assert failed["event_id"] == sent.enricher_refused
    assert failed["metadata"]["pseudonym_key_version"] == VERSION
    original = failed["original"]["data"]
    assert original["context"]["user_id"] == hmac_of(sent.people[0].user_id)
    assert original["payload"]["message"] == hmac_of(sent.people[0].email)
    assert original["payload"]["level"] == "loud"


def test_no_original_in_the_search_store(outputs: Outputs) -> None:
    sent = outputs.sent
    events = [d for d in outputs.documents if "lineage" in d]
    dead = [d for d in outputs.documents if "failure_type" in d]
    assert len(events) == PEOPLE * 6
    assert {d["event_id"] for d in dead} == {sent.collector_refused, sent.enricher_refused}
    for doc in outputs.documents:
        assert leaks(text(doc), sent) == [], doc
    assert {d["context"]["user_id"] for d in events} == {hmac_of(p.user_id) for p in sent.people}
    assert {d["lineage"]["pseudonym_key_version"] for d in events} == {VERSION}
    refused = next(d for d in dead if d["event_id"] == sent.collector_refused)
    assert refused["stage"] == "collector"
    assert refused["original"]["data"]["payload"]["message"] == hmac_of(sent.people[0].email)
    assert refused["metadata"]["client_ip"] == hmac_of("127.0.0.1")


def test_no_original_in_the_raw_zone(outputs: Outputs) -> None:
    sent = outputs.sent
    assert len(outputs.lake_rows) == PEOPLE * 6
    for row in outputs.lake_rows:
        assert leaks(text(row), sent) == [], row
    for body in outputs.lake_bytes:
        assert [o for o in sent.originals if o.encode() in body] == []
    users = {json.loads(row["context"])["user_id"] for row in outputs.lake_rows}
    assert users == {hmac_of(p.user_id) for p in sent.people}
    assert {row["collector_client_ip"] for row in outputs.lake_rows} == {hmac_of("127.0.0.1")}


def test_curation_sessionises_by_the_pseudonym_and_keeps_no_original(outputs: Outputs) -> None:
    sent = outputs.sent
    days = sorted({r["event_timestamp"].date().isoformat() for r in outputs.lake_rows})
    for day in days:
        result = dg.materialize(
            CURATED_ASSETS,
            partition_key=day,
            resources=resources_for(outputs.settings),
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
    catalog = make_catalog(outputs.settings)
    tables = [
        f"{ns[0]}.{name[-1]}"
        for ns in catalog.list_namespaces()
        for name in catalog.list_tables(ns)
    ]
    assert "marts.fct_sessions" in tables
    for name in tables:
        rows = catalog.load_table(name).scan().to_arrow().to_pylist()
        assert leaks(text(rows), sent) == [], name
    sessions = pl.from_arrow(catalog.load_table("marts.fct_sessions").scan().to_arrow())
    assert isinstance(sessions, pl.DataFrame)
    per_user = dict(sessions.group_by("user_id").len().iter_rows())
    # Two visits two hours apart: two sessions of each person, under the pseudonym.
    assert per_user == {hmac_of(p.user_id): 2 for p in sent.people}


def test_trace_by_the_clear_user_id_finds_the_pseudonymised_records(outputs: Outputs) -> None:
    """The hint is the id in clear: the raw topic is keyed by it, the enricher's by its alias."""
    person = outputs.sent.people[1]
    alias = hmac_of(person.user_id)
    row = next(r for r in outputs.lake_rows if json.loads(r["context"])["user_id"] == alias)
    settings = outputs.settings.model_copy(
        update={"privacy": PRIVACY, "topics": outputs.rig.settings.topics}
    )
    hints = Hints(day=row["event_timestamp"].date(), user_id=person.user_id)
    topics = settings.topics
    with Tracer(settings) as tracer:
        found = tracer.trace(row["event_id"], hints)
        # Where a time-window read looks when no offset is known: the key each topic has.
        clear, aliased = f"user_id:{person.user_id}", f"user_id:{alias}"
        assert tracer._key_on(topics.raw, clear) == clear
        assert tracer._key_on(topics.enriched, clear) == aliased
        assert tracer._key_on(topics.enriched, aliased) == aliased
        assert tracer._key_on(topics.raw, aliased) is None  # the id cannot be recovered
    for stage in (Stage.RAW_TOPIC, Stage.ENRICHED_TOPIC, Stage.SEARCH, Stage.RAW_ZONE):
        assert found.step(stage).state is State.FOUND, found.lines()
    partitions = rig_partitions(outputs)
    assert found.step(Stage.RAW_TOPIC).where["partition"] == key_partition(clear, partitions)
    assert found.step(Stage.ENRICHED_TOPIC).where["partition"] == key_partition(aliased, partitions)


def rig_partitions(outputs: Outputs) -> int:
    return outputs.rig.settings.kafka.partitions


def test_forget_by_the_clear_id_erases_the_pseudonymised_events(outputs: Outputs) -> None:
    """Last in this module: it erases a person whom the tests above still count."""
    sent = outputs.sent
    settings = outputs.settings.model_copy(update={"privacy": PRIVACY})
    catalog = make_catalog(settings)
    days = sorted({r["event_timestamp"].date().isoformat() for r in outputs.lake_rows})
    if not catalog.table_exists("marts.fct_sessions"):  # run on its own
        for day in days:
            dg.materialize(
                CURATED_ASSETS,
                partition_key=day,
                resources=resources_for(settings),
                instance=dg.DagsterInstance.ephemeral(),
            )
    person, others = sent.people[0], sent.people[1:]
    alias = hmac_of(person.user_id)
    theirs = [r for r in outputs.lake_rows if json.loads(r["context"])["user_id"] == alias]
    assert theirs

    erasure = forget(settings, "user_id", person.user_id, "dpo@example.com")

    # Found under the pseudonym of every key version, though asked by the clear id.
    assert erasure.removed_from("raw_zone") == len(theirs)
    assert erasure.removed_from("search") >= len(theirs)
    store = make_search_store(settings.search)
    store.refresh(f"{settings.search.index_prefix}-*")
    pattern = f"{settings.search.index_prefix}-events-*"
    assert store.count(pattern, {"term": {"context.user_id": alias}}) == 0
    assert store.count(pattern, {"term": {"context.user_id": hmac_of(others[0].user_id)}}) > 0
    objects, _ = read_lake(settings.s3, settings.s3.raw_prefix)
    left = [json.loads(c)["user_id"] for o in objects for c in o.table["context"].to_pylist()]
    assert alias not in left and hmac_of(others[0].user_id) in left
    sessions = pl.from_arrow(catalog.load_table("marts.fct_sessions").scan().to_arrow())
    assert isinstance(sessions, pl.DataFrame)
    assert dict(sessions.group_by("user_id").len().iter_rows()) == {
        hmac_of(p.user_id): 2 for p in others
    }
