"""The platform's Kafka topics, declared with explicit settings, and their reconciliation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from resources.settings import KafkaSettings, TopicNames

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the platform declares it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""


def platform_topics(names: TopicNames, kafka: KafkaSettings) -> list[TopicSpec]:
    """Declare every topic of the platform with its partitions and configuration."""

    def spec(name: str, partitions: int, retention_days: float, description: str) -> TopicSpec:
        return TopicSpec(
            name=name,
            partitions=partitions,
            replication_factor=kafka.replication_factor,
            config={
                "cleanup.policy": "delete",
                "retention.ms": str(round(retention_days * DAY_MS)),
                "min.insync.replicas": str(kafka.min_insync_replicas),
                "compression.type": "producer",
                "max.message.bytes": str(2 * 1024 * 1024),
            },
            description=description,
        )

    # Event topics are kept a week by default (the lake is the long-term store); dead letters
    # a month, so there is time to inspect and replay them. Both hold personal data: the
    # retention is how long an erased person's events stay in Kafka (docs/privacy.md).
    dlq_partitions = max(1, kafka.partitions // 2)
    events, dead = kafka.events_retention_days, kafka.dead_letter_retention_days
    return [
        spec(names.raw, kafka.partitions, events, "Events accepted by the collector."),
        spec(names.collector_dlq, dlq_partitions, dead, "Events the collector rejected."),
        spec(names.enriched, kafka.partitions, events, "Validated and enriched events."),
        spec(names.enriched_dlq, dlq_partitions, dead, "Events failing validation/enrichment."),
        spec(names.loader_dlq, dlq_partitions, dead, "Documents the search store rejected."),
    ]


def connect_topics(names: TopicNames, kafka: KafkaSettings) -> list[TopicSpec]:
    """Kafka Connect's own topics: compacted (the latest value per key is the state), kept.

    Made by the ``kafka-connect`` service before its worker starts (the worker would make
    them itself, with settings of its own), not with the event topics: only a stack that runs
    change capture has them.

    The configuration topic must have one partition (Connect refuses more); the offsets hold
    each connector's position in its source (Debezium's LSN), so losing them means a new
    snapshot.
    """

    def spec(name: str, partitions: int, description: str) -> TopicSpec:
        return TopicSpec(
            name=name,
            partitions=partitions,
            replication_factor=kafka.replication_factor,
            config={
                "cleanup.policy": "compact",
                "min.insync.replicas": str(kafka.min_insync_replicas),
            },
            description=description,
        )

    return [
        spec(names.connect_configs, 1, "Kafka Connect's connector configurations."),
        spec(names.connect_offsets, 5, "Kafka Connect's source offsets."),
        spec(names.connect_status, 1, "Kafka Connect's connector and task states."),
    ]


@dataclass
class TopicReport:
    created: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    repartitioned: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def ensure_topics(admin: AdminClient, specs: list[TopicSpec], timeout: float = 30) -> TopicReport:
    """Create missing topics and bring existing ones to their declared settings.

    Partitions are only ever added (Kafka cannot remove them); configuration drift is
    corrected with an incremental alter so unrelated overrides are left alone.
    """
    report = TopicReport()
    existing = admin.list_topics(timeout=timeout).topics
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    config=s.config,
                )
                for s in missing
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
            report.created.append(name)

    _await_leaders(admin, [s.name for s in specs], timeout)

    present = [s for s in specs if s.name in existing]
    for s in present:
        changed = False
        current_partitions = len(existing[s.name].partitions)
        if current_partitions < s.partitions:
            admin.create_partitions([NewPartitions(s.name, s.partitions)])[s.name].result()
            report.repartitioned.append(s.name)
            changed = True
        current = describe_topic_config(admin, s.name, timeout)
        drift = {k: v for k, v in s.config.items() if current.get(k) != v}
        if drift:
            resource = ConfigResource(
                ConfigResource.Type.TOPIC,
                s.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in drift.items()
                ],
            )
            for future in admin.incremental_alter_configs([resource]).values():
                future.result()
            _await_config(admin, s.name, drift, timeout)
            report.altered.append(s.name)
            changed = True
        if not changed:
            report.unchanged.append(s.name)
    return report


def _await_leaders(admin: AdminClient, topics: list[str], timeout: float) -> None:
    """Wait until every partition of ``topics`` has a leader, so clients can use them at once."""
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout).topics
        leaderless = [
            t
            for t in topics
            if t not in metadata
            or metadata[t].error is not None
            or any(p.leader < 0 for p in metadata[t].partitions.values())
        ]
        if not leaderless:
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"topics without partition leaders: {leaderless}")
        time.sleep(0.2)


def _await_config(admin: AdminClient, topic: str, wanted: dict[str, str], timeout: float) -> None:
    """Wait until the broker shows ``wanted`` (it applies config changes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        current = describe_topic_config(admin, topic, timeout)
        if all(current.get(k) == v for k, v in wanted.items()):
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"{topic}: configuration {wanted} not applied after {timeout}s")
        time.sleep(0.2)


def describe_topic_config(admin: AdminClient, topic: str, timeout: float = 30) -> dict[str, str]:
    """Return the effective configuration of a topic."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    return {name: entry.value for name, entry in entries.items()}
