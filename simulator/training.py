"""The bot-score model's training data: labelled shop events, some bots in disguise.

The label is the simulated visitor's device (``bot`` or not), a field the enrichment never
sees: it is removed from the context. The simulated bots always announce themselves in
their user agent, so in a share of the bots' sessions (``spoof_share``) every event carries a
human browser's user agent instead, so that a model also learns their behaviour (crawling
pages fast, no commerce events, no login).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime

from contract.envelope import EventDict
from simulator.events import ClickstreamSource
from simulator.world import DESKTOP_AGENTS, MOBILE_AGENTS

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HUMAN_AGENTS = (*DESKTOP_AGENTS, *MOBILE_AGENTS)


def labelled_events(
    seed: int, events: int, users: int, spoof_share: float
) -> Iterator[tuple[EventDict, bool]]:
    """``events`` shop events of ``users`` visitors from ``START``, each with "is a bot"."""
    rng = random.Random(f"{seed}/spoof")
    spoofed: dict[str, str | None] = {}
    source = ClickstreamSource(users=users, seed=seed, start=START)
    for item in itertools.islice(source, events):
        assert isinstance(item, dict)  # no flaws: bad_share is 0
        context = dict(item["context"])
        is_bot = context.pop("device_type") == "bot"
        if is_bot:
            session = context.get("session_id", "")
            if session not in spoofed:
                spoofed[session] = rng.choice(HUMAN_AGENTS) if rng.random() < spoof_share else None
            context["user_agent"] = spoofed[session] or context.get("user_agent")
        yield {**item, "context": context}, is_bot
