"""Pseudonyms: the HMAC, the pointers into payloads, the settings that choose them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from cli.processes import settings_env
from contract.failures import ErrorDetail, FailedEvent, FailureType, OriginalPayload, Stage
from contract.registry import SchemaRegistry
from privacy.pseudonyms import (
    LONGEST,
    FieldsRefused,
    Pseudonymiser,
    check_fields,
    key_version_of,
    parse_pointer,
    pseudonym,
    pseudonyms_of,
    schema_problems,
    text_of,
)
from resources.settings import (
    LOCAL_PSEUDONYM_KEY,
    PlatformSettings,
    Profile,
    PseudonymSettings,
)
from streaming.enricher import Enricher, EnricherSettings

pytestmark = pytest.mark.unit

KEY = "a-test-key-of-some-length"
PURCHASE = "iglu:com.tributary.shop/purchase/jsonschema/1-0-0"
PAGE_VIEW_101 = "iglu:com.tributary.shop/page_view/jsonschema/1-0-1"
PAGE_VIEW_100 = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"


def expected(value: str, key: str = KEY, version: str = "1") -> str:
    return f"ps:{version}:" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def settings(**changes: Any) -> PseudonymSettings:
    return PseudonymSettings(enabled=True, key=SecretStr(KEY), **changes)


def pseudonymiser(**changes: Any) -> Pseudonymiser:
    made = Pseudonymiser.from_settings(settings(**changes))
    assert made is not None
    return made


def test_pseudonym_is_the_keyed_hmac_with_its_version() -> None:
    assert pseudonym(KEY, "1", "u-1") == expected("u-1")
    assert pseudonym(KEY, "7", "u-1") == expected("u-1", version="7")
    assert pseudonym(KEY, "1", "u-1") != pseudonym("another-key-long-enough", "1", "u-1")
    assert pseudonym(KEY, "1", "u-1") != pseudonym(KEY, "1", "u-2")
    assert key_version_of(expected("x", version="2026a")) == "2026a"
    assert key_version_of("ps:1:abc") is None
    assert key_version_of(42) is None


def test_pseudonyms_of_tries_every_key_version_current_first() -> None:
    s = settings(key_version="3", retired_keys={"2": SecretStr("the-retired-key-2")})
    assert pseudonyms_of(s, "u-1") == {
        "3": expected("u-1", version="3"),
        "2": expected("u-1", key="the-retired-key-2", version="2"),
    }
    assert list(pseudonyms_of(s, "u-1")) == ["3", "2"]


def test_what_is_hashed_for_non_strings() -> None:
    assert text_of("é") == "é"
    assert text_of(42) == "42"
    assert text_of(True) == "true"
    assert text_of({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert text_of(None) is None
    p = pseudonymiser()
    assert p.value(42) == p.value("42") == expected("42")
    assert p.value(None) is None


def record(event_type: str = PURCHASE, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "event_type": event_type,
        "payload": payload,
        "context": {"user_id": "u-1", "session_id": "s-1", "client_ip": "8.8.8.8"},
        "collector": {"client_ip": "203.0.113.9", "user_agent": "ua"},
    }


def test_record_replaces_ip_context_and_declared_payload_fields() -> None:
    p = pseudonymiser(payload_fields={"com.tributary.shop/purchase": ["/customer/email"]})
    r = record(customer={"email": "ann@example.com", "name": "Ann"}, order_id="o-1")
    replaced = p.record(r)
    assert {where for where, _, _ in replaced} == {
        "/collector/client_ip",
        "/context/client_ip",
        "/context/user_id",
        "/payload/customer/email",
    }
    assert r["collector"]["client_ip"] == expected("203.0.113.9")
    assert r["context"] == {
        "user_id": expected("u-1"),
        "session_id": "s-1",
        "client_ip": expected("8.8.8.8"),
    }
    assert r["payload"] == {
        "customer": {"email": expected("ann@example.com"), "name": "Ann"},
        "order_id": "o-1",
    }
    assert r["collector"]["user_agent"] == "ua"


def test_record_twice_changes_nothing_more() -> None:
    """A pseudonym under a known key is kept: a replayed dead letter is not hashed again."""
    p = pseudonymiser(payload_fields={"com.tributary.shop/purchase": ["/email"]})
    r = record(email="ann@example.com")
    p.record(r)
    once = {**r, "context": dict(r["context"]), "payload": dict(r["payload"])}
    assert p.record(r) == []
    assert r == once


def test_retired_version_is_recognised_and_unknown_version_is_hashed() -> None:
    old = expected("u-1", key="the-retired-key-2", version="2")
    p = pseudonymiser(retired_keys={"2": SecretStr("the-retired-key-2")})
    assert p.value(old) == old
    stranger = expected("u-1", key="nobody-knows-this-key", version="9")
    assert p.value(stranger) == expected(stranger)


def test_ip_off_and_other_context_fields() -> None:
    p = pseudonymiser(client_ip=False, context_fields=["user_id", "device_id"])
    r = record()
    r["context"]["device_id"] = "d-1"
    p.record(r)
    assert r["collector"]["client_ip"] == "203.0.113.9"
    assert r["context"]["client_ip"] == "8.8.8.8"
    assert r["context"]["device_id"] == expected("d-1")
    assert r["context"]["session_id"] == "s-1"


@pytest.mark.parametrize(
    ("pointer", "payload", "after"),
    [
        # a missing field, a missing parent, a scalar on the way: nothing changes
        ("/email", {"name": "x"}, {"name": "x"}),
        ("/customer/email", {"customer": None}, {"customer": None}),
        ("/customer/email", {"customer": "ann"}, {"customer": "ann"}),
        # null names nobody
        ("/email", {"email": None}, {"email": None}),
        # non-strings: their JSON text is hashed, the value becomes a string
        ("/id", {"id": 42}, {"id": expected("42")}),
        ("/flag", {"flag": False}, {"flag": expected("false")}),
        ("/who", {"who": {"b": 2, "a": 1}}, {"who": expected('{"a":1,"b":2}')}),
        ("/who", {"who": ["x", 1]}, {"who": expected('["x",1]')}),
        # arrays: an index, an index past the end, "-", a leading zero, every item
        ("/emails/1", {"emails": ["a", "b"]}, {"emails": ["a", expected("b")]}),
        ("/emails/2", {"emails": ["a", "b"]}, {"emails": ["a", "b"]}),
        ("/emails/-", {"emails": ["a"]}, {"emails": ["a"]}),
        ("/emails/01", {"emails": ["a", "b"]}, {"emails": ["a", "b"]}),
        ("/emails/*", {"emails": ["a", None]}, {"emails": [expected("a"), None]}),
        (
            "/items/*/email",
            {"items": [{"email": "a"}, {"sku": 1}, "loose"]},
            {"items": [{"email": expected("a")}, {"sku": 1}, "loose"]},
        ),
        ("/by/*", {"by": {"x": "a", "y": 2}}, {"by": {"x": expected("a"), "y": expected("2")}}),
        # escaped tokens
        ("/a~1b/c~0d", {"a/b": {"c~d": "v"}}, {"a/b": {"c~d": expected("v")}}),
    ],
)
def test_payload_pointers(pointer: str, payload: dict[str, Any], after: dict[str, Any]) -> None:
    p = pseudonymiser(payload_fields={"com.tributary.shop/purchase": [pointer]})
    r = record(**payload)
    p.record(r)
    assert r["payload"] == after


def test_payload_that_is_not_an_object_is_left_alone() -> None:
    p = pseudonymiser(payload_fields={"com.tributary.shop/purchase": ["/email"]})
    r = record()
    r["payload"] = ["email"]
    r["context"] = "not an object"
    p.record(r)
    assert r["payload"] == ["email"]
    assert r["context"] == "not an object"
    assert r["collector"]["client_ip"] == expected("203.0.113.9")


def test_selectors_every_version_or_one() -> None:
    p = pseudonymiser(
        payload_fields={
            "com.tributary.shop/page_view": ["/page_title"],
            "iglu:com.tributary.shop/page_view/jsonschema/1-0-1": ["/referrer_url"],
        }
    )
    newer = record(PAGE_VIEW_101, page_title="t", referrer_url="https://r.example/")
    older = record(PAGE_VIEW_100, page_title="t", referrer_url="https://r.example/")
    p.record(newer)
    p.record(older)
    assert newer["payload"] == {
        "page_title": expected("t"),
        "referrer_url": expected("https://r.example/"),
    }
    assert older["payload"] == {"page_title": expected("t"), "referrer_url": "https://r.example/"}
    other = record(PURCHASE, page_title="t")
    p.record(other)
    assert other["payload"] == {"page_title": "t"}
    unknown = record("not an iglu uri", page_title="t")
    p.record(unknown)
    assert unknown["payload"] == {"page_title": "t"}


def test_kafka_key() -> None:
    p = pseudonymiser()
    assert p.kafka_key(b"user_id:u-1") == b"user_id:" + expected("u-1").encode()
    assert p.kafka_key(p.kafka_key(b"user_id:u-1")) == p.kafka_key(b"user_id:u-1")
    assert p.kafka_key(b"session_id:s-1") == b"session_id:s-1"
    assert p.kafka_key(b"event_id:e-1") == b"event_id:e-1"
    assert p.kafka_key(b"no-colon") == b"no-colon"
    assert p.kafka_key(None) is None


def failed(original: OriginalPayload, **metadata: Any) -> FailedEvent:
    return FailedEvent(
        failure_type=FailureType.SCHEMA_VIOLATION,
        stage=Stage.ENRICHER,
        errors=[ErrorDetail(field="/payload/email", reason='"ann@example.com" is too long')],
        original=original,
        metadata=metadata,
    )


def test_dead_letter_original_metadata_and_reasons() -> None:
    p = pseudonymiser(payload_fields={"com.tributary.shop/purchase": ["/email"]})
    source = record(email="ann@example.com")
    before = failed(OriginalPayload(encoding="json", data=source), client_ip="203.0.113.9")
    after = p.failed_event(before)
    text = after.model_dump_json()
    for original in ("ann@example.com", "203.0.113.9", "8.8.8.8", '"u-1"'):
        assert original not in text
    assert after.original.data["payload"]["email"] == expected("ann@example.com")
    assert after.metadata == {"client_ip": expected("203.0.113.9"), "pseudonym_key_version": "1"}
    assert after.errors[0].reason == f'"{expected("ann@example.com")}" is too long'
    assert source["payload"]["email"] == "ann@example.com", "the input is not changed"


@pytest.mark.parametrize(
    "original",
    [
        OriginalPayload(encoding="base64", data="dXNlcl9pZDp1LTE="),
        OriginalPayload(encoding="json", data=["u-1"]),
        OriginalPayload(encoding="json", data="u-1"),
    ],
)
def test_dead_letter_original_that_cannot_be_searched_is_withheld(
    original: OriginalPayload,
) -> None:
    after = pseudonymiser().failed_event(failed(original))
    assert after.original.data is None
    assert "original_withheld" in after.metadata
    assert "u-1" not in after.model_dump_json()


def test_off_means_no_pseudonymiser() -> None:
    assert Pseudonymiser.from_settings(PseudonymSettings()) is None


# -- settings ---------------------------------------------------------------------------


def test_local_profile_gets_a_local_key() -> None:
    s = PlatformSettings(privacy={"pseudonyms": {"enabled": True}})
    key = s.privacy.pseudonyms.key
    assert key is not None and key.get_secret_value() == LOCAL_PSEUDONYM_KEY
    assert PlatformSettings().privacy.pseudonyms.key is None, "no key while pseudonyms are off"


def stack(**pseudonyms: Any) -> PlatformSettings:
    return PlatformSettings(
        profile=Profile.STACK,
        s3={"access_key_id": "someone", "secret_access_key": "something-else"},
        privacy={"pseudonyms": pseudonyms},
    )


def test_stack_profile_without_key_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="TRIBUTARY_PRIVACY__PSEUDONYMS__KEY"):
        stack(enabled=True)
    with pytest.raises(ValidationError, match="TRIBUTARY_PRIVACY__PSEUDONYMS__KEY"):
        stack(enabled=True, key=LOCAL_PSEUDONYM_KEY)
    assert stack(enabled=False).privacy.pseudonyms.key is None
    assert stack(enabled=True, key=KEY).privacy.pseudonyms.keys() == {"1": KEY}


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_PRIVACY__PSEUDONYMS__ENABLED", "true")
    monkeypatch.setenv("TRIBUTARY_PRIVACY__PSEUDONYMS__KEY", KEY)
    monkeypatch.setenv("TRIBUTARY_PRIVACY__PSEUDONYMS__KEY_VERSION", "2")
    monkeypatch.setenv("TRIBUTARY_PRIVACY__PSEUDONYMS__RETIRED_KEYS", '{"1": "the-retired-key-1"}')
    monkeypatch.setenv(
        "TRIBUTARY_PRIVACY__PSEUDONYMS__PAYLOAD_FIELDS",
        '{"iglu:com.tributary.shop/purchase/jsonschema/1-0-0": ["/email"]}',
    )
    s = PlatformSettings().privacy.pseudonyms
    assert s.keys() == {"2": KEY, "1": "the-retired-key-1"}
    assert s.payload_fields == {"com.tributary.shop/purchase/1-0-0": ["/email"]}


@pytest.mark.parametrize(
    "changes",
    [
        {"key": "short"},
        {"key_version": "V1"},
        {"key_version": ""},
        {"retired_keys": {"1": KEY}},
        {"retired_keys": {"x y": KEY}},
        {"retired_keys": {"2": "short"}},
        {"payload_fields": {"purchase": ["/email"]}},
        {"payload_fields": {"com.tributary.shop/purchase/1.0.0": ["/email"]}},
        {"payload_fields": {"com.tributary.shop/purchase": ["email"]}},
        {"payload_fields": {"com.tributary.shop/purchase": ["/"]}},
        {"payload_fields": {"com.tributary.shop/purchase": ["/a~2"]}},
    ],
)
def test_settings_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PseudonymSettings(**{"enabled": True, "key": KEY, **changes})


def test_parse_pointer() -> None:
    assert parse_pointer("/a~1b/~0c/0") == ("a/b", "~c", "0")
    assert parse_pointer("/") == ("",)
    with pytest.raises(ValueError, match="not a JSON Pointer"):
        parse_pointer("a")


# -- declared fields against the schemas ------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.from_directory()


def test_fields_that_can_hold_a_pseudonym(registry: SchemaRegistry) -> None:
    s = settings(
        payload_fields={
            "com.tributary.app/log_record": ["/message"],
            "com.tributary.shop/page_view/1-0-0": ["/page_title", "/referrer_url"],
            "com.tributary.shop/product_view": ["/product_name"],
        }
    )
    assert schema_problems(s, registry) == []
    check_fields(s, registry)


def test_a_field_of_some_versions_only_is_fine(registry: SchemaRegistry) -> None:
    # referrer_medium exists in page_view 1-0-1 only; an enum, though: refused there.
    s = settings(payload_fields={"com.tributary.shop/page_view": ["/referrer_medium"]})
    assert schema_problems(s, registry) == [
        f"{PAGE_VIEW_101} /referrer_medium cannot hold a pseudonym: its schema has enum"
    ]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"com.tributary.shop/refund": ["/email"]}, "no such event type"),
        ({"com.tributary.shop/purchase/9-0-0": ["/email"]}, "no such event type"),
        ({"com.tributary.shop/purchase": ["/email"]}, "no such field in 1-0-0"),
        ({"com.tributary.shop/page_view/1-0-0": ["/referrer_medium"]}, "no such field in 1-0-0"),
        ({"com.tributary.shop/purchase": ["/order_id"]}, "its maxLength 64 is below 84"),
        ({"com.tributary.shop/purchase": ["/total"]}, "its type is number"),
        ({"com.tributary.shop/purchase": ["/items/*/quantity"]}, "its type is integer"),
        ({"com.tributary.shop/purchase": ["/items/0/product_id"]}, "maxLength 64"),
        ({"com.tributary.shop/purchase": ["/currency"]}, "its schema has pattern"),
        ({"com.tributary.shop/page_view": ["/page_url"]}, "its schema has format"),
        ({"com.tributary.shop/purchase": ["/order_id/x"]}, "no such field"),
    ],
)
def test_fields_refused(
    registry: SchemaRegistry, fields: dict[str, list[str]], problem: str
) -> None:
    s = settings(payload_fields=fields)
    problems = schema_problems(s, registry)
    assert problems and all(problem in p for p in problems), problems
    with pytest.raises(FieldsRefused, match="TRIBUTARY_PRIVACY__PSEUDONYMS__PAYLOAD_FIELDS"):
        check_fields(s, registry)


def test_longest_pseudonym() -> None:
    assert len(pseudonym(KEY, "v" * 16, "x")) == LONGEST == 84


def test_the_enricher_refuses_to_start_with_a_field_that_cannot_hold_a_pseudonym() -> None:
    bad = {"enabled": True, "payload_fields": {"com.tributary.shop/purchase": ["/order_id"]}}
    with pytest.raises(FieldsRefused, match="/order_id cannot hold a pseudonym"):
        Enricher(EnricherSettings(privacy={"pseudonyms": bad}), threading.Event())


def test_child_processes_get_the_keys_in_plain_text() -> None:
    """``cli.processes`` passes settings to its children as variables; JSON masks secrets."""
    s = EnricherSettings(privacy={"pseudonyms": settings(retired_keys={"0": "the-retired-key-0"})})
    env = settings_env(s)
    assert env["TRIBUTARY_PRIVACY__PSEUDONYMS__KEY"] == KEY
    assert json.loads(env["TRIBUTARY_PRIVACY__PSEUDONYMS__RETIRED_KEYS"]) == {
        "0": "the-retired-key-0"
    }
