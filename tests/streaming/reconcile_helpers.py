"""Hand-made figures for the reconciliation's pure tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Told:
    """What a producer was told by the collector (``streaming.reconcile.ProducerFigures``)."""

    sent: int
    accepted: int
    rejected: Counter[str] = field(default_factory=Counter)
