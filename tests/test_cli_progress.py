"""Progress of `kaad simulate`: a bar on a terminal's stderr, one step per day, nothing when piped."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

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


def test_simulate_draws_a_bar_on_a_terminal(tmp_path):
    # stderr is a real pseudo-terminal, as in an interactive shell; stdout is piped.
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli", "simulate", "--days", "2", "--out", str(tmp_path), *SMALL_OPTIONS],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            timeout=120,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0, drawn.decode(errors="replace")
    assert "simulate days" in drawn.decode(errors="replace")
    assert "2/2" in drawn.decode(errors="replace")  # the bar advanced once per day, to the end
    assert "wrote" in done.stdout.decode()  # the summary itself stays on stdout
