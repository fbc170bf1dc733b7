"""Pure logic of the collector: keys, client addresses, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ingestion.api.deps import client_ip
from ingestion.core.auth import KeyStore, bearer_token, hash_key, new_key
from ingestion.core.config import ApiKey, CollectorSettings

pytestmark = pytest.mark.unit


def test_keys_are_matched_by_hash_and_scopes_are_kept() -> None:
    key, digest = new_key()
    store = KeyStore(
        [
            ApiKey(producer="web", sha256=digest),
            ApiKey(producer="ro", sha256=hash_key("other"), scopes=["events:read"]),
        ]
    )
    principal = store.authenticate(key)
    assert principal is not None and principal.producer == "web" and principal.can_write
    reader = store.authenticate("other")
    assert reader is not None and not reader.can_write
    assert store.authenticate(key + "x") is None
    assert store.authenticate("") is None
    assert store.authenticate(None) is None
    assert digest == hash_key(key) and key not in digest


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def settings(*proxies: str) -> CollectorSettings:
    return CollectorSettings.model_validate({"collector": {"trusted_proxies": list(proxies)}})


@pytest.mark.parametrize(
    ("peer", "xff", "proxies", "expected"),
    [
        ("198.51.100.1", None, ["10.0.0.0/8"], "198.51.100.1"),
        ("198.51.100.1", "203.0.113.9", [], "198.51.100.1"),
        # An untrusted peer cannot choose the client address it is logged under.
        ("198.51.100.1", "203.0.113.9", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.5", "203.0.113.9", ["10.0.0.0/8"], "203.0.113.9"),
        # Walk from the nearest hop: a spoofed left-most entry is ignored.
        ("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.0.0.7", ["10.0.0.0/8"], "203.0.113.9"),
        # Every hop is a trusted proxy: the peer is the best we know.
        ("10.0.0.5", "10.0.0.9", ["10.0.0.0/8"], "10.0.0.5"),
        ("10.0.0.5", "garbage", ["10.0.0.0/8"], "10.0.0.5"),
        ("::1", "2001:db8::1", ["::1/128"], "2001:db8::1"),
    ],
)
def test_client_ip(peer: str, xff: str | None, proxies: list[str], expected: str) -> None:
    assert client_ip(peer, xff, settings(*proxies)) == expected


def test_auth_can_be_disabled_only_in_the_local_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_COLLECTOR__AUTH_DISABLED", "true")
    assert CollectorSettings().collector.auth_disabled
    monkeypatch.setenv("TRIBUTARY_PROFILE", "stack")
    monkeypatch.setenv("TRIBUTARY_S3__ACCESS_KEY_ID", "team")
    monkeypatch.setenv("TRIBUTARY_S3__SECRET_ACCESS_KEY", "a-real-secret")
    with pytest.raises(ValidationError, match="only with TRIBUTARY_PROFILE=local"):
        CollectorSettings()


def test_api_keys_come_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TRIBUTARY_COLLECTOR__API_KEYS", f'[{{"producer": "web", "sha256": "{hash_key("k")}"}}]'
    )
    keys = CollectorSettings().collector.api_keys
    assert [(k.producer, k.scopes) for k in keys] == [("web", ["events:write"])]
    monkeypatch.setenv("TRIBUTARY_COLLECTOR__API_KEYS", '[{"producer": "web", "sha256": "plain"}]')
    with pytest.raises(ValidationError):
        CollectorSettings()
