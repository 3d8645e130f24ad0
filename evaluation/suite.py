"""The whole evaluation: every seed, the aggregate, the real harness, in one document."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from evaluation.aggregate import aggregate
from evaluation.config import EvalConfig
from evaluation.protocol import run_seed
from evaluation.schema import SCHEMA_VERSION
from reports.progress import count_progress
from scenarios.attacks import ATTACKS

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = (
    "Per seed: simulate train_days + heldout_days days; ingest the first train_days to Parquet and "
    "train the detector on them with the default TrainConfig (seeded); score the held-out days in "
    "order with the model's day state, as the daily job does (score_day, default threshold; nothing "
    "is accepted). Then inject each attack in each variant alone into a held-out day (the days in "
    "turn): its events go to an extra file beside the day's, and the day is scored with it against "
    "that morning's state. Detector ranks and alerts are of identity-days. Baselines on the same "
    "days: robust z-score (the largest absolute deviation from the "
    "identity's own baseline) and a rule (events per window with an action family or a source /16 "
    "the identity never had in training)."
)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def steps_per_seed(config: EvalConfig) -> int:
    n_attacks = len(config.attacks or ATTACKS) * len(config.variants)
    return config.train_days + config.heldout_days + 1 + config.heldout_days + n_attacks


def run_evaluation(config: EvalConfig, work: Path, *, real: dict | None = None, generated_by: str = "") -> dict:
    """Run the protocol for every seed of ``config`` under ``work``; return detection.json's content.

    ``real`` is the real harness's entry (see :func:`evaluation.real.run`); None records that
    it was not asked for.
    """
    seeds = []
    with count_progress(steps_per_seed(config) * len(config.seeds), f"eval ({config.size})") as advance:
        for seed in config.seeds:
            seeds.append(run_seed(config, seed, work / f"seed-{seed}", advance))
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_by": generated_by or f"python -m evaluation --size {config.size}",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _commit(),
        "parameters": config.as_dict() | {"protocol": PROTOCOL},
        "seeds": seeds,
        "aggregate": aggregate(seeds),
        "real": real or {"status": "missing", "note": "skipped on request (--real skip)", "result": None},
    }
