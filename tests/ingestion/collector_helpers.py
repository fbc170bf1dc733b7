"""What the collector tests share: keys, events, a collector process and the topics it writes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from ingestion.core.auth import hash_key
from resources.settings import PlatformSettings
from tests.kafka_helpers import end_offsets, read_since

TRIBUTARY = str(Path(sys.executable).parent / "tributary")

WRITE_KEY = "trib_test_write_key_0123456789abcdef"
READ_ONLY_KEY = "trib_test_read_only_key_0123456789"

PAGE_VIEW = "iglu:com.tributary.shop/page_view/jsonschema/1-0-0"


def api_keys() -> list[dict[str, Any]]:
    """The collector's key entries: ``test-producer`` may write, ``dashboard`` may only read."""
    return [
        {"producer": "test-producer", "sha256": hash_key(WRITE_KEY)},
        {"producer": "dashboard", "sha256": hash_key(READ_ONLY_KEY), "scopes": ["events:read"]},
    ]


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": PAGE_VIEW,
        "event_timestamp": datetime.now(UTC).isoformat(),
        "source": "tests",
        "payload": {"page_url": "https://shop.example.com/"},
        "context": {"user_id": "u-1", "session_id": "s-1"},
    }
    base.update(changes)
    return base


class Topics:
    """Offsets of the raw and dead-letter topics before a test, to read what it added."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.raw_start = end_offsets(settings.kafka, settings.topics.raw)
        self.dlq_start = end_offsets(settings.kafka, settings.topics.collector_dlq)

    def raw(self, expect: int) -> list[dict[str, Any]]:
        msgs = read_since(self.settings.kafka, self.settings.topics.raw, self.raw_start, expect)
        return [orjson.loads(m.value() or b"") for m in msgs]

    def raw_messages(self, expect: int) -> list[Any]:
        return read_since(self.settings.kafka, self.settings.topics.raw, self.raw_start, expect)

    def dlq(self, expect: int) -> list[dict[str, Any]]:
        return [orjson.loads(m.value() or b"") for m in self.dlq_messages(expect)]

    def dlq_messages(self, expect: int) -> list[Any]:
        return read_since(
            self.settings.kafka, self.settings.topics.collector_dlq, self.dlq_start, expect
        )


@dataclass
class CollectorProcess:
    """One collector server; ``restart`` keeps its ports."""

    env: dict[str, str]
    port: int
    grpc_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [TRIBUTARY, "run", "collector"],
                env={**self.env, **self.extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"collector not ready: {self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        if self.proc is None:
            return None
        # SIGTERM goes to the server process alone, as a supervisor sends it; SIGKILL takes
        # the whole group, workers included.
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def post(self, body: object, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/events",
            content=orjson.dumps(body),
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {WRITE_KEY}",
                **headers,
            },
            timeout=60,
        )


def collector_env(
    kafka: PlatformSettings, port: int, grpc_port: int, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_COLLECTOR__")}
    env.update(
        {
            "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS": kafka.kafka.bootstrap_servers,
            "TRIBUTARY_COLLECTOR__PORT": str(port),
            "TRIBUTARY_COLLECTOR__GRPC_PORT": str(grpc_port),
            "TRIBUTARY_COLLECTOR__WORKERS": "2",
            "TRIBUTARY_COLLECTOR__API_KEYS": orjson.dumps(api_keys()).decode(),
            "TRIBUTARY_COLLECTOR__TRUSTED_PROXIES": '["127.0.0.0/8"]',
            "TRIBUTARY_COLLECTOR__DELIVERY_TIMEOUT_S": "5",
            **extra,
        }
    )
    return env
