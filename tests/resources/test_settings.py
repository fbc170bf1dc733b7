from __future__ import annotations

import pytest
from pydantic import ValidationError

from resources.settings import PlatformSettings, Profile

pytestmark = pytest.mark.unit


def test_defaults_work_out_of_the_box(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("TRIBUTARY_"):
            monkeypatch.delenv(name)
    settings = PlatformSettings()
    assert settings.profile is Profile.LOCAL
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.client_config()["bootstrap.servers"] == "127.0.0.1:9092"


def test_nested_settings_come_from_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("TRIBUTARY_TOPICS__RAW", "acme.raw")
    monkeypatch.setenv("TRIBUTARY_KAFKA__PARTITIONS", "12")
    settings = PlatformSettings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.topics.raw == "acme.raw"
    assert settings.kafka.partitions == 12


def test_stack_profile_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_PROFILE", "stack")
    monkeypatch.delenv("TRIBUTARY_S3__ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("TRIBUTARY_S3__SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(ValidationError, match="TRIBUTARY_S3__SECRET_ACCESS_KEY"):
        PlatformSettings()
    monkeypatch.setenv("TRIBUTARY_S3__ACCESS_KEY_ID", "team")
    monkeypatch.setenv("TRIBUTARY_S3__SECRET_ACCESS_KEY", "a-real-secret")
    settings = PlatformSettings()
    assert settings.profile is Profile.STACK
    assert "a-real-secret" not in repr(settings), "secrets must not leak into reprs and logs"


def test_sasl_settings_reach_the_client_config() -> None:
    settings = PlatformSettings.model_validate(
        {
            "kafka": {
                "bootstrap_servers": "b:9092",
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "u",
                "sasl_password": "p",
            }
        }
    )
    config = settings.kafka.client_config()
    assert config["sasl.password"] == "p"
    assert config["security.protocol"] == "SASL_SSL"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_KAFKA__PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        PlatformSettings()
