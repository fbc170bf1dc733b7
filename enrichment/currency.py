"""Normalise the payload's amounts to EUR with a versioned, static reference-rate table.

The table (``enrichment/data/eur-reference-rates-<version>.json``) is a snapshot, not live
rates: every converted amount names the table's version
(``contract.records.MoneyInfo.rates_version``) so a report can be reproduced or re-converted
later. An unknown or missing currency converts nothing (and is not an error).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

AMOUNT_FIELDS = frozenset({"price", "unit_price", "total", "cart_value"})
MAX_DEPTH = 8


class RateTable(BaseModel):
    version: str
    base: str = "EUR"
    rates: dict[str, float] = Field(description="Units of the currency per 1 EUR.")

    @classmethod
    def from_file(cls, path: Path) -> RateTable:
        table = cls.model_validate(json.loads(path.read_text()))
        if table.base != "EUR" or table.rates.get("EUR") != 1.0:
            raise ValueError(f"{path}: the table must be based on EUR")
        if any(not (r > 0 and math.isfinite(r)) for r in table.rates.values()):
            raise ValueError(f"{path}: every rate must be a positive number")
        return table

    def to_eur(self, amount: float, currency: str) -> float | None:
        rate = self.rates.get(currency)
        return None if rate is None else round(amount / rate, 4)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _amounts(
    node: Any, pointer: str, currency: Any, depth: int
) -> Iterator[tuple[str, float, Any]]:
    """Yield (JSON Pointer, amount, currency in scope) for every amount field."""
    if depth > MAX_DEPTH:
        return
    if isinstance(node, dict):
        currency = node.get("currency", currency)
        for key, value in node.items():
            # The pointer is only built for what is yielded or descended into.
            if (
                key in AMOUNT_FIELDS
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                yield f"{pointer}/{_escape(str(key))}", float(value), currency
            elif isinstance(value, dict | list):
                yield from _amounts(value, f"{pointer}/{_escape(str(key))}", currency, depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _amounts(value, f"{pointer}/{i}", currency, depth + 1)


def normalise_money(payload: Any, table: RateTable) -> list[dict[str, Any]]:
    """Every price, unit price, total and cart value of the payload, converted to EUR.

    An amount takes the ``currency`` of its own object or the nearest enclosing one
    (``purchase.items[].unit_price`` takes the order's currency). Each is a ``MoneyInfo`` as a
    plain dict, ready for the answer: building and dumping a model per amount took half of
    this function's time (the API test validates answers against the model).
    """
    out = []
    for pointer, amount, currency in _amounts(payload, "", None, 0):
        if not isinstance(currency, str):
            continue
        code = currency.strip().upper()
        amount_eur = table.to_eur(amount, code)
        if amount_eur is None:
            continue
        out.append(
            {
                "field": pointer,
                "amount": amount,
                "currency": code,
                "amount_eur": amount_eur,
                "rates_version": table.version,
            }
        )
    return out
