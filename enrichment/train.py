"""Train the bot-probability model on the synthetic clickstream and write a versioned artefact.

    uv run python -m enrichment.train --seed 7 --out enrichment/models/

Writes ``bot_score-<version>.skops`` (scikit-learn pipeline, skops format: loads without
pickle) and ``bot_score-<version>.json`` (model card: version, features, training data and
seed, sha256 of the artefact, metrics). The same seed gives the same model (coefficients,
metrics); the file bytes, hence the sha256, differ between runs (zip timestamps).

Data: ``simulator.training.labelled_events`` (the simulated shop's sessions, labelled by the
visitor's device, a field that is never a feature; half of the bots' sessions in training
carry a human browser's user agent, "spoofed").
Evaluation uses a held-out stream from another seed: as generated, and with every bot spoofed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from enrichment.model import FEATURES, EventView, features
from enrichment.user_agent import parse_user_agent
from simulator.training import START, labelled_events

NAME = "bot_score"
VERSION = "1.0.0"
BATCH = 100  # events per request, as the producers send them


def dataset(
    seed: int, events: int, users: int, spoof_share: float
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features and labels, computed batch by batch as the API computes them."""
    xs, ys = [], []
    batch: list[EventView] = []
    labels: list[int] = []

    def flush() -> None:
        if batch:
            xs.append(features(batch))
            ys.extend(labels)
            batch.clear()
            labels.clear()

    for event, is_bot in labelled_events(seed, events, users, spoof_share):
        agent = event["context"].get("user_agent")
        batch.append(
            EventView(
                event_type=event["event_type"],
                event_timestamp=event["event_timestamp"],
                payload=event["payload"],
                context=event["context"],
                user_agent=parse_user_agent(agent),
                user_agent_string=agent,
            )
        )
        labels.append(int(is_bot))
        if len(batch) == BATCH:
            flush()
    flush()
    return np.vstack(xs), np.array(ys, dtype=np.int64)


def evaluate(model: Pipeline, x: NDArray[np.float64], y: NDArray[np.int64]) -> dict[str, float]:
    p = model.predict_proba(x)[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4),
        "accuracy": round(float(accuracy_score(y, p >= 0.5)), 4),
        "events": len(y),
        "bot_share": round(float(y.mean()), 4),
    }


def train(seed: int, out: Path, events: int = 40_000, users: int = 3_000) -> Path:
    x, y = dataset(seed, events, users, spoof_share=0.5)
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)),
        ]
    )
    model.fit(x, y)
    holdout_seed = seed + 1000
    metrics = {
        "train": evaluate(model, x, y),
        "holdout": evaluate(model, *dataset(holdout_seed, events // 2, users, spoof_share=0.0)),
        "holdout_all_bots_spoofed": evaluate(
            model, *dataset(holdout_seed, events // 2, users, spoof_share=1.0)
        ),
    }
    import skops.io as sio

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{NAME}-{VERSION}.skops"
    sio.dump(model, path)
    card = {
        "name": NAME,
        "version": VERSION,
        "task": "probability that an event comes from a bot (crawler, script)",
        "score": "bot_probability",
        "estimator": "StandardScaler + LogisticRegression(class_weight=balanced)",
        "features": list(FEATURES),
        "coefficients": dict(zip(FEATURES, np.round(model[-1].coef_[0], 4).tolist(), strict=True)),
        "training_data": {
            "generator": "simulator.training.labelled_events",
            "seed": seed,
            "users": users,
            "events": events,
            "start": START.isoformat(),
            "batch_size": BATCH,
            "bot_sessions_with_spoofed_user_agent": 0.5,
            "holdout_seed": holdout_seed,
        },
        "metrics": metrics,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "limitations": "Trained on synthetic sessions only; behaviour features need several "
        "events of a session in one batch; not calibrated on real traffic.",
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the bot-probability model.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "models")
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args()
    path = train(args.seed, args.out, args.events)
    card = json.loads(path.with_suffix(".json").read_text())
    sys.stdout.write(f"wrote {path} ({path.stat().st_size} bytes)\n")
    sys.stdout.write(json.dumps(card["metrics"], indent=2) + "\n")


if __name__ == "__main__":
    main()
