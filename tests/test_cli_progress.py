"""Progress of `kaad simulate` and `kaad train`: bars on a terminal's stderr, nothing when piped."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from support import AUDIT
from typer.testing import CliRunner

from cli import app
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
SMALL_OPTIONS = ["--nodes", "1", "--namespaces", "1", "--humans", "3", "--rate-scale", "0.01"]


def test_simulate_reports_progress_once_per_day(tmp_path):
    calls = []
    simulate(
        tmp_path,
        days=3,
        seed=1,
        spec=ClusterSpec(nodes=1, app_namespaces=1, humans=3, rate_scale=0.01),
        on_day=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_simulate_prints_no_bar_when_stderr_is_not_a_terminal(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--days", "2", "--out", str(tmp_path), *SMALL_OPTIONS])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def _on_a_terminal(args: list[str]) -> tuple[subprocess.CompletedProcess, str]:
    """Run kaad with stderr on a real pseudo-terminal, as in an interactive shell; stdout piped.

    The terminal is read while kaad runs, as a terminal emulator does: a pseudo-terminal holds
    only a few kilobytes, and a bar redrawn often on a slow machine would otherwise block kaad.
    """
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
        )
        os.close(follower)
        follower = -1
        try:
            stdout, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        reader.join(timeout=30)
    finally:
        if follower != -1:
            os.close(follower)
    os.close(leader)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, None)
    return done, b"".join(chunks).decode(errors="replace")


def test_simulate_draws_a_bar_on_a_terminal(tmp_path):
    done, drawn = _on_a_terminal(["simulate", "--days", "2", "--out", str(tmp_path), *SMALL_OPTIONS])
    assert done.returncode == 0, drawn
    assert "simulate days" in drawn
    assert "2/2" in drawn  # the bar advanced once per day, to the end
    assert "wrote" in done.stdout.decode()  # the summary itself stays on stdout


def test_train_shows_its_slow_steps_on_a_terminal_and_nothing_when_piped(tmp_path, mlflow_store):
    # Reading and featurising history has its byte bar; evaluating on held-out data and logging
    # the run to MLflow (seconds on a new store: tables created, model registered) say what
    # kaad is doing while they run.
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "identity,window_start,scenario\nsystem:serviceaccount:shop:cart,2026-03-05T02:00:00Z,stolen_token\n"
    )
    args = ["train", str(AUDIT / "normal_3days.jsonl"), "--out", str(tmp_path / "m.joblib")]
    args += ["--eval-data", str(AUDIT / "attack_day.jsonl"), "--labels", str(labels)]
    done, drawn = _on_a_terminal([*args, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert done.returncode == 0, drawn
    assert "train: read history" in drawn
    assert "train: evaluate on the held-out data" in drawn
    assert "train: log the run to MLflow" in drawn

    # Piped, into a store whose tables exist already (the steps are as slow, only quiet).
    piped = CliRunner().invoke(app, [*args, "--tracking-uri", mlflow_store])
    assert piped.exit_code == 0, piped.output
    assert "train:" not in piped.stderr
