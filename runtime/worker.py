"""What the three stream workers share: settings, static group membership, rebalance logs.

Static membership (KIP-345): each worker joins its group with a stable ``group.instance.id``
(:attr:`WorkerOptions.instance_id`). A member that crashed and restarts under the same id gets
its partitions back at once, without a rebalance; a dynamic member would wait until the
broker expired the dead member's session (``session.timeout.ms``, 45 s), during which nobody
consumed its partitions. The price: a static member's ``close()`` does not leave the group, so
when an instance is stopped for good (scaled down) its partitions wait out the session
timeout before the others take them over. Two instances running at once in one group need
different ids; a second one with the same id fences the first (``FENCED_INSTANCE_ID``).

The ``group.instance.id`` also names the topics a worker reads (a short digest of them): with
the classic rebalance protocol, a static member that rejoins with another subscription (a
topic renamed in the settings) is handed its old assignment, of topics it no longer reads,
and no rebalance follows (KAFKA-12759, open upstream). With the digest the renamed
subscription joins as a new member, which rebalances; the old one expires after the session
timeout.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.metrics import METRICS_HOST, WorkerMetrics
from runtime.retry import RetrySettings

# Each worker's default metrics port, by settings section; one place for both sides.
METRICS_PORTS = {"enricher": 9464, "realtime_loader": 9465, "batch_loader": 9466}


def default_instance_id() -> str:
    """The host's name: stable across restarts of the one instance a host runs."""
    return socket.gethostname()


class WorkerOptions(BaseModel):
    """Settings every stream worker has (each section sets its own defaults)."""

    instance_id: str = Field(
        default_factory=default_instance_id,
        min_length=1,
        description="Stable name of this instance in its consumer group (group.instance.id): "
        "restarted under the same name it rejoins at once. Instances running at the same "
        "time in one group need different names.",
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Loopback port of /metrics and /healthz (0: any free)."
    )
    healthz_stale_s: float = Field(
        30.0, gt=0, description="/healthz answers 503 once the loop has not polled this long."
    )
    stats_interval_ms: int = Field(
        1000, ge=100, description="statistics.interval.ms: how often consumer lag is updated."
    )
    retry: RetrySettings = RetrySettings()

    def group_instance_id(self, topics: Sequence[str]) -> str:
        """``<instance_id>.<digest of the topics>``, the consumer's ``group.instance.id``.

        The same across restarts; another one when the subscription changes (see the module's
        docstring).
        """
        digest = hashlib.sha256(",".join(sorted(set(topics))).encode()).hexdigest()[:8]
        return f"{self.instance_id}.{digest}"

    def consumer_overrides(self, metrics: WorkerMetrics, topics: Sequence[str]) -> dict[str, Any]:
        """The librdkafka settings of the worker's consumer: static membership and statistics."""
        return {
            "group.instance.id": self.group_instance_id(topics),
            "statistics.interval.ms": self.stats_interval_ms,
            "stats_cb": metrics.on_stats,
        }


def describe(partitions: Sequence[TopicPartition]) -> str:
    """``topic[0,1,2]``, one entry per topic, partitions in order."""
    if not partitions:
        return "nothing"
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in partitions:
        by_topic[tp.topic].append(tp.partition)
    return ", ".join(
        f"{topic}[{','.join(str(p) for p in sorted(ps))}]" for topic, ps in sorted(by_topic.items())
    )


Callback = Callable[[Consumer, list[TopicPartition]], None]


class Rebalances:
    """The consumer's rebalance callbacks: one log line each, metrics kept, then the worker's.

    ``on_assign`` (if given) must assign the partitions itself; without one the consumer
    assigns them as usual. ``on_revoke`` is called for lost partitions too.
    """

    def __init__(
        self,
        log: logging.Logger,
        metrics: WorkerMetrics,
        on_assign: Callback | None = None,
        on_revoke: Callback | None = None,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self._on_assign = on_assign
        self._on_revoke = on_revoke

    def subscribe(self, consumer: Consumer, topics: list[str]) -> None:
        consumer.subscribe(
            topics, on_assign=self.assigned, on_revoke=self.revoked, on_lost=self.lost
        )

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.log.info("assigned %s", describe(partitions))
        if self._on_assign is not None:
            self._on_assign(consumer, partitions)

    def revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.log.info("revoked %s", describe(partitions))
        self._gone(consumer, partitions)

    def lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.log.warning("lost %s (the group moved on without this member)", describe(partitions))
        self._gone(consumer, partitions)

    def _gone(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.forget((tp.topic, tp.partition) for tp in partitions)
        if self._on_revoke is not None:
            self._on_revoke(consumer, partitions)


def pause(
    consumer: Consumer, metrics: WorkerMetrics, log: logging.Logger, reason: str
) -> list[TopicPartition]:
    """Pause every assigned partition, log it in one line and count them."""
    partitions = consumer.assignment()
    consumer.pause(partitions)
    metrics.paused_partitions.set(len(partitions))
    log.warning("paused %s: %s", describe(partitions), reason)
    return partitions


def resume(consumer: Consumer, metrics: WorkerMetrics, log: logging.Logger) -> None:
    """Resume every assigned partition and log it in one line."""
    partitions = consumer.assignment()
    consumer.resume(partitions)
    metrics.paused_partitions.set(0)
    log.info("resumed %s", describe(partitions))


class _Endpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metrics_port: int | None = None


class WorkerEndpoints(BaseSettings):
    """Where each worker serves its metrics, read from the same variables the workers read.

    ``TRIBUTARY_ENRICHER__METRICS_PORT`` and so on; for processes that watch the workers
    (the Dagster observations) without importing them.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRIBUTARY_", env_nested_delimiter="__", extra="ignore"
    )

    enricher: _Endpoint = _Endpoint()
    realtime_loader: _Endpoint = _Endpoint()
    batch_loader: _Endpoint = _Endpoint()

    def metrics_url(self, section: str) -> str:
        """The ``/metrics`` URL of the worker whose settings section is ``section``."""
        endpoint: _Endpoint = getattr(self, section)
        port = endpoint.metrics_port or METRICS_PORTS[section]
        return f"http://{METRICS_HOST}:{port}/metrics"
