"""The command line, driven through typer's CliRunner and checked through the library."""

from __future__ import annotations

import json

import pandas as pd
from support import AUDIT
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_ingest_prints_a_summary_and_writes_parquet(tmp_path):
    out = tmp_path / "events.parquet"
    result = runner.invoke(app, ["ingest", str(AUDIT / "stages.jsonl"), str(AUDIT / "exec.jsonl"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "events kept  4" in result.stdout
    assert "merged       3" in result.stdout
    assert "system:serviceaccount:payments:api" in result.stdout
    table = pd.read_parquet(out)
    assert len(table) == 4 and table["audit_id"].is_unique


def test_strict_turns_rejects_into_exit_code_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text((AUDIT / "exec.jsonl").read_text() + "not json\n")
    lenient = runner.invoke(app, ["ingest", str(bad)])
    assert lenient.exit_code == 0
    assert f"{bad}:2: not JSON" in lenient.stderr
    strict = runner.invoke(app, ["ingest", str(bad), "--strict"])
    assert strict.exit_code == 2
    assert "1 rejected input(s) and --strict was given" in strict.stderr
    assert "events kept  1" in strict.stdout  # the good line is still read and counted


def test_rejects_file_lists_every_reject(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(["=cmd|' /C calc'!A0", "{}", "[3]"]) + "\n")
    rejects = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["ingest", str(bad), "--rejects", str(rejects)])
    assert result.exit_code == 0
    table = pd.read_csv(rejects)
    assert table["line"].tolist() == [1, 2, 3]
    assert not table["detail"].str.startswith("=").any()


def test_missing_input_is_one_line_and_exit_2():
    result = runner.invoke(app, ["ingest", "no/such/file.jsonl"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: 'no/such/file.jsonl': no such file or directory"
    assert "Traceback" not in result.output


def test_hostile_identity_is_printed_inert(tmp_path):
    event = json.loads((AUDIT / "exec.jsonl").read_text())
    event["user"]["username"] = "[bold red]evil[/bold red]\x1b[2J"
    path = tmp_path / "hostile.jsonl"
    path.write_text(json.dumps(event) + "\n")
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0
    assert "[bold red]evil[/bold red]\\x1b[2J" in result.stdout
    assert "\x1b" not in result.stdout
