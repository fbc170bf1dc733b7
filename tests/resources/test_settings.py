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


def test_superset_secrets_have_defaults_only_in_the_local_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ADMIN_PASSWORD", "SECRET_KEY"):
        monkeypatch.delenv(f"TRIBUTARY_SUPERSET__{name}", raising=False)
    local = PlatformSettings()
    assert local.superset.secret("admin_password") and local.superset.secret("secret_key")

    monkeypatch.setenv("TRIBUTARY_PROFILE", "stack")
    monkeypatch.setenv("TRIBUTARY_S3__ACCESS_KEY_ID", "team")
    monkeypatch.setenv("TRIBUTARY_S3__SECRET_ACCESS_KEY", "a-real-secret")
    # Processes that never talk to Superset start without its secrets ...
    stack = PlatformSettings()
    # ... and those that do are told which variable to set.
    with pytest.raises(ValueError, match="TRIBUTARY_SUPERSET__ADMIN_PASSWORD is not set"):
        stack.superset.secret("admin_password")
    with pytest.raises(ValueError, match="TRIBUTARY_SUPERSET__SECRET_KEY is not set"):
        stack.superset.secret("secret_key")

    # The local defaults, copied into another profile, are refused.
    monkeypatch.setenv(
        "TRIBUTARY_SUPERSET__ADMIN_PASSWORD", local.superset.secret("admin_password")
    )
    monkeypatch.setenv("TRIBUTARY_SUPERSET__SECRET_KEY", local.superset.secret("secret_key"))
    with pytest.raises(ValidationError, match="TRIBUTARY_SUPERSET__ADMIN_PASSWORD") as refused:
        PlatformSettings()
    assert "TRIBUTARY_SUPERSET__SECRET_KEY" in str(refused.value)

    monkeypatch.setenv("TRIBUTARY_SUPERSET__ADMIN_PASSWORD", "a-real-password")
    monkeypatch.setenv("TRIBUTARY_SUPERSET__SECRET_KEY", "a-real-key")
    assert PlatformSettings().superset.secret("admin_password") == "a-real-password"


def test_retention_of_the_topics_that_hold_personal_data_comes_from_the_settings() -> None:
    from resources.topics import platform_topics

    settings = PlatformSettings(
        kafka={"events_retention_days": 2, "dead_letter_retention_days": 0.5}
    )
    retention = {
        s.name: int(s.config["retention.ms"])
        for s in platform_topics(settings.topics, settings.kafka)
    }
    day = 24 * 3600 * 1000
    t = settings.topics
    assert retention == {
        t.raw: 2 * day,
        t.enriched: 2 * day,
        t.collector_dlq: day // 2,
        t.enriched_dlq: day // 2,
        t.loader_dlq: day // 2,
    }
    with pytest.raises(ValidationError, match="events_retention_days"):
        PlatformSettings(kafka={"events_retention_days": 0})
