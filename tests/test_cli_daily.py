"""The daily job as a new user meets it (issue 17): what `train`, `score`, `runs` and `evaluate` say."""

from __future__ import annotations

import os
import subprocess
import sys

from support import AUDIT, narrated_labels
from typer.testing import CliRunner

from cli import app

ROOT = AUDIT.parents[2]
runner = CliRunner()


def _kaad(*args: str, store) -> subprocess.CompletedProcess:
    # A process of its own: MLflow configures its loggers when first imported, which in this
    # test session happened long ago, so only a fresh interpreter shows what a user sees.
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    env.pop("MLFLOW_LOGGING_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-c", "from cli import app; app()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mlflow_keeps_quiet_unless_verbose_and_kaad_says_what_happened(tmp_path):
    store = tmp_path / "fresh" / "mlflow.db"  # never migrated: MLflow creates its tables on first use
    store.parent.mkdir()
    too_early = _kaad("score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path / "s"), store=store)
    # Scoring before any training: the one-line error, and nothing of MLflow's before it.
    assert too_early.returncode == 2
    assert too_early.stderr.splitlines() == [
        "error: no model 'kaad-detector@champion' in the tracking store; "
        "train one with --promote, or pass --bundle PATH"
    ]

    trained = _kaad(
        "train",
        str(AUDIT / "normal_3days.jsonl"),
        "--eval-data",
        str(AUDIT / "attack_day.jsonl"),
        "--labels",
        str(narrated_labels(tmp_path)),
        "--promote",
        "--out",
        str(tmp_path / "model.joblib"),
        store=store,
    )
    assert trained.returncode == 0, trained.stderr
    # No "Successfully registered model", "Created version '1'" or pickle warning on stderr...
    assert trained.stderr == ""
    # ...kaad's summary says it instead.
    summary = " ".join(trained.stdout.split())
    assert "registered as kaad-detector version 1; version 1 is the first champion" in summary

    # -v (before the command) lets MLflow speak again.
    verbose = _kaad("-v", "score", str(AUDIT / "attack_day.jsonl"), "--model", "nobody@x", store=tmp_path / "v.db")
    assert verbose.returncode == 2
    assert "INFO mlflow.store.db.utils: Creating initial MLflow database tables" in verbose.stderr


def _train_champion(tmp_path) -> str:
    """Train and promote a model through the CLI; return the id of its run."""
    from mlflow.tracking import MlflowClient

    trained = runner.invoke(
        app,
        [
            "train",
            str(AUDIT / "normal_3days.jsonl"),
            "--eval-data",
            str(AUDIT / "attack_day.jsonl"),
            "--labels",
            str(narrated_labels(tmp_path)),
            "--promote",
            "--out",
            str(tmp_path / "model.joblib"),
        ],
    )
    assert trained.exit_code == 0, trained.output
    client = MlflowClient()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("kaad").experiment_id], filter_string="tags.kind = 'isolation_forest'"
    )
    return run.info.run_id


def test_score_accepts_the_short_run_id_that_runs_shows(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    run_id = _train_champion(tmp_path)
    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and run_id[:12] in listed.stdout and run_id not in listed.stdout

    # The 12 characters `kaad runs` shows are enough to name the run to score with.
    scored = runner.invoke(
        app, ["score", str(AUDIT / "attack_day.jsonl"), "--run", run_id[:12], "--out", str(tmp_path / "s")]
    )
    assert scored.exit_code == 0, scored.output
    scoring = MlflowClient().get_experiment_by_name("kaad-scoring")
    (score_run,) = MlflowClient().search_runs([scoring.experiment_id])
    assert score_run.data.params["model"] == f"run {run_id}"

    # A prefix that starts several runs names none of them: the error lists the candidates.
    client = MlflowClient()
    seen: dict[str, str] = {}
    while True:  # at most 17 runs until two share a first hex digit
        other = client.create_run(client.get_experiment_by_name("kaad").experiment_id).info.run_id
        if other[0] in seen:
            break
        seen[other[0]] = other
    ambiguous = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--run", other[0]])
    assert ambiguous.exit_code == 2
    assert f"error: run id {other[0]!r} is ambiguous" in ambiguous.stderr
    assert other in ambiguous.stderr and seen[other[0]] in ambiguous.stderr

    unknown = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--run", "zz"])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == (
        "error: no run whose id starts with 'zz' in the tracking store; `kaad runs` lists them"
    )


def test_a_wrong_alias_of_an_existing_model_names_the_aliases_it_has(tmp_path, mlflow_store):
    _train_champion(tmp_path)
    result = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--model", "kaad-detector@nosuch"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: model 'kaad-detector' has no alias 'nosuch'; its aliases: champion (version 1)"
    )
    assert "--promote" not in result.stderr  # the model is there: training another is not the fix


def test_evaluate_names_a_missing_file_in_one_line(tmp_path):
    labels = narrated_labels(tmp_path)
    missing_scores = runner.invoke(app, ["evaluate", "nope.csv", "--labels", str(labels)])
    assert missing_scores.exit_code == 2
    assert missing_scores.stderr.strip() == "error: 'nope.csv': no such file or directory"

    scores = tmp_path / "scores.csv"
    scores.write_text("identity,window_start,anomaly_score\nsystem:serviceaccount:shop:cart,2026-03-05T02:00:00Z,1.0\n")
    missing_labels = runner.invoke(app, ["evaluate", str(scores), "--labels", "no/labels.csv"])
    assert missing_labels.exit_code == 2
    assert missing_labels.stderr.strip() == "error: 'no/labels.csv': no such file or directory"
    assert "Errno" not in missing_scores.output + missing_labels.output


def test_the_example_in_evaluate_help_reads_a_file_score_writes_by_default(tmp_path, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    labels = narrated_labels(tmp_path)
    help_text = " ".join(runner.invoke(app, ["evaluate", "--help"]).stdout.split())
    example = re.search(r"kaad evaluate out/score-(\S+)/kaad-\1\.(\w+) --labels", help_text)
    assert example is not None, help_text
    extension = example.group(2)

    trained = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--no-track", "--out", "model.joblib"])
    assert trained.exit_code == 0, trained.output
    # score with its default --format and --out, as the example assumes
    scored = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--bundle", "model.joblib", "--no-track"])
    assert scored.exit_code == 0, scored.output

    evaluated = runner.invoke(
        app, ["evaluate", f"out/score-2026-03-05/kaad-2026-03-05.{extension}", "--labels", str(labels)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "stolen_token" in evaluated.stdout
