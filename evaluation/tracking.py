"""The MLflow evaluation run: the same metrics as detection.json, plus alerts per quiet day."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.protocol import METHODS
from models.tracking import configure_tracking

EXPERIMENT = "kaad-eval"


def _flat(doc: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for method in METHODS:
        agg = doc["aggregate"]["metrics"][method]
        out[f"{method}_average_precision"] = agg["average_precision"]["mean"]
        out |= {f"{method}_recall_at_{k}": v["mean"] for k, v in agg["recall_at"].items()}
        out |= {f"{method}_daily_recall_at_{k}": v["mean"] for k, v in agg["daily_recall_at"].items()}
        out[f"{method}_median_identity_rank"] = agg["median_identity_rank"]["mean"]
        for s in doc["seeds"]:
            m = s["metrics"][method]
            out[f"seed{s['seed']}_{method}_average_precision"] = m["average_precision"]
            out[f"seed{s['seed']}_{method}_attacks_top1_identity"] = float(m["attacks_top1_identity"])
    out["alerts_per_attack_free_day_mean"] = doc["aggregate"]["alerts_per_attack_free_day"]["mean"]
    out["detector_attacks_alerted"] = float(sum(s["metrics"]["detector"]["attacks_alerted"] for s in doc["seeds"]))
    return {k: float(v) for k, v in out.items() if v is not None}


def log_evaluation(doc: dict, files: list[Path], tracking_uri: str | None = None) -> str:
    """Log one run to the ``kaad-eval`` experiment; return its id."""
    import mlflow

    _, artifacts = configure_tracking(tracking_uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    )
    p = doc["parameters"]
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"eval {p['size']}", tags={"kind": "evaluation"}
    ) as run:
        mlflow.log_params(
            {
                "size": p["size"],
                "seeds": ",".join(map(str, p["seeds"])),
                "train_days": p["train_days"],
                "heldout_days": p["heldout_days"],
                "spec": json.dumps(p["spec"])[:500],
                "git_commit": doc["git_commit"],
                "real": doc["real"]["status"],
            }
        )
        mlflow.log_metrics(_flat(doc))
        for s in doc["seeds"]:
            for step, n in enumerate(s["alerts_per_attack_free_day"]):
                mlflow.log_metric(f"seed{s['seed']}_alerts_per_attack_free_day", float(n), step=step)
        for path in files:
            mlflow.log_artifact(str(path))
    return run.info.run_id
