"""Erase a person from every store the platform writes, and record it in an audit table.

``forget(settings, field, value, requested_by)`` removes every event whose ``context[field]``
is ``value`` (or a pseudonym of it, under any configured key version):

1. **Search store** (either engine, through ``resources.search``): events by the indexed
   ``context.<field>``; dead letters by the record key the real-time loader indexes
   (``loader.key``: ``user_id:<id>``, as ``contract.envelope.identity_key`` keys a person's
   records and their dead letters).
2. **Raw zone**: the ``context`` column of every data object is read (a projection, not the
   objects), the objects with the person's rows are rewritten without them (deleted when
   nothing is left), and a new manifest is written for each, so the raw-zone sensor
   re-curates those dates.
3. **Curated lake**: a row-level delete in every Iceberg table that holds the person's rows
   (by ``user_id``, by ``user_key`` (``u:<id>``), or by the ids of the person's events), then
   the table's history is expired and the data and manifest files no snapshot references any
   more are deleted, so no earlier snapshot still holds the rows. The aggregates they fed are
   recomputed by re-materialising the marts of the dates touched (``affected_dates``): the CLI
   does it in process, the Dagster job through a run request.

Kafka is not changed: its topics keep the events until their retention
(``KafkaSettings.events_retention_days``, ``dead_letter_retention_days``), which the report
states. Every request appends rows to the audit table ``privacy.erasures`` (who asked, when,
what was removed where, how many); the person is recorded as a SHA-256 digest of
``field:value``, never in clear. A second request for the same person removes nothing and
says so, naming the earlier requests.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError
from pyiceberg.expressions import BooleanExpression, EqualTo, In
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    DateType,
    ListType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from contract.envelope import USER_KEY_PREFIXES
from contract.raw_zone import (
    Manifest,
    PartitionKey,
    manifest_key,
    parquet_bytes,
    parse_object_name,
)
from contract.search import DEADLETTERS, EVENTS, index_pattern
from privacy import pseudonyms
from resources.lake import NAMESPACES, make_catalog
from resources.s3 import make_s3_client, polars_storage_options
from resources.search import SearchStore, make_search_store
from resources.settings import MissingSetting, PlatformSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

AUDIT_NAMESPACE = "privacy"
AUDIT_TABLE = (AUDIT_NAMESPACE, "erasures")
AUDIT_SCHEMA = Schema(
    NestedField(1, "request_id", StringType(), required=True),
    NestedField(2, "requested_at", TimestamptzType(), required=True),
    NestedField(3, "requested_by", StringType(), required=True),
    NestedField(4, "identity_field", StringType(), required=True),
    NestedField(5, "subject_sha256", StringType(), required=True),
    NestedField(6, "store", StringType(), required=True),
    NestedField(7, "location", StringType(), required=True),
    NestedField(8, "removed", LongType(), required=True),
    NestedField(
        9,
        "event_dates",
        ListType(element_id=10, element_type=DateType(), element_required=True),
        required=True,
        doc="The event dates of what was removed (the partitions recomputed).",
    ),
)
SEARCH, RAW_ZONE, LAKE = "search", "raw_zone", "lake"
REWRITE_THREADS = 4


def subject_digest(identity_field: str, value: str) -> str:
    """How the audit names a person: SHA-256 of ``field:value``, so it never holds the id."""
    return hashlib.sha256(f"{identity_field}:{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Subject:
    """A person, as the stores may hold them: the value and its pseudonyms."""

    identity_field: str
    value: str
    pseudonyms: tuple[str, ...] = ()

    @property
    def values(self) -> list[str]:
        return [self.value, *self.pseudonyms]

    @property
    def digest(self) -> str:
        return subject_digest(self.identity_field, self.value)


@dataclass(frozen=True)
class Removal:
    """What one store lost: ``removed`` rows or documents at ``location``."""

    store: str
    location: str
    removed: int
    dates: frozenset[date] = frozenset()


@dataclass
class Erasure:
    """The outcome of one request, as the audit table records it."""

    request_id: str
    requested_at: datetime
    requested_by: str
    subject: Subject
    removals: list[Removal] = field(default_factory=list)
    earlier: list[tuple[str, datetime]] = field(default_factory=list)
    kafka_retention: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return sum(r.removed for r in self.removals)

    def removed_from(self, store: str) -> int:
        return sum(r.removed for r in self.removals if r.store == store)

    @property
    def affected_dates(self) -> list[date]:
        """The event dates whose curated partitions (and the aggregates they feed) changed."""
        return sorted({d for r in self.removals if r.store != SEARCH for d in r.dates})

    def lines(self) -> list[str]:
        """What a person reads: one line per store, then what stays where."""
        lines = [
            f"erasure {self.request_id} of {self.subject.identity_field} (by {self.requested_by})"
        ]
        for store in (SEARCH, RAW_ZONE, LAKE):
            places = [r for r in self.removals if r.store == store and r.removed]
            if store == RAW_ZONE and places:
                detail = f"{len(places)} objects rewritten"
            else:
                detail = ", ".join(f"{r.location}: {r.removed}" for r in places) or "nothing"
            took = f" in {self.seconds[store]:.1f} s" if store in self.seconds else ""
            lines.append(f"  {store}: {self.removed_from(store)} removed{took} ({detail})")
        if not self.removed:
            if self.earlier:
                first = ", ".join(f"{rid} at {at.isoformat()}" for rid, at in self.earlier)
                lines.append(f"  nothing left to remove: already erased by {first}")
            else:
                lines.append("  nothing found for this person")
        if self.affected_dates:
            days = ", ".join(d.isoformat() for d in self.affected_dates)
            lines.append(f"  recomputing the marts of {days}")
        retention = ", ".join(f"{t}: {d:g} days" for t, d in self.kafka_retention.items())
        lines.append(f"  Kafka keeps the events until their retention ({retention})")
        return lines


def _dates(values: Iterable[Any]) -> frozenset[date]:
    return frozenset(v for v in values if isinstance(v, date))


# -- the search store ----------------------------------------------------------------------


def erase_search(store: SearchStore, prefix: str, subject: Subject) -> list[Removal]:
    """Delete the person's event documents and dead letters, in every daily index."""
    events = index_pattern(prefix, EVENTS)
    deadletters = index_pattern(prefix, DEADLETTERS)
    keys = [f"{subject.identity_field}:{v}" for v in subject.values]
    return [
        Removal(
            SEARCH,
            events,
            store.delete_where(
                events, {"terms": {f"context.{subject.identity_field}": subject.values}}
            ),
        ),
        Removal(
            SEARCH, deadletters, store.delete_where(deadletters, {"terms": {"loader.key": keys}})
        ),
    ]


