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


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(text.split())


def _train(tmp_path, labels, *extra):
    return runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--eval-data",
                               str(AUDIT / "attack_day.jsonl"), "--labels", str(labels),
                               "--out", str(tmp_path / "model.joblib"), *extra])


def test_with_a_signing_key_the_champion_is_signed_and_another_key_is_refused(tmp_path, mlflow_store, monkeypatch):
    """Train signs with the key file; scoring the champion verifies; a wrong key is a clear refusal."""
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    key_file = tmp_path / "kaad.key"
    key_file.write_text("kaad-test-signing-key-0123456789abcdef\n")
    trained = _train(tmp_path, _labels(tmp_path), "--promote", "--signing-key-file", str(key_file))
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "model.joblib.sig").is_file()

    scored = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path / "s"),
                                 "--format", "csv", "--no-track", "--signing-key-file", str(key_file)])
    assert scored.exit_code == 0, scored.output

    monkeypatch.setenv("KAAD_SIGNING_KEY", "someone-elses-key-fedcba9876543210")
    refused = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path / "s"),
                                  "--no-track"])
    assert refused.exit_code == 2
    assert "does not carry a valid signature for the configured key" in _flat(refused.stderr)
    assert "Traceback" not in refused.output
