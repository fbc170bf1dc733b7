"""SeaweedFS through the S3 API: round trip, and SigV4 credentials enforced."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from resources.s3 import make_s3_client
from resources.settings import PlatformSettings

pytestmark = pytest.mark.integration


def test_put_and_get_round_trip(s3: PlatformSettings) -> None:
    client = make_s3_client(s3.s3)
    key = f"tests/{uuid.uuid4()}.bin"
    body = uuid.uuid4().bytes * 1000
    client.put_object(Bucket=s3.s3.raw_bucket, Key=key, Body=body)
    assert client.get_object(Bucket=s3.s3.raw_bucket, Key=key)["Body"].read() == body
    listed = client.list_objects_v2(Bucket=s3.s3.raw_bucket, Prefix=key)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    client.delete_object(Bucket=s3.s3.raw_bucket, Key=key)


def test_platform_buckets_exist(s3: PlatformSettings) -> None:
    client = make_s3_client(s3.s3)
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert {s3.s3.raw_bucket, s3.s3.warehouse_bucket} <= names


def test_wrong_secret_is_refused(s3: PlatformSettings) -> None:
    wrong = s3.s3.model_copy(update={"secret_access_key": SecretStr("not-the-secret")})
    client = make_s3_client(wrong)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3.s3.raw_bucket, Key="tests/forbidden", Body=b"x")
    assert info.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    with pytest.raises(ClientError):
        client.list_buckets()


def test_anonymous_requests_are_refused(s3: PlatformSettings) -> None:
    import httpx

    resp = httpx.get(f"{s3.s3.endpoint_url}/{s3.s3.raw_bucket}?list-type=2")
    assert resp.status_code == 403
