"""The curated lake's Iceberg catalog in both profiles: SQLite locally, SeaweedFS's REST one."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from resources.lake import make_catalog
from resources.settings import PlatformSettings, Profile


def round_trip(settings: PlatformSettings) -> None:
    catalog = make_catalog(settings)
    namespace = f"test_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    rows = pa.table({"day": ["2026-11-27", "2026-11-27", "2026-11-28"], "n": [1, 2, 3]})
    table = catalog.create_table(f"{namespace}.t", schema=rows.schema)
    try:
        table.append(rows)
        # Replacing one day's rows leaves the others: what a partition re-run relies on.
        table.overwrite(
            pa.table({"day": ["2026-11-27"], "n": [9]}),
            overwrite_filter="day = '2026-11-27'",
        )
        again = make_catalog(settings).load_table(f"{namespace}.t").scan().to_arrow()
        assert sorted(zip(again["day"].to_pylist(), again["n"].to_pylist(), strict=True)) == [
            ("2026-11-27", 9),
            ("2026-11-28", 3),
        ]
    finally:
        catalog.drop_table(f"{namespace}.t")
        catalog.drop_namespace(namespace)


@pytest.mark.unit
def test_local_catalog_in_sqlite(tmp_path: Path) -> None:
    settings = PlatformSettings.model_validate(
        {"profile": Profile.LOCAL, "lake": {"local_root": tmp_path / "lake"}}
    )
    round_trip(settings)
    assert (tmp_path / "lake" / "catalog.db").exists()


@pytest.mark.integration
def test_rest_catalog_on_seaweedfs(s3: PlatformSettings) -> None:
    round_trip(s3.model_copy(update={"profile": Profile.STACK}))
