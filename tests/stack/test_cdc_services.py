"""The postgres and kafka-connect services: started once, reused, configured for capture."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from resources.connect import shop_connector_config
from resources.postgres import cursor
from resources.settings import PlatformSettings
from resources.topics import connect_topics
from stack.config import StackSettings
from stack.manager import Stack


@pytest.mark.integration
def test_a_second_up_reuses_both_and_down_stops_only_its_own(
    connect: PlatformSettings, tmp_path: Path
) -> None:
    names = ["postgres", "kafka-connect"]
    lines: list[str] = []
    assert Stack(StackSettings()).up(names, report=lines.append) == []
    assert any("postgres: already running" in ln or "postgres: reusing" in ln for ln in lines)
    # Another state folder: both answer at their addresses but are not its own.
    other = Stack(StackSettings.model_validate({"stack": {"state_dir": tmp_path}}))
    lines.clear()
    assert other.up(names, report=lines.append) == []
    assert "postgres: reusing the server already answering" in " ".join(lines)
    assert "kafka-connect: reusing the server already answering" in " ".join(lines)
    assert other.down(names) == []
    assert all(s.ok for s in Stack(StackSettings()).status(names))


@pytest.mark.integration
def test_postgres_decodes_logically_and_connect_has_the_debezium_plugin(
    connect: PlatformSettings,
) -> None:
    with cursor(connect.postgres) as cur:
        cur.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('wal_level', 'max_wal_senders', 'max_replication_slots', 'listen_addresses')"
        )
        settings = dict(cur.fetchall())
        cur.execute("SELECT rolreplication FROM pg_roles WHERE rolname = %s",
                    (connect.postgres.replication_user,))  # fmt: skip
        (replication,) = cur.fetchone()
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s",
                    (connect.postgres.publication,))  # fmt: skip
        publication = cur.fetchone()
    assert settings["wal_level"] == "logical"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert int(settings["max_wal_senders"]) >= 4 and int(settings["max_replication_slots"]) >= 4
    assert replication is True and publication is not None
    plugins = httpx.get(f"{connect.connect.url}/connector-plugins", timeout=10).json()
    postgres = [p for p in plugins if p["class"].endswith("PostgresConnector")]
    assert [p["version"] for p in postgres] == ["3.6.1.Final"]
    assert httpx.get(connect.connect.url, timeout=10).json()["version"] == "4.4.0"


@pytest.mark.unit
def test_the_connector_is_the_versioned_file_plus_the_settings() -> None:
    settings = PlatformSettings.model_validate(
        {"postgres": {"port": 5999, "slot": "s1", "tables": ["public.orders"]}}
    )
    config = shop_connector_config(settings)
    assert config["plugin.name"] == "pgoutput"
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["publication.autocreate.mode"] == "disabled"
    assert (config["database.port"], config["slot.name"]) == ("5999", "s1")
    assert config["database.user"] == "tributary_cdc"
    assert config["topic.prefix"] == "tributary.cdc.shop"
    assert config["table.include.list"] == "public.orders"
    assert settings.topics.change_topic("shop", "orders") == "tributary.cdc.shop.public.orders"


@pytest.mark.unit
def test_postgres_secrets_have_defaults_only_in_the_local_profile() -> None:
    assert PlatformSettings().postgres.secret("password") == "tributary-local-postgres"
    base = {"s3": {"access_key_id": "a", "secret_access_key": "b"}}
    stack = PlatformSettings.model_validate({**base, "profile": "stack"})
    with pytest.raises(ValueError, match="TRIBUTARY_POSTGRES__REPLICATION_PASSWORD"):
        stack.postgres.secret("replication_password")
    with pytest.raises(ValueError, match="TRIBUTARY_POSTGRES__PASSWORD"):
        PlatformSettings.model_validate(
            {**base, "profile": "stack", "postgres": {"password": "tributary-local-postgres"}}
        )


@pytest.mark.unit
def test_connects_topics_are_compacted_and_the_config_topic_has_one_partition() -> None:
    settings = PlatformSettings()
    specs = {s.name: s for s in connect_topics(settings.topics, settings.kafka)}
    assert specs["tributary.connect.configs"].partitions == 1
    assert {s.config["cleanup.policy"] for s in specs.values()} == {"compact"}
