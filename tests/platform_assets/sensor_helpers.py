"""In-memory stand-ins for the sensors' resources, for unit tests of the sensors' logic.

Each answers only the calls its sensor makes, with the semantics the sensor relies on: a
listing sorted by key that starts after ``StartAfter`` (S3), a count per index pattern
(the search store). The sensors against the real servers are ``test_raw_zone_sensor.py`` and
``test_alert_sensor.py``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dagster as dg
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource

from platform_assets.partitions import daily
from platform_assets.sensors.raw_zone import raw_zone_sensor
from resources.settings import S3Settings


class FakeS3Client:
    """One bucket's objects; ``list_objects_v2`` pages of ``page_size`` keys, in key order."""

    def __init__(self, bucket: str, page_size: int = 1000) -> None:
        self.bucket = bucket
        self.page_size = page_size
        self.objects: dict[str, bytes] = {}
        self.listings: list[dict[str, Any]] = []
        self.refuse = False

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def get_paginator(self, operation: str) -> FakeS3Client:
        assert operation == "list_objects_v2"
        return self

    def paginate(
        self, Bucket: str, Prefix: str = "", StartAfter: str = ""
    ) -> Iterator[dict[str, Any]]:
        self.listings.append({"Bucket": Bucket, "Prefix": Prefix, "StartAfter": StartAfter})
        if self.refuse:
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectsV2")
        assert Bucket == self.bucket
        keys = sorted(k for k in self.objects if k.startswith(Prefix) and k > StartAfter)
        for start in range(0, len(keys), self.page_size):
            page = keys[start : start + self.page_size]
            yield {"Contents": [{"Key": k, "Size": len(self.objects[k])} for k in page]}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        assert Bucket == self.bucket
        return {"Body": io.BytesIO(self.objects[Key])}


class FakeS3Resource:
    """Stands in for ``dagster_aws.s3.S3Resource``: ``get_client()``, as the sensor calls it.

    A plain object: Dagster passes it to the sensor as it is (a ``ConfigurableResource``
    subclass would be rebuilt from its configuration, without the fake client).
    """

    def __init__(self, client: FakeS3Client) -> None:
        self.client = client

    def get_client(self) -> FakeS3Client:
        return self.client


class FakeSearchStore:
    """Document counts by index pattern; keeps each count request's index and query."""

    def __init__(self, counts: dict[str, int], index_prefix: str = "") -> None:
        self.counts = counts
        self.index_prefix = index_prefix
        self.requests: list[dict[str, Any]] = []

    def count(self, pattern: str, query: dict[str, Any] | None = None) -> int:
        self.requests.append({"index": pattern, "query": query})
        return self.counts.get(pattern, 0)

    def since(self) -> datetime:
        """The start of the window the last count asked for."""
        return datetime.fromisoformat(
            self.requests[-1]["query"]["range"]["loader.indexed_at"]["gte"]
        )

    def __enter__(self) -> FakeSearchStore:
        return self

    def __exit__(self, *_: object) -> None:
        pass


class FakeSearchResource:
    """Stands in for ``SearchResource``: ``get_store()``, a store with the index prefix."""

    def __init__(self, store: FakeSearchStore, index_prefix: str) -> None:
        store.index_prefix = index_prefix
        self.store = store

    def get_store(self) -> FakeSearchStore:
        return self.store


@dg.asset(partitions_def=daily, key=["lake", "sensor_target"])
def target() -> None:
    """Stands in for the curated chain: the raw-zone sensor only needs a partitioned target."""


def evaluate_raw_zone_sensor(s3: S3Settings, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    """One tick of the raw-zone sensor over ``s3`` through the real S3 resource."""
    sensor = raw_zone_sensor(s3, dg.AssetSelection.assets(target))
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "s3": S3Resource(
                endpoint_url=s3.endpoint_url,
                region_name=s3.region,
                aws_access_key_id=s3.access_key_id,
                aws_secret_access_key=s3.secret_access_key.get_secret_value(),
            )
        },
        definitions=dg.Definitions(assets=[target], sensors=[sensor]),
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result
