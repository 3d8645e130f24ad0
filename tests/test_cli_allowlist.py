"""`kaad allowlist check FILE`: read an allowlist as `score` would, and say what it holds or what is wrong."""

from __future__ import annotations

from typer.testing import CliRunner

from cli import app

runner = CliRunner()

GOOD = """# known noise
[[suppress]]
identity = "system:serviceaccount:monitoring:prometheus-k8s"
namespace = "monitoring"
covers = ["n_exec"]
reason = "scrapes every namespace by design"
expires = 2099-12-31

[[suppress]]
identity = "system:node:*"
reason = "kubelets\\u001b[2J"  # a TOML escape: a real ESC in the reason
expires = 2020-01-01
"""


def test_a_valid_allowlist_is_listed_one_line_per_entry(tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["allowlist", "check", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == [
        "allow.toml:2: identity system:serviceaccount:monitoring:prometheus-k8s namespace monitoring; "
        "reason: scrapes every namespace by design; expires 2099-12-31; covers n_exec",
        "allow.toml:9: identity system:node:*; reason: kubelets\\x1b[2J; expires 2020-01-01; covers - "
        "(expired: not applied)",
        "1 active, 1 expired entries",
    ]


def test_a_wrong_table_or_a_missing_reason_is_an_error_naming_file_and_line(tmp_path):
    """`[[allow]]` instead of `[[suppress]]` used to be read as an empty allowlist, silently."""
    path = tmp_path / "allow.toml"
    path.write_text('# noise\n\n[[allow]]\nidentity = "system:node:*"\nreason = "kubelets"\nexpires = 2099-01-01\n')
    wrong = runner.invoke(app, ["allowlist", "check", str(path)])
    assert wrong.exit_code == 2
    assert wrong.stderr == f"error: {path}:3: unknown table 'allow'; entries are [[suppress]] tables\n"

    path.write_text('[[suppress]]\nidentity = "system:node:*"\nexpires = 2099-01-01\n')
    unexplained = runner.invoke(app, ["allowlist", "check", str(path)])
    assert unexplained.exit_code == 2
    assert f"{path}:1: entry 1: every entry needs a reason and an expires date" in unexplained.stderr


def test_score_help_points_to_the_allowlist_format():
    result = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.stdout.split())
    assert "[[suppress]] entries with identity, reason, expires" in text
    assert "README.md, 'An allowlist'" in text and "kaad allowlist check FILE" in text
