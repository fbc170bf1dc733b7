"""The curated chain on what the real stream wrote: collector → enricher → batch loader → S3.

Events go through the five processes (``tests.pipeline_rig``); some are then sent a second
time, as a producer retrying after a lost answer does, so the raw zone holds true
duplicates. The assets run for the event dates the loader wrote, into a local (SQLite)
Iceberg catalog, and the figures must agree with the raw zone row for row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from platform_assets.assets.lake.curated import (
    CURATED_ASSETS,
    DIM_PRODUCTS,
    DIM_USERS,
    STG_EVENTS,
    VALIDATED,
)
from platform_assets.assets.lake.quality import LAKE_CHECKS
from platform_assets.resources import RawZoneResource, resources_for
from resources.lake import make_catalog
from resources.settings import LakeSettings, PlatformSettings, Profile
from streaming.reconcile import Reconciler
from tests.pipeline_rig import Feed, Rig, settle, start_rig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENTS = 2000
RESENT = 300


@dataclass
class Loaded:
    rig: Rig
    settings: PlatformSettings
    raw: dict[str, pl.DataFrame]  # event date -> its raw-zone rows
    dead_letter_ids: set[str]  # events the enricher dead-lettered (all schema violations)


@pytest.fixture(scope="module")
def loaded(
    kafka: PlatformSettings,
    s3: PlatformSettings,
    opensearch: PlatformSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Loaded]:
    work = tmp_path_factory.mktemp("curated")
    rig = start_rig(kafka, s3, work)
    start = datetime.now(UTC) - timedelta(hours=3)
    dead: set[str] = set()
    try:
        for events in (EVENTS, RESENT):  # the second round repeats the first RESENT events
            with Reconciler(rig.settings) as reconciler:
                stats = Feed(rig, events, None, seed=11, start=start).start().join()
                result = settle(reconciler, rig, producers=[stats])
            assert result.settled, result.problems()
            assert set(result.enriched_dead_letter_reasons) == {"schema_violation"}
            dead |= set(result.enriched_dead_letters)
    finally:
        rig.pipeline.stop()
    settings = PlatformSettings(
        profile=Profile.LOCAL,
        kafka=rig.settings.kafka,
        s3=rig.settings.s3,
        search=rig.settings.search,
        lake=LakeSettings(local_root=work / "lake"),
    )
    zone: RawZoneResource = resources_for(settings)["raw_zone"]
    days = {d.isoformat() for d in (start.date(), (start + timedelta(hours=1)).date())}
    raw = {day: zone.read(day)[0] for day in sorted(days)}
    yield Loaded(rig, settings, {day: rows for day, rows in raw.items() if rows.height}, dead)


def materialize(
    loaded: Loaded, day: str, selection: dg.AssetSelection | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*CURATED_ASSETS, *LAKE_CHECKS],
        selection=selection,
        partition_key=day,
        resources=resources_for(loaded.settings),
        instance=dg.DagsterInstance.ephemeral(),
    )


def table(loaded: Loaded, name: str, day: str) -> pl.DataFrame:
    frame = pl.from_arrow(make_catalog(loaded.settings).load_table(name).scan().to_arrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.filter(pl.col("event_date") == datetime.fromisoformat(day).date())


def test_the_chain_accounts_for_every_raw_row_and_removes_true_duplicates(
    loaded: Loaded,
) -> None:
    assert loaded.raw, "the loader wrote nothing"
    total_duplicates = 0
    for day, raw in loaded.raw.items():
        result = materialize(loaded, day)
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert evaluations and all(e.passed for e in evaluations), [
            (e.check_name, e.metadata) for e in evaluations if not e.passed
        ]

        valid = table(loaded, "staging.validated_events", day)
        quarantined = table(loaded, "staging.quarantined_events", day)
        assert valid.height + quarantined.height == raw.height
        # The enricher already dead-lettered the broken payloads: what reached the raw zone
        # passed the same schemas, so the lake's validation quarantines nothing here (its
        # reasons are tested on broken rows in tests/curation).
        assert quarantined.height == 0

        deduplicated = table(loaded, "staging.deduplicated_events", day)
        assert deduplicated["event_id"].is_unique().all()
        assert set(deduplicated["event_id"]) == set(valid["event_id"])
        total_duplicates += valid.height - deduplicated.height

        stg = table(loaded, "staging.stg_events", day)
        facts = table(loaded, "marts.fct_events", day)
        assert stg.height == deduplicated.height == facts.height
        assert stg["session_id"].null_count() == 0

        kpis = table(loaded, "marts.agg_daily_kpis", day)
        assert kpis.height == 1
        row = kpis.row(0, named=True)
        assert row["raw_events"] == raw.height
        assert row["duplicates_removed"] == valid.height - deduplicated.height
        lines = table(loaded, "marts.fct_order_lines", day)
        assert row["purchases"] == stg.filter(pl.col("event_name") == "purchase").height
        assert lines.height >= row["orders"] > 0
        assert row["sessions"] > 0 and row["users"] > 0
        dim_users = pl.from_arrow(
            make_catalog(loaded.settings).load_table("marts.dim_users").scan().to_arrow()
        )
        assert isinstance(dim_users, pl.DataFrame)
        assert set(stg["user_key"]) <= set(dim_users["user_key"])
        if day == datetime.now(UTC).date().isoformat():  # dead letters are indexed by day failed
            # A resent event's dead letter overwrites its first one (_id = event_id).
            assert row["dead_letters_schema_violation"] == len(loaded.dead_letter_ids) > 0

    # The resent events that passed validation are the only duplicates in the raw zone.
    all_raw = pl.concat(loaded.raw.values())
    copies = all_raw.group_by("event_id").len().filter(pl.col("len") > 1)
    assert copies.height > 0, "the resend produced no duplicates"
    assert total_duplicates <= copies["len"].sum() - copies.height


def test_a_rerun_replaces_the_partition(loaded: Loaded) -> None:
    day = next(iter(loaded.raw))
    assert materialize(loaded, day).success
    before = {n: table(loaded, n, day).height for n in ("staging.stg_events", "marts.fct_events")}
    again = materialize(loaded, day)
    assert again.success
    after = {n: table(loaded, n, day).height for n in before}
    assert after == before and all(before.values())


def test_checks_run_for_the_partition_that_ran_only(loaded: Loaded) -> None:
    for day, raw in loaded.raw.items():
        evaluations = materialize(loaded, day).get_asset_check_evaluations()
        # One evaluation per check and run, on the rows of the run's partition alone.
        assert len(evaluations) == len({(e.asset_key, e.check_name) for e in evaluations})
        reconciled = next(
            e for e in evaluations if e.check_name == "raw_equals_valid_plus_quarantined"
        )
        assert reconciled.metadata["raw_rows"].value == raw.height


def test_partitioned_and_integrity_checks(loaded: Loaded) -> None:
    days = list(loaded.raw)
    for day in days:
        evaluations = materialize(loaded, day).get_asset_check_evaluations()
        by_name = {(e.asset_key, e.check_name): e for e in evaluations}
        volume = by_name[(VALIDATED, "volume_within_trailing_average")]
        # The partitioned check evaluated this partition alone.
        assert (
            volume.metadata["current"].value
            == table(loaded, "staging.validated_events", day).height
        )
        for dim, name in (
            (DIM_USERS, "facts_user_keys_present"),
            (DIM_PRODUCTS, "facts_product_ids_present"),
        ):
            integrity = by_name[(dim, name)]
            assert integrity.passed and integrity.metadata["orphan_rows"].value == 0
        accepted = by_name[(STG_EVENTS, "accepted_values")]
        assert accepted.passed and accepted.metadata["unexpected_event_types"].value == {}
