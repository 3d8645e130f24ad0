"""`kaad score` end to end through the CLI: formats, hostile text, exit codes, allowlist, HTML."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from models.detector import DetectorParams
from models.persistence import save_bundle
from pipelines.train import TrainConfig, train
from support import AUDIT, ensure_chromium

runner = CliRunner()
HOSTILE_UA = "<script>alert(1)</script>"
HOSTILE_NAME = '=HYPERLINK("http://x")'
HOSTILE_USER = "[bold red]evil\x1b[2J"


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    """A model of the narrated three ordinary days (cart, alice, a kubelet)."""
    path = tmp_path_factory.mktemp("bundle") / "model.joblib"
    result = train([str(AUDIT / "normal_3days.jsonl")], TrainConfig(params=DetectorParams(seed=0, min_history=3)))
    save_bundle(result.bundle, path)
    return path


@pytest.fixture(scope="module")
def hostile_day(tmp_path_factory):
    """The narrated attack day, with the intruder's strings made hostile in every field."""
    out = tmp_path_factory.mktemp("hostile") / "day.jsonl"
    lines = []
    for line in (AUDIT / "attack_day.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["userAgent"] == "curl/8.5.0":
            event["userAgent"] = HOSTILE_UA
            event.setdefault("objectRef", {})["name"] = HOSTILE_NAME
        lines.append(json.dumps(event))
        if event["requestReceivedTimestamp"].startswith("2026-03-05T02:1"):
            twin = dict(event, auditID=event["auditID"][:-4] + "ffff",
                        user={"username": HOSTILE_USER, "groups": ["system:authenticated"]})
            lines.append(json.dumps(twin))
    out.write_text("\n".join(lines) + "\n")
    return out


def _score(tmp_path, bundle_path, day_file, *extra):
    return runner.invoke(app, ["score", str(day_file), "--bundle", str(bundle_path), "--no-track",
                               "--out", str(tmp_path), "--format", "table,csv,json,parquet,html", *extra])


def test_every_format_is_written_and_agrees(tmp_path, bundle_path, hostile_day):
    result = _score(tmp_path, bundle_path, hostile_day)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "kaad-2026-03-05.parquet")
    doc = json.loads((tmp_path / "kaad-2026-03-05.json").read_text())
    rows = list(csv.DictReader(open(tmp_path / "kaad-2026-03-05.csv", newline="")))
    assert len(table) == len(rows) == len(doc["all_windows"]) == doc["windows"]
    top = doc["findings"][0]
    assert top["identity"] in {"system:serviceaccount:shop:cart", HOSTILE_USER}
    assert top["calls"] and top["reasons"]


def test_hostile_strings_are_inert_everywhere(tmp_path, bundle_path, hostile_day):
    result = _score(tmp_path, bundle_path, hostile_day, "--top", "50")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "kaad-2026-03-05.html").read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\x1b" not in html and "[bold red]evil\\x1b[2J" in html
    with open(tmp_path / "kaad-2026-03-05.csv", newline="") as handle:
        for row in csv.reader(handle):
            for cell in row:
                assert not cell.startswith(("=", "+", "@")), cell
    assert "\x1b" not in result.stdout
    assert "[bold red]evil\\x1b[2J" in result.stdout  # printed literally, not as markup


def test_exit_codes_follow_fail_on(tmp_path, bundle_path, hostile_day):
    found = _score(tmp_path, bundle_path, hostile_day, "--fail-on", "90")
    assert found.exit_code == 1 and "at or above percentile 90: exit 1" in found.stdout
    quiet = _score(tmp_path, bundle_path, AUDIT / "normal_3days.jsonl", "--day", "2026-03-03", "--fail-on", "100")
    assert quiet.exit_code == 0 and "nothing at or above percentile 100: exit 0" in quiet.stdout
    broken = _score(tmp_path, tmp_path / "missing.joblib", hostile_day)
    assert broken.exit_code == 2 and "no model bundle" in broken.stderr


def test_a_model_with_another_feature_schema_is_refused(tmp_path, bundle_path, hostile_day):
    from models.persistence import load_bundle

    bundle = load_bundle(bundle_path)
    bundle.feature_names = bundle.feature_names[:-1]
    other = tmp_path / "other.joblib"
    save_bundle(bundle, other)
    result = _score(tmp_path, other, hostile_day)
    assert result.exit_code == 2
    assert "does not have the features the model was trained on" in result.stderr
    assert "Traceback" not in result.output


def test_allowlist_suppresses_visibly(tmp_path, bundle_path, hostile_day):
    allow = tmp_path / "allow.toml"
    allow.write_text('[[suppress]]\nidentity = "system:serviceaccount:shop:*"\n'
                     'reason = "cart migration this week"\nexpires = 2099-01-01\n'
                     '[[suppress]]\nidentity = "nobody"\nreason = "old"\nexpires = 2000-01-01\n')
    result = _score(tmp_path, bundle_path, hostile_day, "--allowlist", str(allow), "--top", "50")
    assert result.exit_code == 0, result.output
    assert "suppressed: cart migration this week" in result.stdout
    assert re.search(r"[1-9]\d* suppressed", result.stdout)
    assert "allowlist entry expired 2000-01-01, not applied: old" in result.stderr
    doc = json.loads((tmp_path / "kaad-2026-03-05.json").read_text())
    assert doc["suppressed"] >= 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[[suppress]]\nidentity = "x"\n')
    refused = _score(tmp_path, bundle_path, hostile_day, "--allowlist", str(bad))
    assert refused.exit_code == 2 and "needs a reason and an expires date" in refused.stderr


def test_html_report_renders_in_headless_chromium(tmp_path, bundle_path, hostile_day):
    chromium = ensure_chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium could not be installed in CI")
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt)")
    result = _score(tmp_path, bundle_path, hostile_day)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "kaad-2026-03-05.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1280,1600", page],
                   check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
    dom = subprocess.run([chromium, *flags, "--dump-dom", page], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    rows = re.findall(r'<tr class="finding[^"]*" data-rank="(\d+)">.*?<a href="#f\d+">([^<]*)</a>', dom, re.S)
    assert [int(r) for r, _ in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 3
    assert rows[0][1] in {"system:serviceaccount:shop:cart", "[bold red]evil\\x1b[2J"}
    assert "alert(1)" not in re.sub(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", "", dom)