# -- the raw zone --------------------------------------------------------------------------


def _data_keys(client: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            rest = item["Key"][len(prefix) :]
            if item["Key"].endswith(".parquet") and not rest.startswith("_"):
                keys.append(item["Key"])
    return sorted(keys)


def _kept(contexts: pa.ChunkedArray, subject: Subject) -> pa.Array:
    """The mask of the rows whose ``context`` JSON does not hold the person (vectorised)."""
    import polars as pl

    held = (
        pl.Series("context", contexts)
        .str.json_path_match(f"$.{subject.identity_field}")
        .is_in(subject.values)
        .fill_null(False)
    )
    return (~held).to_arrow()


def _partition_of(key: str, prefix: str) -> tuple[date, int]:
    parts = dict(p.split("=", 1) for p in key[len(prefix) :].split("/")[:2])
    return date.fromisoformat(parts["event_date"]), int(parts["event_hour"])


def erase_raw_zone(
    client: S3Client, settings: PlatformSettings, subject: Subject
) -> tuple[list[Removal], set[str]]:
    """Rewrite every data object that holds the person's rows; return them and their event ids.

    Only ``context`` (and ``event_id``) are read from each object (Parquet projection over
    S3); the objects with a match are read whole, rewritten without the rows, and get a new
    manifest.
    """
    import polars as pl

    s3 = settings.s3
    keys = _data_keys(client, s3.raw_bucket, s3.raw_prefix)
    if not keys:
        return [], set()
    scanned = (
        pl.scan_parquet(
            [f"s3://{s3.raw_bucket}/{k}" for k in keys],
            hive_partitioning=False,
            storage_options=polars_storage_options(s3),
            include_file_paths="object",
        )
        .select("object", "event_id", "context")
        .filter(
            pl.col("context")
            .str.json_path_match(f"$.{subject.identity_field}")
            .is_in(subject.values)
        )
        .collect()
    )
    bucket_uri = f"s3://{s3.raw_bucket}/"
    objects = [uri[len(bucket_uri) :] for uri in sorted(set(scanned["object"].to_list()))]
    # Reading, filtering and zstd-encoding release the GIL: a few objects at a time.
    with ThreadPoolExecutor(max_workers=REWRITE_THREADS) as pool:
        removals = list(pool.map(lambda key: _rewrite(client, settings, key, subject), objects))
    return removals, set(scanned["event_id"].to_list())


def _rewrite(client: S3Client, settings: PlatformSettings, key: str, subject: Subject) -> Removal:
    s3 = settings.s3
    body = client.get_object(Bucket=s3.raw_bucket, Key=key)["Body"].read()
    table = pq.read_table(pa.BufferReader(body))
    kept = table.filter(_kept(table["context"], subject))
    removed = table.num_rows - kept.num_rows
    event_date, hour = _partition_of(key, s3.raw_prefix)
    if kept.num_rows == 0:
        client.delete_object(Bucket=s3.raw_bucket, Key=key)
        return Removal(RAW_ZONE, key, removed, frozenset({event_date}))
    data = parquet_bytes(kept)
    client.put_object(Bucket=s3.raw_bucket, Key=key, Body=data)
    topic, partition, first, last = parse_object_name(key)
    times = pc.min_max(kept["event_timestamp"])
    now = datetime.now(UTC)
    manifest = Manifest.of(
        key,
        PartitionKey(topic, partition, event_date, hour),
        rows=kept.num_rows,
        size=len(data),
        first_offset=first,
        last_offset=last,
        min_event_time=times["min"].as_py(),
        max_event_time=times["max"].as_py(),
        written_at=now,
    )
    client.put_object(
        Bucket=s3.raw_bucket,
        Key=manifest_key(s3.raw_prefix, key, now),
        Body=manifest.to_json(),
        ContentType="application/json",
    )
    return Removal(RAW_ZONE, key, removed, frozenset({event_date}))


# -- the curated lake ----------------------------------------------------------------------


def _person_filter(table: Table, subject: Subject, event_ids: set[str]) -> BooleanExpression | None:
    """The row filter of the person's rows in ``table``, or None when it holds none."""
    columns = {f.name for f in table.schema().fields}
    name = subject.identity_field
    if name in columns:
        return In(term=name, literals=subject.values)
    prefix = USER_KEY_PREFIXES.get(name)
    if prefix is not None and "user_key" in columns:
        return In(term="user_key", literals=[prefix + v for v in subject.values])
    if "event_id" in columns and event_ids:
        return In(term="event_id", literals=sorted(event_ids))
    return None


def _event_ids(table: Table, row_filter: BooleanExpression) -> set[str]:
    if "event_id" not in {f.name for f in table.schema().fields}:
        return set()
    found = table.scan(row_filter=row_filter, selected_fields=("event_id",)).to_arrow()
    return set(found["event_id"].to_pylist())


def _delete(table: Table, row_filter: BooleanExpression, attempts: int = 5) -> Table:
    """``table.delete``, again on a fresh table when a concurrent commit (a run) got first."""
    for attempt in range(attempts):
        try:
            table.delete(row_filter)
            return table.refresh()
        except CommitFailedException:
            if attempt == attempts - 1:
                raise
            table = table.refresh()
    raise AssertionError("unreachable")


def _purge_history(table: Table) -> int:
    """Expire every snapshot but the current one; delete the files only they referenced."""
    current = table.current_snapshot()
    if current is None:
        return 0
    older = [s.snapshot_id for s in table.snapshots() if s.snapshot_id != current.snapshot_id]
    if not older:
        return 0
    before = _referenced_files(table)
    table.maintenance.expire_snapshots().by_ids(older).commit()
    table = table.refresh()
    orphans = before - _referenced_files(table)
    for path in sorted(orphans):
        table.io.delete(path)
    return len(orphans)


def _referenced_files(table: Table) -> set[str]:
    """Data, delete and manifest files and manifest lists of every snapshot of ``table``."""
    files = set(table.inspect.all_files()["file_path"].to_pylist())
    files |= set(table.inspect.all_manifests()["path"].to_pylist())
    files |= {s.manifest_list for s in table.snapshots() if s.manifest_list}
    return files


def _date_column(table: Table) -> str | None:
    for name in ("event_date", "session_date"):
        if name in {f.name for f in table.schema().fields}:
            return name
    return None


def erase_lake(
    catalog: Catalog,
    subject: Subject,
    event_ids: set[str],
    namespaces: Iterable[str] = NAMESPACES,
) -> list[Removal]:
    """Row-level deletes of the person's rows in every curated table, history purged."""
    removals: list[Removal] = []
    tables: list[Table] = []
    for namespace in namespaces:
        try:
            identifiers = catalog.list_tables(namespace)
        except NoSuchNamespaceError:  # not created yet: it holds nothing
            continue
        tables += [catalog.load_table(i) for i in identifiers]
    # Tables keyed by the person first: their event ids reach the tables that only have those.
    for table in tables:
        row_filter = _person_filter(table, subject, set())
        if row_filter is not None:
            event_ids |= _event_ids(table, row_filter)
    for table in tables:
        row_filter = _person_filter(table, subject, event_ids)
        if row_filter is None:
            continue
        date_column = _date_column(table)
        columns = tuple(c for c in (date_column,) if c) or ("*",)
        rows = table.scan(row_filter=row_filter, selected_fields=columns).to_arrow()
        purged = 0
        if rows.num_rows:
            table = _delete(table, row_filter)
            purged = _purge_history(table)
        dates = (
            _dates(rows[date_column].to_pylist()) if date_column and rows.num_rows else frozenset()
        )
        name = ".".join(table.name()[-2:])
        log.info(
            "erasure: %s rows from %s, %s unreferenced files deleted", rows.num_rows, name, purged
        )
        removals.append(Removal(LAKE, name, rows.num_rows, dates))
    return removals


# -- the audit -----------------------------------------------------------------------------


def audit_table(catalog: Catalog) -> Table:
    catalog.create_namespace_if_not_exists(AUDIT_NAMESPACE)
    return catalog.create_table_if_not_exists(AUDIT_TABLE, AUDIT_SCHEMA)


def earlier_requests(table: Table, subject: Subject) -> list[tuple[str, datetime]]:
    """The requests already recorded for this person: (request id, when), oldest first."""
    rows = table.scan(
        row_filter=EqualTo(term="subject_sha256", value=subject.digest),
        selected_fields=("request_id", "requested_at"),
    ).to_arrow()
    seen = sorted(
        {(r["request_id"], r["requested_at"]) for r in rows.to_pylist()}, key=lambda x: x[1]
    )
    return seen


def record(table: Table, erasure: Erasure) -> None:
    """Append the request's rows to the audit: one per store and location (one when none)."""
    removals = erasure.removals or [Removal(LAKE, "-", 0)]
    rows = [
        {
            "request_id": erasure.request_id,
            "requested_at": erasure.requested_at,
            "requested_by": erasure.requested_by,
            "identity_field": erasure.subject.identity_field,
            "subject_sha256": erasure.subject.digest,
            "store": r.store,
            "location": r.location,
            "removed": r.removed,
            "event_dates": sorted(r.dates),
        }
        for r in removals
    ]
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def recorded_dates(catalog: Catalog, request_id: str) -> list[date]:
    """The event dates whose curated partitions a recorded request changed."""
    rows = audit_rows(catalog, request_id)
    return sorted({d for r in rows if r["store"] != SEARCH for d in r["event_dates"]})


def audit_rows(catalog: Catalog, request_id: str) -> list[dict[str, Any]]:
    """The audit rows of one request (the Dagster sensor reads the dates to recompute)."""
    found = audit_table(catalog).scan(row_filter=EqualTo(term="request_id", value=request_id))
    rows: list[dict[str, Any]] = found.to_arrow().to_pylist()
    return rows


# -- the request ---------------------------------------------------------------------------


def subject_of(settings: PlatformSettings, identity_field: str, value: str) -> Subject:
    """The person as every store may hold them: with the pseudonyms of ``value``, if any."""
    if identity_field not in settings.privacy.identity_fields:
        allowed = ", ".join(settings.privacy.identity_fields)
        raise ValueError(
            f"{identity_field!r} is not an identity field "
            f"(TRIBUTARY_PRIVACY__IDENTITY_FIELDS: {allowed})"
        )
    if not value:
        raise ValueError("the identity value is empty")
    return Subject(identity_field, value, tuple(pseudonyms_of(settings, identity_field, value)))


def pseudonyms_of(settings: PlatformSettings, identity_field: str, value: str) -> list[str]:
    """The pseudonyms ``value`` may be stored under: one per configured key version.

    None while no pseudonym key is configured or the field is not pseudonymised; with keys
    but pseudonyms off, they are still looked for: events written while they were on.
    """
    config = settings.privacy.pseudonyms
    if identity_field not in config.context_fields:
        return []
    try:
        return list(pseudonyms.pseudonyms_of(config, value).values())
    except MissingSetting:
        return []


def forget(
    settings: PlatformSettings,
    identity_field: str,
    value: str,
    requested_by: str,
    *,
    request_id: str | None = None,
    catalog: Catalog | None = None,
    store: SearchStore | None = None,
    s3_client: S3Client | None = None,
    progress: Callable[[str], None] | None = None,
) -> Erasure:
    """Erase one person from the search store, the raw zone and the curated lake; audit it."""
    subject = subject_of(settings, identity_field, value)
    catalog = catalog or make_catalog(settings)
    audit = audit_table(catalog)
    erasure = Erasure(
        request_id=request_id or str(uuid.uuid4()),
        requested_at=datetime.now(UTC),
        requested_by=requested_by,
        subject=subject,
        earlier=earlier_requests(audit, subject),
        kafka_retention=_retention(settings),
    )
    say = progress or (lambda _line: None)
    event_ids: set[str] = set()

    def search() -> list[Removal]:
        if store is not None:
            return erase_search(store, settings.search.index_prefix, subject)
        with make_search_store(settings.search) as own:
            return erase_search(own, settings.search.index_prefix, subject)

    def raw_zone() -> list[Removal]:
        client = s3_client or make_s3_client(settings.s3)
        removals, found = erase_raw_zone(client, settings, subject)
        event_ids.update(found)
        return removals

    stages: list[tuple[str, str, Callable[[], list[Removal]]]] = [
        (SEARCH, "search store", search),
        (RAW_ZONE, "raw zone", raw_zone),
        (LAKE, "curated lake", lambda: erase_lake(catalog, subject, event_ids)),
    ]
    for name, title, erase in stages:
        say(title)
        started = time.perf_counter()
        erasure.removals += erase()
        erasure.seconds[name] = time.perf_counter() - started
    record(audit, erasure)
    return erasure


def _retention(settings: PlatformSettings) -> dict[str, float]:
    t, k = settings.topics, settings.kafka
    return {
        t.raw: k.events_retention_days,
        t.enriched: k.events_retention_days,
        t.collector_dlq: k.dead_letter_retention_days,
        t.enriched_dlq: k.dead_letter_retention_days,
        t.loader_dlq: k.dead_letter_retention_days,
    }
