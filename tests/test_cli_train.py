"""`kaad train`, `runs`, `evaluate` and scoring with the registered champion, through the CLI."""

from __future__ import annotations

from typer.testing import CliRunner

from cli import app
from support import AUDIT

runner = CliRunner()


def _labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("identity,window_start,scenario\n"
                    "system:serviceaccount:shop:cart,2026-03-05T02:00:00Z,stolen_token\n")
    return path


def test_train_then_score_with_the_champion_then_evaluate(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    labels = _labels(tmp_path)
    trained = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--eval-data",
                                  str(AUDIT / "attack_day.jsonl"), "--labels", str(labels), "--promote",
                                  "--out", str(tmp_path / "model.joblib"), "--cluster", "narrated"])
    assert trained.exit_code == 0, trained.output
    assert "version 1 is the first champion" in trained.stdout
    experiment = MlflowClient(mlflow_store).get_experiment_by_name("kaad")
    (run,) = [r for r in MlflowClient(mlflow_store).search_runs([experiment.experiment_id])
              if r.data.tags.get("kind") == "isolation_forest"]
    assert run.data.tags["cluster"] == "narrated"

    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and run.info.run_id[:12] in listed.stdout

    scored = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path / "s"),
                                 "--format", "parquet"])
    assert scored.exit_code == 0, scored.output
    scoring = MlflowClient(mlflow_store).get_experiment_by_name("kaad-scoring")
    (score_run,) = MlflowClient(mlflow_store).search_runs([scoring.experiment_id])
    assert score_run.data.params["day"] == "2026-03-05"
    assert "kaad-detector version 1" in score_run.data.params["model"]
    assert score_run.data.metrics["windows"] > 0

    evaluated = runner.invoke(app, ["evaluate", str(tmp_path / "s" / "kaad-2026-03-05.parquet"),
                                    "--labels", str(labels)])
    assert evaluated.exit_code == 0, evaluated.output
    assert "stolen_token" in evaluated.stdout and "average precision" in evaluated.stdout


def test_score_without_a_champion_says_what_to_do(tmp_path, mlflow_store):
    result = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no model 'kaad-detector@champion'" in result.stderr


def test_bad_time_and_empty_history_are_clear_errors(tmp_path, mlflow_store):
    bad = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--since", "last tuesday"])
    assert bad.exit_code == 2 and "is not a time" in bad.stderr
    empty = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--since", "2030-01-01",
                                "--no-track"])
    assert empty.exit_code == 2 and "no events to train on" in empty.stderr
