from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.failures import FailedEvent, FailureType, OriginalPayload, Stage
from contract.registry import SchemaError, SchemaKey, SchemaRegistry, SchemaVer

pytestmark = pytest.mark.unit

REGISTRY = SchemaRegistry.from_directory()
PURCHASE = "iglu:com.tributary.shop/purchase/jsonschema/1-0-0"


@pytest.mark.parametrize("text", ["1-0", "0-1-0", "1-01-0", "a-b-c", "1-0-0-0", ""])
def test_schemaver_rejects_malformed_versions(text: str) -> None:
    with pytest.raises(SchemaError):
        SchemaVer.parse(text)


def test_schemaver_orders_numerically() -> None:
    assert SchemaVer.parse("1-0-10") > SchemaVer.parse("1-0-9")
    assert SchemaVer.parse("2-0-0") > SchemaVer.parse("1-10-10")


def test_iglu_uri_round_trip() -> None:
    key = SchemaKey.parse(PURCHASE)
    assert (key.vendor, key.name, str(key.version)) == ("com.tributary.shop", "purchase", "1-0-0")
    assert key.uri == PURCHASE


def test_payload_errors_carry_json_pointers() -> None:
    compiled = REGISTRY.lookup(PURCHASE)
    assert compiled is not None
    errors = compiled.errors(
        {
            "order_id": "o",
            "items": [{"product_id": "p", "quantity": 0}],
            "total": -1,
            "currency": "eur",
        },
        prefix="/payload",
    )
    fields = {e.field for e in errors}
    assert fields == {
        "/payload/items/0/unit_price",
        "/payload/items/0/quantity",
        "/payload/total",
        "/payload/currency",
    }


def test_formats_are_enforced() -> None:
    compiled = REGISTRY.lookup("iglu:com.tributary.shop/page_view/jsonschema/1-0-0")
    assert compiled is not None
    assert [e.field for e in compiled.errors({"page_url": "not a uri"})] == ["/page_url"]


def test_latest_version() -> None:
    assert str(REGISTRY.latest("com.tributary.shop", "page_view").version) == "1-0-1"


def test_unknown_uri_is_none() -> None:
    assert REGISTRY.lookup("iglu:com.tributary.shop/page_view/jsonschema/7-0-0") is None


def test_registry_refuses_a_schema_whose_self_disagrees_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "com.x" / "thing" / "jsonschema" / "1-0-0.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "self": {
                    "vendor": "com.x",
                    "name": "other",
                    "format": "jsonschema",
                    "version": "1-0-0",
                }
            }
        )
    )
    with pytest.raises(SchemaError, match="path says"):
        SchemaRegistry.from_directory(tmp_path)


@pytest.mark.parametrize("raw", [b'{"a": 1}', b"\xff\xfe not json", b"plain text"])
def test_original_payload_round_trips_bytes(raw: bytes) -> None:
    original = OriginalPayload.from_bytes(raw)
    assert original.encoding == ("json" if raw.startswith(b"{") else "base64")
    if original.encoding == "base64":
        assert original.to_bytes() == raw
    else:
        assert json.loads(original.to_bytes()) == json.loads(raw)


def test_failed_event_serialises_with_its_type_and_stage() -> None:
    failed = FailedEvent(
        failure_type=FailureType.SCHEMA_VIOLATION,
        stage=Stage.ENRICHER,
        errors=[{"field": "/payload/total", "reason": "-1 is less than the minimum of 0"}],
        original=OriginalPayload.from_bytes(b'{"total": -1}'),
    )
    data = json.loads(failed.model_dump_json())
    assert data["failure_type"] == "schema_violation"
    assert data["stage"] == "enricher"
    assert data["failure_schema"].startswith("iglu:com.tributary.failures/")
    assert FailedEvent.model_validate_json(failed.model_dump_json()) == failed
