"""One world, two generators: the same seed gives the same shop through both.

``simulator.events`` builds sessions event by event (as the demo's producers send them),
``simulator.raw_zone`` builds them vectorised (as the curation tests and benchmarks read
them). Both read ``simulator.world``; these tests fail when one of them drifts from it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson
import polars as pl
import pytest

from enrichment.user_agent import parse_user_agent
from simulator import world
from simulator.events import ClickstreamSource
from simulator.raw_zone import SyntheticConfig, synthetic_partition

pytestmark = pytest.mark.unit

SEED = 11
USERS = 3_000
EVENTS = 60_000
DAY = date(2026, 5, 4)


@dataclass
class Shape:
    """The distributions a shop's stream is judged by."""

    event_mix: dict[str, float]  # share of each funnel step among the events
    sessions_per_user: float  # distinct sessions per logged-in user id
    purchase_rate: float  # purchases per session
    bot_share: float  # share of sessions from crawlers
    login_share: float  # share of human sessions that carry a user id


def _shape(names: list[str], contexts: list[dict[str, str]]) -> Shape:
    kinds = Counter(names)
    sessions: dict[str, dict[str, str]] = {}
    for context in contexts:
        sessions.setdefault(context["session_id"], context)
    human = [c for c in sessions.values() if c["device_type"] != "bot"]
    per_user = Counter(c["user_id"] for c in sessions.values() if "user_id" in c)
    return Shape(
        event_mix={k: kinds[k] / len(names) for k in world.FUNNEL_STEPS},
        sessions_per_user=sum(per_user.values()) / len(per_user),
        purchase_rate=kinds["purchase"] / len(sessions),
        bot_share=1 - len(human) / len(sessions),
        login_share=sum("user_id" in c for c in human) / len(human),
    )


@pytest.fixture(scope="module")
def event_by_event() -> Shape:
    source = ClickstreamSource(users=USERS, seed=SEED, start=datetime(2026, 5, 4, tzinfo=UTC))
    events = [e for e in itertools.islice(source, EVENTS) if isinstance(e, dict)]
    return _shape([e["event_type"].split("/")[1] for e in events], [e["context"] for e in events])


@pytest.fixture(scope="module")
def vectorised() -> Shape:
    cfg = SyntheticConfig(
        day=DAY,
        events=EVENTS,
        seed=SEED,
        users=USERS,
        duplicate_share=0.0,
        late_share=0.0,
        cross_partition_share=0.0,
    )
    part = synthetic_partition(cfg)
    rows = pl.concat([part.lookback, part.current])
    contexts = [orjson.loads(c) for c in rows["context"]]
    return _shape(rows["event_name"].to_list(), contexts)


def test_the_event_type_mix_is_the_same(event_by_event: Shape, vectorised: Shape) -> None:
    for step in world.FUNNEL_STEPS:
        assert vectorised.event_mix[step] == pytest.approx(
            event_by_event.event_mix[step], abs=0.01
        ), step


def test_purchase_rate_bot_share_and_logins_are_the_same(
    event_by_event: Shape, vectorised: Shape
) -> None:
    assert vectorised.purchase_rate == pytest.approx(event_by_event.purchase_rate, rel=0.1)
    assert vectorised.bot_share == pytest.approx(event_by_event.bot_share, abs=0.01)
    # Accounts are drawn per user (3,000 of them): a few points of noise between the pools.
    assert vectorised.login_share == pytest.approx(event_by_event.login_share, abs=0.05)
    # ... and they are the world's: crawlers are DEVICE_WEIGHTS' share of visitors.
    bots = world.DEVICE_WEIGHTS["bot"] / sum(world.DEVICE_WEIGHTS.values())
    assert event_by_event.bot_share == pytest.approx(bots, abs=0.015)
    logins = world.ACCOUNT_SHARE * world.LOGIN_SHARE
    assert event_by_event.login_share == pytest.approx(logins, abs=0.04)
    assert vectorised.login_share == pytest.approx(logins, abs=0.04)


def test_sessions_per_user_are_the_same(event_by_event: Shape, vectorised: Shape) -> None:
    assert vectorised.sessions_per_user == pytest.approx(event_by_event.sessions_per_user, rel=0.1)


def test_the_enrichment_reads_every_simulated_agent_as_the_world_says() -> None:
    for agent, info in world.AGENT_INFO.items():
        assert parse_user_agent(agent) == info, agent
    every = {a for agents in world.AGENTS.values() for a in agents}
    assert every == set(world.AGENT_INFO)
