"""`kaad simulate --change`: how much the simulated cluster changes, and what it says it changed."""

from __future__ import annotations

from sim_data import read_labels
from typer.testing import CliRunner

from cli import app

SMALL = ["--nodes", "2", "--rate-scale", "0.01"]


def test_change_zero_freezes_the_cast_and_labels_nothing(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--days", "2", "--change", "0", "--out", str(tmp_path), *SMALL])
    assert result.exit_code == 0, result.output
    assert "benign changes" not in result.stdout
    assert read_labels(tmp_path / "labels.csv") == []


def test_change_names_what_changed_and_labels_it(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--days", "2", "--change", "5", "--out", str(tmp_path), *SMALL])
    assert result.exit_code == 0, result.output
    assert "benign changes (labelled benign_*): " in result.stdout
    assert "rollout" in result.stdout  # 5 x 18 rollouts a week on six apps: some on a Monday
    scenarios = {row["scenario"] for row in read_labels(tmp_path / "labels.csv")}
    assert "benign_rollout" in scenarios and all(s.startswith("benign_") for s in scenarios)


def test_a_negative_change_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["simulate", "--days", "1", "--change", "-1", "--out", str(tmp_path), *SMALL])
    assert result.exit_code == 2
    assert "--change" in result.stderr and "greater than or equal to 0" in result.stderr
