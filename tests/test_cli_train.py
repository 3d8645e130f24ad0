"""`kaad train`, `runs`, `evaluate` and scoring with the registered champion, through the CLI."""

from __future__ import annotations

from support import AUDIT, narrated_labels
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_train_then_score_with_the_champion_then_evaluate(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    labels = narrated_labels(tmp_path)
    trained = runner.invoke(
        app,
        [
            "train",
            str(AUDIT / "normal_3days.jsonl"),
            "--eval-data",
            str(AUDIT / "attack_day.jsonl"),
            "--labels",
            str(labels),
            "--promote",
            "--out",
            str(tmp_path / "model.joblib"),
            "--cluster",
            "narrated",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert "version 1 is the first champion" in trained.stdout
    # Three whole days, said as a person would: no pandas offsets, the end where it ends.
    assert "2026-03-02 00:00 .. 2026-03-05 00:00 UTC (end exclusive)" in trained.stdout
    experiment = MlflowClient(mlflow_store).get_experiment_by_name("kaad")
    (run,) = [
        r
        for r in MlflowClient(mlflow_store).search_runs([experiment.experiment_id])
        if r.data.tags.get("kind") == "isolation_forest"
    ]
    assert run.data.tags["cluster"] == "narrated"

    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and run.info.run_id[:12] in listed.stdout
    # `kaad runs` names its columns as MLflow's runs table names the metrics (README).
    from models.tracking import recent_runs

    row = recent_runs(tracking_uri=mlflow_store).iloc[0]
    assert row["ap"] == run.data.metrics["ap"] and row["train_windows"] == run.data.metrics["train_windows"]

    scored = runner.invoke(
        app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path / "s"), "--format", "parquet"]
    )
    assert scored.exit_code == 0, scored.output
    scoring = MlflowClient(mlflow_store).get_experiment_by_name("kaad-scoring")
    (score_run,) = MlflowClient(mlflow_store).search_runs([scoring.experiment_id])
    assert score_run.data.params["day"] == "2026-03-05"
    assert "kaad-detector version 1" in score_run.data.params["model"]
    assert score_run.data.metrics["windows"] > 0

    evaluated = runner.invoke(
        app, ["evaluate", str(tmp_path / "s" / "kaad-2026-03-05.parquet"), "--labels", str(labels)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "stolen_token" in evaluated.stdout and "average precision" in evaluated.stdout


def test_score_without_a_champion_says_what_to_do(tmp_path, mlflow_store):
    result = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no model 'kaad-detector@champion'" in result.stderr


def test_bad_time_and_empty_history_are_clear_errors(tmp_path, mlflow_store):
    bad = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--since", "last tuesday"])
    assert bad.exit_code == 2 and "is not a time" in bad.stderr
    empty = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--since", "2030-01-01", "--no-track"])
    assert empty.exit_code == 2 and "no events to train on" in empty.stderr


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(text.split())


def _train(tmp_path, labels, *extra):
    return runner.invoke(
        app,
        [
            "train",
            str(AUDIT / "normal_3days.jsonl"),
            "--eval-data",
            str(AUDIT / "attack_day.jsonl"),
            "--labels",
            str(labels),
            "--out",
            str(tmp_path / "model.joblib"),
            *extra,
        ],
    )


def test_labels_that_match_nothing_are_counted_and_such_a_run_is_not_promoted(tmp_path, mlflow_store):
    """A label for an identity or hour absent from the evaluation data is reported, not dropped.

    When no label matches, there is nothing to measure: average precision is NaN, and a NaN
    run does not become champion, not even the first one.
    """
    from mlflow.tracking import MlflowClient

    labels = tmp_path / "labels.csv"
    labels.write_text(
        "identity,window_start,scenario\n"
        "system:serviceaccount:shop:cart,2026-03-05T02:00:00Z,stolen_token\n"
        "mallory,2026-03-05T02:00:00Z,typo_in_the_identity\n"
    )
    partly = _train(tmp_path, labels)
    assert partly.exit_code == 0, partly.output
    assert "2, of which 1 matched no evaluated window" in _flat(partly.stdout)
    experiment = MlflowClient(mlflow_store).get_experiment_by_name("kaad")
    (run,) = [
        r
        for r in MlflowClient(mlflow_store).search_runs([experiment.experiment_id])
        if r.data.tags.get("kind") == "isolation_forest"
    ]
    assert run.data.metrics["eval_unmatched_labels"] == 1 and run.data.metrics["eval_labels"] == 2

    labels.write_text("identity,window_start,scenario\nmallory,2026-03-05T02:00:00Z,typo_in_the_identity\n")
    nothing = _train(tmp_path, labels, "--promote")
    assert nothing.exit_code == 0, nothing.output
    assert "1, of which 1 matched no evaluated window" in _flat(nothing.stdout)
    assert "not promoted" in _flat(nothing.stdout) and "only a measured model becomes champion" in _flat(nothing.stdout)


def test_a_champion_measured_on_another_evaluation_set_is_kept_unless_forced(tmp_path, mlflow_store):
    """Promotion compares average precisions only on the same events and labels.

    The champion was measured on a hard label set (its attack hour ranks 31st). The second run
    is measured on an easy one and scores a perfect 1.0, which says nothing about the champion:
    the champion stays and the output says why; --force-promote replaces it on purpose.
    A run on the same set as the champion is compared as before.
    """
    hard = tmp_path / "hard-labels.csv"
    hard.write_text("identity,window_start,scenario\nsystem:serviceaccount:shop:cart,2026-03-05T03:00:00Z,late\n")
    first = _train(tmp_path, hard, "--promote")
    assert first.exit_code == 0 and "version 1 is the first champion" in _flat(first.stdout)

    other = narrated_labels(tmp_path)
    kept = _train(tmp_path, other, "--promote")
    assert kept.exit_code == 0, kept.output
    assert "average precision 1.000" in _flat(kept.stdout)
    assert "champion version 1 was measured on another evaluation set" in _flat(kept.stdout)
    assert "not promoted" in _flat(kept.stdout)

    forced = _train(tmp_path, other, "--force-promote")
    assert forced.exit_code == 0, forced.output
    assert "version 3 is champion by --force-promote" in _flat(forced.stdout)

    # The same events and labels hash the same, so the next run is compared, not refused.
    again = _train(tmp_path, other, "--promote")
    assert "version 4 is champion (average precision 1.000, version 3 had 1.000)" in _flat(again.stdout)


def test_with_a_signing_key_the_champion_is_signed_and_another_key_is_refused(tmp_path, mlflow_store, monkeypatch):
    """Train signs with the key file; scoring the champion verifies; a wrong key is a clear refusal."""
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    key_file = tmp_path / "kaad.key"
    key_file.write_text("kaad-test-signing-key-0123456789abcdef\n")
    trained = _train(tmp_path, narrated_labels(tmp_path), "--promote", "--signing-key-file", str(key_file))
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "model.joblib.sig").is_file()

    scored = runner.invoke(
        app,
        [
            "score",
            str(AUDIT / "attack_day.jsonl"),
            "--out",
            str(tmp_path / "s"),
            "--format",
            "csv",
            "--no-track",
            "--signing-key-file",
            str(key_file),
        ],
    )
    assert scored.exit_code == 0, scored.output

    monkeypatch.setenv("KAAD_SIGNING_KEY", "someone-elses-key-fedcba9876543210")
    refused = runner.invoke(app, ["score", str(AUDIT / "attack_day.jsonl"), "--out", str(tmp_path / "s"), "--no-track"])
    assert refused.exit_code == 2
    assert "does not carry a valid signature for the configured key" in _flat(refused.stderr)
    assert "Traceback" not in refused.output


def test_a_time_range_reports_what_was_trained_on_and_what_was_left_out(tmp_path, mlflow_store):
    """Three days read (102 events each, about half before noon), noon to noon of the middle two
    days trained on: the summary and the run's metrics say so, instead of letting the 306 events
    read pass for the training data. (A single day is refused since detector v2: one day cannot
    be both fitted and held out; see test_one_day_of_history_is_refused_with_the_reason.)"""
    from mlflow.tracking import MlflowClient

    trained = runner.invoke(
        app,
        [
            "train",
            str(AUDIT / "normal_3days.jsonl"),
            "--since",
            "2026-03-02T12:00",
            "--until",
            "2026-03-04T12:00",
            "--out",
            str(tmp_path / "model.joblib"),
        ],
    )
    assert trained.exit_code == 0, trained.output
    text = _flat(trained.stdout)
    assert "history 306 events" in text
    assert "trained on 204 events; left out: 50 before --since, 52 at or after --until" in text
    experiment = MlflowClient(mlflow_store).get_experiment_by_name("kaad")
    (run,) = [
        r
        for r in MlflowClient(mlflow_store).search_runs([experiment.experiment_id])
        if r.data.tags.get("kind") == "isolation_forest"
    ]
    metrics = run.data.metrics
    assert (metrics["events_read"], metrics["train_events"]) == (306, 204)
    assert (metrics["events_before_since"], metrics["events_after_until"]) == (50, 52)

    whole = runner.invoke(app, ["train", str(AUDIT / "normal_3days.jsonl"), "--no-track", "--out", str(tmp_path / "w")])
    assert whole.exit_code == 0, whole.output
    assert "trained on" not in whole.stdout  # nothing left out, nothing more to say


def test_alerts_per_day_sets_the_threshold_on_held_out_days_and_is_logged(tmp_path, mlflow_store):
    """Three normal days: day 1 warms up, day 2 is fitted, day 3 is held out. Asking for two
    alerts a day puts the threshold where the held-out day gives at most two alerting
    identity-days; the bundle keeps the budget, MLflow logs it with the rate measured, the
    held-out days and the features that were constant over the fit day."""
    from mlflow.tracking import MlflowClient

    from models.persistence import load_bundle

    model = tmp_path / "model.joblib"
    trained = runner.invoke(
        app, ["train", str(AUDIT / "normal_3days.jsonl"), "--alerts-per-day", "2", "--out", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    assert "1 warm-up, 1 fit, 1 held out" in _flat(trained.stdout)
    bundle = load_bundle(model)
    assert bundle.alert is not None and bundle.alert.alerts_per_day == 2
    assert bundle.alert.n_days == 1 and bundle.alert.expected_alerts_per_day <= 2
    assert bundle.threshold == bundle.alert.threshold
    assert bundle.training_end.startswith("2026-03-04 23:00")  # the last held-out window
    experiment = MlflowClient(mlflow_store).get_experiment_by_name("kaad")
    (run,) = [
        r
        for r in MlflowClient(mlflow_store).search_runs([experiment.experiment_id])
        if r.data.tags.get("kind") == "isolation_forest"
    ]
    metrics = run.data.metrics
    # Asked: a parameter; measured on the held-out day: the metric (both rounded to 4 decimals).
    assert run.data.params["alerts_per_day"] == "2" and metrics["days_held_out"] == 1
    assert metrics["alerts_per_day"] == round(bundle.alert.expected_alerts_per_day, 4)
    assert metrics["threshold"] == round(bundle.threshold, 4) and metrics["constant_features"] > 0
    names = {a.path for a in MlflowClient(mlflow_store).list_artifacts(run.info.run_id)}
    assert "constant_features.json" in names


def test_contamination_is_refused_with_what_replaced_it(tmp_path):
    refused = runner.invoke(
        app,
        [
            "train",
            str(AUDIT / "normal_3days.jsonl"),
            "--contamination",
            "0.01",
            "--no-track",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert refused.exit_code == 2
    assert "--contamination is gone" in refused.stderr and "--alerts-per-day" in refused.stderr
    assert not (tmp_path / "m").exists()


def test_one_day_of_history_is_refused_with_the_reason(tmp_path):
    """One day cannot be fitted and held out at once: the message says how many days are needed."""
    refused = runner.invoke(
        app,
        ["train", str(AUDIT / "attack_day.jsonl"), "--no-track", "--out", str(tmp_path / "m")],
    )
    assert refused.exit_code == 2
    assert "at least two UTC days" in refused.stderr and "got 1" in refused.stderr
    assert "Traceback" not in refused.output
