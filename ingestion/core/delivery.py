"""Bridge between asyncio request handlers and the confluent-kafka producer.

A request produces its messages, then awaits one future that resolves when Kafka's delivery
report has arrived for every one of them. A dedicated thread serves the producer's delivery
callbacks (``poll``), so the event loop never blocks on Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from resources.kafka import make_kafka_producer
from resources.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not confirm the messages (down, timed out, or refused)."""


class QueueFull(KafkaUnavailable):
    """The producer's local queue is full: back-pressure to the client."""


class Deliveries:
    """Delivery reports of one request's messages.

    Two counters, each written by one thread only, so that no lock is taken per message:
    ``produced`` by the event loop (``KafkaBridge.produce``), ``reported`` by the thread that
    serves the producer's callbacks (the bridge's poll thread, or ``flush`` at close once that
    thread has stopped). Whichever of ``seal`` and the last report comes second resolves.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.produced = 0
        self.reported = 0
        self._sealed = False
        self._future: asyncio.Future[None] = loop.create_future()
        self.errors: list[KafkaError] = []
        self.started = time.perf_counter()
        # One bound method for every message of the request (``on_delivery``).
        self.report = self.on_delivery

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        # Runs on the poll thread.
        if err is not None:
            self.errors.append(err)
        self.reported += 1
        if self._sealed and self.reported == self.produced:
            self._loop.call_soon_threadsafe(self._resolve)

    def seal(self) -> None:
        """No more messages will be added; resolve once the outstanding ones are reported."""
        self._sealed = True
        if self.reported == self.produced:
            self._resolve()

    def _resolve(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def _expire(self) -> None:
        if not self._future.done():
            self._future.set_exception(TimeoutError())

    async def wait(self, timeout: float) -> float:
        """Wait for every report; return the seconds it took, or raise KafkaUnavailable."""
        if not self._future.done():
            # One timer on the future (cheaper than a timeout scope around the task).
            timer = self._loop.call_later(timeout, self._expire)
            try:
                await self._future
            except TimeoutError as exc:
                raise KafkaUnavailable(f"Kafka did not confirm within {timeout:.0f}s") from exc
            finally:
                timer.cancel()
        if self.errors:
            raise KafkaUnavailable(f"Kafka refused {len(self.errors)} message(s): {self.errors[0]}")
        return time.perf_counter() - self.started


ProducerFactory = Callable[..., Producer]
"""Builds the producer from the Kafka settings and librdkafka overrides: make_kafka_producer."""


class KafkaBridge:
    """Owns the producer and its poll thread; tracks whether Kafka is reachable."""

    def __init__(
        self,
        kafka: KafkaSettings,
        delivery_timeout_s: float,
        queue_max: int,
        linger_ms: int,
        producer_factory: ProducerFactory = make_kafka_producer,
    ) -> None:
        self.producer: Producer = producer_factory(
            kafka,
            error_cb=self.on_error,
            **self.producer_config(delivery_timeout_s, queue_max, linger_ms),
        )
        self.available = True
        self._running = True
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    @staticmethod
    def producer_config(
        delivery_timeout_s: float, queue_max_messages: int, linger_ms: int
    ) -> dict[str, Any]:
        return {
            # A message not confirmed by then fails, and so does the request that carried it.
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "queue.buffering.max.messages": queue_max_messages,
            "linger.ms": linger_ms,
            "socket.connection.setup.timeout.ms": 3000,
            "reconnect.backoff.max.ms": 1000,
        }

    def on_error(self, err: KafkaError) -> None:
        """``error_cb``: all brokers down flips the collector to fail fast with 503."""
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            if self.available:
                log.warning("Kafka unreachable: %s", err)
            self.available = False

    def _poll(self) -> None:
        while self._running:
            self.producer.poll(0.05)

    def produce(
        self, deliveries: Deliveries, topic: str, value: bytes, key: str | None = None
    ) -> None:
        if not self.available:
            raise KafkaUnavailable("Kafka is unreachable")
        try:
            self.producer.produce(topic, value=value, key=key, on_delivery=deliveries.report)
        except BufferError as exc:
            raise QueueFull("the producer queue is full") from exc
        except KafkaException as exc:
            raise KafkaUnavailable(str(exc)) from exc
        deliveries.produced += 1

    def probe(self, topics: list[str], timeout: float = 2) -> dict[str, bool]:
        """Ask the cluster for metadata; mark Kafka available again when it answers."""
        try:
            metadata = self.producer.list_topics(timeout=timeout)
        except KafkaException:
            self.available = False
            raise
        self.available = bool(metadata.brokers)
        return {t: t in metadata.topics for t in topics}

    def close(self, timeout: float) -> int:
        """Deliver what is queued (up to ``timeout``); return how many were left undelivered."""
        # The poll thread stops first: from then on only flush serves delivery reports.
        self._running = False
        self._thread.join(2)
        return int(self.producer.flush(timeout))
