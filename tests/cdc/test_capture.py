"""Change capture on real servers: PostgreSQL -> Debezium on Kafka Connect -> a change topic.

One connector for the module, on a throwaway table, with its own name, slot, publication and
topic prefix (the shared servers serve other tests meanwhile); all are removed at the end.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError

from resources.connect import (
    SOURCE_IDENTITY,
    ConnectClient,
    apply_connector,
    shop_connector_config,
)
from resources.kafka import make_kafka_admin, make_kafka_consumer
from resources.postgres import cursor, drop_slot, ensure_cdc
from resources.settings import PlatformSettings


@dataclass
class Capture:
    settings: PlatformSettings
    table: str
    topic: str
    config: dict[str, str]
    outcome: str


def _wait_for_slot(settings: PlatformSettings, active: bool, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with cursor(settings.postgres) as cur:
            cur.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                (settings.postgres.slot,),
            )
            row = cur.fetchone()
        if row is not None and row[0] is active:
            return
        time.sleep(0.3)
    raise AssertionError(f"slot {settings.postgres.slot} not active={active} in {timeout_s}s")


@pytest.fixture(scope="module")
def capture(connect: PlatformSettings) -> Iterator[Capture]:
    tag = uuid.uuid4().hex[:10]
    # A schema of its own: out of the shop connector's sight (it captures schema public).
    schema, table = f"test_{tag}", "probe"
    settings = connect.model_copy(
        update={
            "postgres": connect.postgres.model_copy(
                update={
                    "slot": f"test_{tag}",
                    "publication": f"test_{tag}",
                    "tables": [f"{schema}.{table}"],
                }
            ),
            "topics": connect.topics.model_copy(update={"cdc_prefix": f"test.cdc.{tag}"}),
            "connect": connect.connect.model_copy(update={"connector": f"test-{tag}"}),
        }
    )
    ensure_cdc(settings.postgres)
    with cursor(settings.postgres) as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
        cur.execute(
            f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, name text, price numeric(10,2))"
        )
        # Before images of every column on UPDATE and DELETE (not only the key).
        cur.execute(f"ALTER TABLE {schema}.{table} REPLICA IDENTITY FULL")
    name, config = settings.connect.connector, shop_connector_config(settings)
    topic = settings.topics.change_topic(settings.postgres.database, table, schema)
    try:
        outcome, _ = apply_connector(settings.connect.url, name, config)
        _wait_for_slot(settings, active=True)
        yield Capture(settings, f"{schema}.{table}", topic, config, outcome)
    finally:
        with ConnectClient(settings.connect.url) as client:
            client.delete(name)
        _wait_for_slot(settings, active=False)
        drop_slot(settings.postgres, settings.postgres.slot)
        with cursor(settings.postgres) as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            cur.execute(f'DROP PUBLICATION IF EXISTS "{settings.postgres.publication}"')
        admin = make_kafka_admin(settings.kafka)
        topics = [
            t for t in admin.list_topics(timeout=10).topics if t.startswith(f"test.cdc.{tag}")
        ]
        if topics:
            for future in admin.delete_topics(topics).values():
                future.result()


@pytest.mark.integration
def test_provisioning_twice_leaves_one_connector_with_the_same_config(capture: Capture) -> None:
    url, name = capture.settings.connect.url, capture.settings.connect.connector
    assert capture.outcome == "created"
    outcome, state = apply_connector(url, name, shop_connector_config(capture.settings))
    assert outcome == "unchanged" and state.running
    with ConnectClient(url) as client:
        assert client.connectors().count(name) == 1
        assert client.config(name) == capture.config


def _changes(settings: PlatformSettings, topic: str, count: int) -> list[dict[str, Any] | None]:
    """The first ``count`` change events of ``topic``, with the tombstones among them (None)."""
    consumer = make_kafka_consumer(
        settings.kafka, f"test-{uuid.uuid4().hex[:8]}", **{"auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out: list[dict[str, Any] | None] = []
    deadline = time.monotonic() + 90
    try:
        while sum(v is not None for v in out) < count and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                # The topic appears with the first change (Connect creates it).
                assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, error
                continue
            value = msg.value()
            out.append(None if value is None else json.loads(value))
    finally:
        consumer.close()
    return out


@pytest.mark.integration
def test_insert_update_delete_arrive_in_order_with_lsn_and_images(capture: Capture) -> None:
    with cursor(capture.settings.postgres) as cur:
        cur.execute(f"INSERT INTO {capture.table} VALUES (1, 'mug', 9.50)")
        cur.execute(f"UPDATE {capture.table} SET name = 'big mug', price = 12.00 WHERE id = 1")
        cur.execute(f"DELETE FROM {capture.table} WHERE id = 1")
    events = _changes(capture.settings, capture.topic, 3)
    changes = [e for e in events if e is not None]
    assert [c["op"] for c in changes] == ["c", "u", "d"]
    assert events[-1] is None or len(events) == 3  # DELETE's tombstone follows it (compaction)
    lsns = [c["source"]["lsn"] for c in changes]
    assert lsns == sorted(lsns) and len(set(lsns)) == 3
    assert {f"{c['source']['schema']}.{c['source']['table']}" for c in changes} == {capture.table}
    insert, update, delete = changes
    assert insert["before"] is None
    assert insert["after"] == {"id": 1, "name": "mug", "price": "9.50"}
    assert update["before"] == {"id": 1, "name": "mug", "price": "9.50"}
    assert update["after"] == {"id": 1, "name": "big mug", "price": "12.00"}
    assert delete["before"] == {"id": 1, "name": "big mug", "price": "12.00"}
    assert delete["after"] is None


@pytest.mark.integration
def test_another_cluster_identity_resets_the_offsets_and_the_connector_runs(
    capture: Capture,
) -> None:
    """Offsets name an LSN of one cluster's WAL: a new cluster (``initdb``) must not get them."""
    url, name = capture.settings.connect.url, capture.settings.connect.connector
    other = {**capture.config, SOURCE_IDENTITY: "another-cluster"}
    outcome, state = apply_connector(url, name, other)
    assert outcome == "reset" and state.running
    outcome, state = apply_connector(url, name, capture.config)
    assert outcome == "reset" and state.running
