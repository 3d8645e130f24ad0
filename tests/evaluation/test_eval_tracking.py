"""The MLflow evaluation run holds detection.json's numbers and each attack-free day's alerts."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.tracking import EXPERIMENT, log_evaluation

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_run_logs_the_metrics_and_alerts_per_attack_free_day(mlflow_store):
    from mlflow.tracking import MlflowClient

    doc = json.loads((DOCS / "detection.json").read_text())
    run_id = log_evaluation(doc, [DOCS / "detection.json"], tracking_uri=mlflow_store)
    client = MlflowClient(mlflow_store)
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    agg = doc["aggregate"]["metrics"]
    assert run.data.metrics["detector_average_precision"] == agg["detector"]["average_precision"]["mean"]
    assert run.data.metrics["rule_recall_at_10"] == agg["rule"]["recall_at"]["10"]["mean"]
    assert run.data.params["seeds"] == ",".join(str(s["seed"]) for s in doc["seeds"])
    first = doc["seeds"][0]
    history = client.get_metric_history(run_id, f"seed{first['seed']}_alerts_per_attack_free_day")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (i, float(n)) for i, n in enumerate(first["alerts_per_attack_free_day"])
    ]
    assert [a.path for a in client.list_artifacts(run_id)] == ["detection.json"]
