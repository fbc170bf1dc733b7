"""Replaying the enricher's pseudonymised dead letters, on real Kafka with the real enricher.

A replayed original carries pseudonyms already: the enricher must keep them (not hash them
again), so the person's dead letters and events keep one pseudonym; an original withheld
because it could not be searched for personal fields is not replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from contract.envelope import rfc3339
from resources.kafka import make_kafka_admin, make_kafka_producer
from resources.settings import PlatformSettings, PrivacySettings, TopicNames
from resources.topics import ensure_topics, platform_topics
from streaming.dlq import DeadLetterTopic, replay
from streaming.enricher import Enricher, EnricherSettings
from tests.kafka_helpers import read_committed
from tests.streaming.enricher_helpers import committed_through, settings_for
from tests.streaming.worker_helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = f"replay-test-key-{uuid.uuid4().hex[:8]}"


def hmac_of(value: str) -> str:
    return "ps:1:" + hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def enrich_all(settings: EnricherSettings) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=Enricher(settings, stop).run)
    thread.start()
    try:
        wait_for(lambda: committed_through(settings), 120, "the enricher to catch up")
    finally:
        stop.set()
        thread.join(30)


def test_replayed_pseudonyms_are_kept_and_withheld_originals_stay(
    kafka: PlatformSettings,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = TopicNames(
        raw=f"test.{suffix}.raw",
        collector_dlq=f"test.{suffix}.raw.dlq",
        enriched=f"test.{suffix}.enriched",
        enriched_dlq=f"test.{suffix}.enriched.dlq",
        loader_dlq=f"test.{suffix}.loader.dlq",
    )
    ensure_topics(make_kafka_admin(kafka.kafka), platform_topics(topics, kafka.kafka))
    privacy = PrivacySettings.model_validate(
        {
            "pseudonyms": {
                "enabled": True,
                "key": KEY,
                "payload_fields": {"com.tributary.app/log_record": ["/message"]},
            }
        }
    )
    settings = settings_for(kafka, topics).model_copy(update={"privacy": privacy})
    user, email = f"someone-{suffix}", f"someone.{suffix}@example.org"
    broken = {
        "event_id": str(uuid.uuid4()),
        "event_type": "iglu:com.tributary.app/log_record/jsonschema/1-0-0",
        "event_timestamp": rfc3339(datetime.now(UTC)),
        "source": "privacy-test",
        "payload": {"service": "auth", "level": "loud", "message": email},
        "context": {"user_id": user},
        "collector": {"client_ip": "81.2.69.160"},
    }
    producer = make_kafka_producer(kafka.kafka)
    producer.produce(topics.raw, value=orjson.dumps(broken), key=f"user_id:{user}")
    producer.produce(topics.raw, value=f"not JSON, from {email}".encode(), key=f"user_id:{user}")
    assert producer.flush(30) == 0
    enrich_all(settings)

    first = read_committed(kafka.kafka, topics.enriched_dlq)
    assert len(first) == 2
    for msg in first:
        text = (msg.key() or b"") + (msg.value() or b"")
        assert user.encode() not in text and email.encode() not in text
        assert msg.key() == f"user_id:{hmac_of(user)}".encode()
    letters = [orjson.loads(m.value() or b"") for m in first]
    withheld = [d for d in letters if "original_withheld" in d["metadata"]]
    assert len(withheld) == 1 and withheld[0]["failure_type"] == "malformed"
    assert withheld[0]["original"]["data"] is None

    report = replay(settings, DeadLetterTopic.ENRICHED, max_replays=3)
    assert report.skipped["original_withheld"] == 1
    assert report.moved == {"schema_violation": 1}
    enrich_all(settings)

    after = read_committed(kafka.kafka, topics.enriched_dlq)
    assert len(after) == 3
    replayed = [m for m in after if orjson.loads(m.value() or b"")["replay_count"] == 1]
    assert len(replayed) == 1
    again = orjson.loads(replayed[0].value() or b"")
    assert replayed[0].key() == f"user_id:{hmac_of(user)}".encode()
    original = again["original"]["data"]
    # The same pseudonyms as the first time: kept, not hashed again.
    assert original["context"]["user_id"] == hmac_of(user)
    assert original["payload"]["message"] == hmac_of(email)
    assert original["collector"]["client_ip"] == hmac_of("81.2.69.160")
