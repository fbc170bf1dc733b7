"""Alerting over the real-time store: a high dead-letter rate, or no events at all.

Every minute the sensor counts, in the search store, the events and the dead letters indexed in the
last ``window_minutes``. It fires when the dead-letter rate (dead letters over events plus dead
letters) passes ``max_dead_letter_rate``, or when no event arrived in the window. Firing means
both a webhook (JSON POSTed to ``webhook_url``, when set) and a run of the ``stream_alert``
job that fails with the alert's text, so the alert is visible in the Dagster UI and in any run
failure notification already set up. The cursor keeps the state of each alert; an alert
fires when it starts (once per episode), not on every tick while it lasts.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import httpx

from contract.search import DEADLETTERS, EVENTS, index_pattern
from resources.dagster_resources import SearchResource
from resources.settings import AlertSettings

# The families counted, in the order of Reading's fields.
FAMILIES = (EVENTS, DEADLETTERS)


@dataclass(frozen=True)
class Reading:
    events: int
    dead_letters: int

    @property
    def dead_letter_rate(self) -> float:
        total = self.events + self.dead_letters
        return self.dead_letters / total if total else 0.0


def read_window(search: SearchResource, since: datetime) -> Reading:
    query = {"range": {"loader.indexed_at": {"gte": since.isoformat()}}}
    with search.get_store() as store:
        counts = [store.count(index_pattern(store.index_prefix, f), query) for f in FAMILIES]
        return Reading(*counts)


def alerts_for(reading: Reading, settings: AlertSettings) -> dict[str, str]:
    """The alerts a reading raises, by kind, with their text."""
    found = {}
    if reading.events == 0:
        found["silence"] = f"no events indexed in the last {settings.window_minutes:g} minutes"
    if reading.dead_letter_rate > settings.max_dead_letter_rate:
        found["dead_letter_rate"] = (
            f"dead-letter rate {reading.dead_letter_rate:.1%} over the last "
            f"{settings.window_minutes:g} minutes ({reading.dead_letters} dead letters, "
            f"{reading.events} events) passes {settings.max_dead_letter_rate:.0%}"
        )
    return found


class AlertConfig(dg.Config):
    kind: str
    text: str


@dg.op
def raise_alert(config: AlertConfig) -> None:
    raise dg.Failure(description=config.text, metadata={"alert": config.kind})


@dg.job(description="Fails with an alert's text: the alert as a failed run in the UI.")
def stream_alert() -> None:
    raise_alert()


def alert_sensor(settings: AlertSettings) -> dg.SensorDefinition:
    @dg.sensor(
        name="stream_alert_sensor",
        job=stream_alert,
        minimum_interval_seconds=60,
        description="Dead-letter rate and silence over the real-time store.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def sensor(context: dg.SensorEvaluationContext, search: SearchResource) -> dg.SensorResult:
        now = datetime.now(UTC)
        reading = read_window(search, now - timedelta(minutes=settings.window_minutes))
        active: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
        current = alerts_for(reading, settings)
        requests = []
        for kind, text in current.items():
            if kind in active:
                continue  # still the same episode
            payload = {"alert": kind, "text": text, "at": now.isoformat(), **reading.__dict__}
            if settings.webhook_url:
                try:
                    httpx.post(settings.webhook_url, json=payload, timeout=10).raise_for_status()
                except httpx.HTTPError as exc:
                    context.log.error(f"webhook {settings.webhook_url} failed: {exc}")
            requests.append(
                dg.RunRequest(
                    run_key=f"{kind}:{now.isoformat()}",
                    run_config=dg.RunConfig(ops={"raise_alert": AlertConfig(kind=kind, text=text)}),
                    tags={"tributary/alert": kind},
                )
            )
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps({kind: active.get(kind, now.isoformat()) for kind in current}),
        )

    return sensor
