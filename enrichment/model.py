"""The bot-probability model: per-event features, the versioned artefact, batch scoring.

Features are computable from one request alone (no state across requests): the user agent, the
event itself, and the other events of the same session *in the same batch* (how many, and the
median time between them: crawlers fetch pages seconds apart, people take longer). Training
(``enrichment.train``) computes the in-batch features over batches cut from the synthetic
stream the way a caller would send them, so serving sees the same distribution.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
from numpy.typing import NDArray

from contract.records import UserAgentInfo

SCORE_NAME = "bot_probability"
FEATURES = (
    "ua_missing",
    "ua_is_bot",
    "ua_desktop",
    "ua_mobile",
    "ua_tablet",
    "ua_other",
    "ua_compatible_token",
    "has_user_id",
    "is_page_view",
    "is_commerce",
    "page_is_product",
    "page_is_category",
    "has_referrer",
    "session_events_in_batch_log",
    "session_has_gap",
    "session_median_gap_log_s",
)
_COMMERCE = ("product_view", "add_to_cart", "checkout_started", "purchase")
_ARTEFACT = re.compile(r"^(?P<name>[a-z_]+)-(?P<version>\d+\.\d+\.\d+)\.skops$")


@dataclass(frozen=True)
class EventView:
    """What the features need of one event."""

    event_type: str
    event_timestamp: str | None
    payload: dict[str, Any]
    context: dict[str, Any]
    user_agent: UserAgentInfo | None
    user_agent_string: str | None


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def features(events: Sequence[EventView]) -> NDArray[np.float64]:
    """The feature matrix of a batch (rows in the order of ``events``).

    Rows are built as Python lists and converted once: assigning numpy elements one by one
    cost half of the function's time.
    """
    rows: list[list[float]] = []
    sessions: dict[str, list[tuple[float | None, int]]] = defaultdict(list)
    for i, ev in enumerate(events):
        ua = ev.user_agent
        device = ua.device_class if ua is not None else None
        name = ev.event_type.split("/")[1] if ev.event_type.count("/") >= 1 else ev.event_type
        page_url = ev.payload.get("page_url")
        path = page_url.split("://", 1)[-1].partition("/")[2] if isinstance(page_url, str) else ""
        rows.append(
            [
                ua is None,
                ua is not None and ua.is_bot,
                device == "desktop",
                device == "mobile",
                device == "tablet",
                device == "other",
                bool(ev.user_agent_string and "compatible;" in ev.user_agent_string),
                bool(ev.context.get("user_id")),
                name == "page_view",
                name in _COMMERCE,
                path.startswith("p/"),
                path.startswith("c/"),
                bool(ev.payload.get("referrer_url")),
                0.0,
                0.0,
                0.0,
            ]
        )
        session = ev.context.get("session_id")
        if isinstance(session, str) and session:
            sessions[session].append((_timestamp(ev.event_timestamp), i))
    for members in sessions.values():
        times = sorted(t for t, _ in members if t is not None)
        gaps = [b - a for a, b in pairwise(times)]
        size = math.log1p(len(members))
        gap = math.log1p(max(0.0, median(gaps))) if gaps else 0.0
        for _, i in members:
            rows[i][13] = size
            if gaps:
                rows[i][14] = 1.0
                rows[i][15] = gap
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def artefact_paths(model_dir: Path, name: str, version: str | None = None) -> tuple[Path, Path]:
    """The artefact and its model card: the given version, else the newest of ``name``."""
    found = []
    for path in model_dir.glob(f"{name}-*.skops"):
        m = _ARTEFACT.match(path.name)
        if m and m["name"] == name and (version is None or m["version"] == version):
            found.append((tuple(int(p) for p in m["version"].split(".")), path))
    if not found:
        raise FileNotFoundError(f"no model {name} {version or ''} in {model_dir}")
    path = max(found)[1]
    return path, path.with_suffix(".json")


class BotModel:
    """A loaded, verified artefact: ``predict`` gives the bot probability of each event."""

    def __init__(self, model_dir: Path, name: str = "bot_score", version: str | None = None):
        import skops.io as sio

        path, card_path = artefact_paths(model_dir, name, version)
        self.card: dict[str, Any] = json.loads(card_path.read_text())
        digest = sha256(path)
        if digest != self.card["sha256"]:
            raise ValueError(f"{path.name}: sha256 {digest} differs from its model card")
        if tuple(self.card["features"]) != FEATURES:
            raise ValueError(f"{path.name} was trained on other features than this code computes")
        untrusted = sio.get_untrusted_types(file=path)
        if untrusted:
            raise ValueError(f"{path.name} holds types that are not trusted: {untrusted}")
        self.estimator = sio.load(path, trusted=[])
        self.version = f"{self.card['name']}-{self.card['version']}"

    def predict(self, events: Sequence[EventView]) -> NDArray[np.float64]:
        if not events:
            return np.zeros(0)
        proba: NDArray[np.float64] = self.estimator.predict_proba(features(events))[:, 1]
        return np.clip(proba, 0.0, 1.0)
