"""The daily job as a new user meets it (issue 17): what `train`, `score`, `runs` and `evaluate` say."""

from __future__ import annotations

import os
import subprocess
import sys

from support import AUDIT

ROOT = AUDIT.parents[2]


def _labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        "identity,window_start,scenario\nsystem:serviceaccount:shop:cart,2026-03-05T02:00:00Z,stolen_token\n"
    )
    return path


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
        str(_labels(tmp_path)),
        "--promote",
        "--out",
        str(tmp_path / "model.joblib"),
        store=store,
    )
    assert trained.returncode == 0, trained.stderr
    # No "Successfully registered model", "Created version '1'" or pickle warning on stderr...
    assert trained.stderr == ""
    # ...kaad's summary says it instead.
    assert "version 1 is the first champion" in trained.stdout

    # -v (before the command) lets MLflow speak again.
    verbose = _kaad("-v", "score", str(AUDIT / "attack_day.jsonl"), "--model", "nobody@x", store=tmp_path / "v.db")
    assert verbose.returncode == 2
    assert "INFO mlflow.store.db.utils: Creating initial MLflow database tables" in verbose.stderr
