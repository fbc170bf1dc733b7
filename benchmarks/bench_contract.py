"""Throughput of the event contract checks, against baselines measured in the same run.

- envelope: ``check_envelope`` (pydantic) on decoded events, vs ``json.loads`` of the same
  bytes (what every stage pays anyway);
- payload: the registry's compiled validators (jsonschema-rs), vs the reference Python
  ``jsonschema`` validator on the same payloads.

Run: ``uv run python benchmarks/bench_contract.py [--events N]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import jsonschema

from contract.envelope import EnvelopeRules, check_envelope
from contract.registry import SchemaRegistry
from ingestion.producers.sources import encode
from simulator.events import ClickstreamSource


def rate(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    registry = SchemaRegistry.from_directory()
    rules = EnvelopeRules()
    source = iter(ClickstreamSource(users=1000, seed=1))
    raw = [encode(next(source)) for _ in range(args.events)]
    decoded = [json.loads(b) for b in raw]
    n = len(raw)

    parse = rate(lambda: [json.loads(b) for b in raw], n)
    envelope = rate(lambda: [check_envelope(d, registry, rules) for d in decoded], n)

    pairs = [(registry.lookup(d["event_type"]), d["payload"]) for d in decoded]
    ours = rate(lambda: [c.is_valid(p) for c, p in pairs if c is not None], n)
    reference = {k.uri: jsonschema.Draft202012Validator(registry.get(k).schema) for k in registry}
    ref_pairs = [(reference[d["event_type"]], d["payload"]) for d in decoded]
    baseline = rate(lambda: [v.is_valid(p) for v, p in ref_pairs], n)

    print(f"events: {n}")
    print(f"json.loads (baseline)          {parse:>12,.0f} events/s")
    ratio = envelope / parse
    print(f"check_envelope                 {envelope:>12,.0f} events/s  ratio {ratio:.2f}")
    print(f"payload, jsonschema (baseline) {baseline:>12,.0f} events/s")
    print(f"payload, registry (ours)       {ours:>12,.0f} events/s  ratio {ours / baseline:.1f}x")


if __name__ == "__main__":
    main()
