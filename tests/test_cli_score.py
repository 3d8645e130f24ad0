"""`kaad score` end to end through the CLI: formats, hostile text, exit codes, allowlist, HTML."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from support import AUDIT, cut_for
from typer.testing import CliRunner

from cli import app
from models.detector import DetectorParams
from models.persistence import save_bundle
from pipelines.train import TrainConfig, train

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
            twin = dict(
                event,
                auditID=event["auditID"][:-4] + "ffff",
                user={"username": HOSTILE_USER, "groups": ["system:authenticated"]},
            )
            lines.append(json.dumps(twin))
    out.write_text("\n".join(lines) + "\n")
    return out


ALICE = "arn:aws:sts::111122223333:assumed-role/Dev/alice"


@pytest.fixture(scope="module")
def stolen_token_day(tmp_path_factory):
    """The narrated attack day, but the intruder holds alice's token, not cart's.

    At 02:10 (alice works 09:30-16:30) someone with her token, from 203.0.113.7 (a network
    the cluster has never seen) and sending the user agent Prometheus/2.51.0, lists secrets
    in five namespaces and execs into a kube-system pod. Nothing else of alice's happens then.
    """
    out = tmp_path_factory.mktemp("stolen") / "day.jsonl"
    lines = []
    for line in (AUDIT / "attack_day.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["userAgent"] == "curl/8.5.0":
            event["user"] = {"username": ALICE, "groups": ["developers", "system:authenticated"]}
            event["userAgent"] = "Prometheus/2.51.0"
            event["sourceIPs"] = ["203.0.113.7"]
        lines.append(json.dumps(event))
    out.write_text("\n".join(lines) + "\n")
    return out


def _score(tmp_path, bundle_path, day_file, *extra):
    return runner.invoke(
        app,
        [
            "score",
            str(day_file),
            "--bundle",
            str(bundle_path),
            "--no-track",
            "--out",
            str(tmp_path),
            "--format",
            "table,csv,json,parquet,html",
            *extra,
        ],
    )


def test_every_format_is_written_and_agrees(tmp_path, bundle_path, hostile_day):
    result = _score(tmp_path, bundle_path, hostile_day)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "kaad-2026-03-05.parquet")
    doc = json.loads((tmp_path / "kaad-2026-03-05.json").read_text())
    with open(tmp_path / "kaad-2026-03-05.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Both levels: each identity-day's row, then its windows' rows.
    assert len(table) == len(rows) == len(doc["all_rows"]) == doc["windows"] + doc["identity_days"]
    assert [r["level"] for r in rows].count("identity-day") == doc["identity_days"]
    top = doc["findings"][0]
    assert top["identity"] in {"system:serviceaccount:shop:cart", HOSTILE_USER}
    assert top["reasons"] and top["windows"][0]["calls"] and top["windows"][0]["reasons"]


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
    quiet = _score(
        tmp_path, bundle_path, AUDIT / "normal_3days.jsonl", "--day", "2026-03-03", "--fail-on", "100", "--force-day"
    )  # a training day: forced
    assert quiet.exit_code == 0 and "nothing at or above percentile 100: exit 0" in quiet.stdout
    broken = _score(tmp_path, tmp_path / "missing.joblib", hostile_day)
    assert broken.exit_code == 2 and "no model bundle" in broken.stderr


def test_the_terminal_table_says_which_rows_alert(tmp_path, trained):
    """In a log file bold is lost: each identity-day that alerts says ALERT, the others say
    nothing (its nested windows carry no rank and no mark)."""
    bundle = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle)
    day_file = trained["files"][-1]
    cut, n = cut_for(trained["result"].bundle, day_file, 8)
    found = _score(tmp_path, bundle, day_file, "--top", str(n + 10), "--fail-on", repr(cut))
    assert found.exit_code == 1, found.output
    rows = _rows_of_table(found.stdout)
    doc = json.loads(next(tmp_path.glob("kaad-*.json")).read_text())
    shown = {f["rank"]: f["is_alert"] for f in doc["findings"] if f["rank"] <= len(rows)}
    assert len(rows) == n + 10 and {rank: mark == "ALERT" for rank, mark in rows} == shown
    assert [mark for _, mark in rows].count("ALERT") == n


def _rows_of_table(text: str) -> list[tuple[int, str]]:
    """(rank, alert column) of each ranked (identity-day) row of the rendered findings table."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)]
        if len(cells) > 7 and cells[1].isdigit():
            rows.append((int(cells[1]), cells[6]))
    return rows


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
    allow.write_text(
        '[[suppress]]\nidentity = "system:serviceaccount:shop:*"\n'
        'reason = "cart migration this week"\nexpires = 2099-01-01\n'
        '[[suppress]]\nidentity = "nobody"\nreason = "old"\nexpires = 2000-01-01\n'
    )
    result = _score(tmp_path, bundle_path, hostile_day, "--allowlist", str(allow), "--top", "50")
    assert result.exit_code == 0, result.output
    # cart's ordinary windows are hidden and listed with the entry's reason (its intrusion is not).
    assert re.search(r"system:serviceaccount:shop:cart\s*│\s*allow\.toml:1\s*│\s*\d+\s*│", result.stdout)
    assert "cart migration this week" in result.stdout
    assert re.search(r"[1-9]\d* suppressed", result.stdout)
    assert "allowlist entry expired 2000-01-01, not applied: old" in result.stderr
    doc = json.loads((tmp_path / "kaad-2026-03-05.json").read_text())
    assert doc["suppressed"] >= 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[[suppress]]\nidentity = "x"\n')
    refused = _score(tmp_path, bundle_path, hostile_day, "--allowlist", str(bad))
    assert refused.exit_code == 2 and "needs a reason and an expires date" in refused.stderr


def test_html_histogram_has_a_count_axis_and_names_the_threshold_as_a_percentile(tmp_path, bundle_path, hostile_day):
    """The ranking speaks in percentiles of the held-out identity-days; so does the histogram.

    Its y-axis is labelled (identity-days, log scale: 1, 10, 100, ...) so one alert among
    thousands is readable, and the threshold line says where it sits among held-out identity-days.
    """
    result = _score(tmp_path, bundle_path, hostile_day)
    assert result.exit_code == 0, result.output
    html = (tmp_path / "kaad-2026-03-05.html").read_text()
    chart = html[html.index('aria-label="identity-days per anomaly score"') :]
    chart = chart[: chart.index("</svg>")]
    doc = json.loads((tmp_path / "kaad-2026-03-05.json").read_text())
    assert ">identity-days</text>" in chart and ">anomaly score</text>" in chart
    assert re.findall(r'text-anchor="end">([\d,]+)</text>', chart)[:2] == ["1", "10"]
    where = re.search(r"threshold: ([\d.]+)th percentile of held-out identity-days", chart)
    assert where is not None, chart[-600:]
    assert 0.0 <= float(where.group(1)) <= 100.0
    assert len(doc["all_rows"]) > 0


def test_html_report_renders_in_headless_chromium(tmp_path, bundle_path, hostile_day):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed: run `make e2e-deps` (root on Debian)")
    result = _score(tmp_path, bundle_path, hostile_day)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "kaad-2026-03-05.html").as_uri()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1280,1600", page],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    rows = re.findall(r'<tr class="finding[^"]*" data-rank="(\d+)">.*?<a href="#f\d+">([^<]*)</a>', dom, re.S)
    assert [int(r) for r, _ in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 3
    assert rows[0][1] in {"system:serviceaccount:shop:cart", "[bold red]evil\\x1b[2J"}
    assert "alert(1)" not in re.sub(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", "", dom)


def _flat(text: str) -> str:
    return re.sub(r"[\s│]", "", text)


def _rows(tmp_path, day="2026-03-05"):
    """The CSV's window rows (each identity-day's own row is left out)."""
    with open(tmp_path / f"kaad-{day}.csv", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["level"] == "window"]


def test_a_user_agent_cannot_claim_suppression(tmp_path, bundle_path, stolen_token_day):
    # An entry written for Prometheus by its user agent alone would hide the intruder, who
    # sends that user agent: such an entry is refused, naming where it is written.
    allow = tmp_path / "allow.toml"
    allow.write_text(
        '# scrapers\n[[suppress]]\nuser_agent = "Prometheus/*"\n'
        'reason = "scrapes every namespace"\nexpires = 2099-01-01\n'
    )
    refused = _score(tmp_path, bundle_path, stolen_token_day, "--allowlist", str(allow))
    assert refused.exit_code == 2
    assert f"{allow}:2: entry 1: every entry needs an identity pattern" in refused.stderr
    # Named for the identity it is meant for, the same entry leaves alice's window alone.
    allow.write_text(
        '[[suppress]]\nidentity = "system:serviceaccount:monitoring:prometheus-k8s"\n'
        'user_agent = "Prometheus/*"\nreason = "scrapes every namespace"\nexpires = 2099-01-01\n'
    )
    result = _score(tmp_path, bundle_path, stolen_token_day, "--allowlist", str(allow))
    assert result.exit_code == 0, result.output
    intruder = next(
        r for r in _rows(tmp_path) if r["identity"] == ALICE and r["window_start"].startswith("2026-03-05 02")
    )
    assert (intruder["suppressed"], intruder["suppressed_by"], intruder["allowlist_note"]) == ("False", "", "")


def test_an_entry_hides_no_sensitive_action_or_new_network_it_does_not_name(tmp_path, bundle_path, stolen_token_day):
    allow = tmp_path / "allow.toml"
    allow.write_text(
        '[[suppress]]\nidentity = "arn:aws:sts::111122223333:assumed-role/Dev/*"\n'
        'reason = "developers\' routine"\nexpires = 2099-01-01\n'
    )
    result = _score(tmp_path, bundle_path, stolen_token_day, "--allowlist", str(allow))
    assert result.exit_code == 0, result.output
    alice = {r["window_start"][11:16]: r for r in _rows(tmp_path) if r["identity"] == ALICE}
    # Her ordinary afternoons are hidden, marked with the entry that hid them...
    assert {t: (r["suppressed"], r["suppressed_by"]) for t, r in alice.items() if t != "02:00"} == {
        "09:00": ("True", "allow.toml:1"),
        "13:00": ("True", "allow.toml:1"),
        "16:00": ("True", "allow.toml:1"),
    }
    # ...but the night with an exec into kube-system from a new network stays live, and says why.
    night = alice["02:00"]
    assert night["suppressed"] == "False"
    note = (
        "allowlist entry allow.toml:1 matched but does not cover: n_exec, n_exec_kube_system, "
        "n_exec_credentials, n_public_source, n_attempted, new_source_ip, new_ip_range"
    )
    assert night["allowlist_note"] == note
    assert _flat(note) in _flat(result.stdout)  # the terminal wraps it inside the table cell
    html = (tmp_path / "kaad-2026-03-05.html").read_text()
    assert note in html
    # Naming every one of those reasons is a decision someone wrote down; then it is hidden.
    allow.write_text(
        '[[suppress]]\nidentity = "arn:aws:sts::111122223333:assumed-role/Dev/alice"\n'
        'covers = ["n_exec", "n_exec_kube_system", "n_exec_credentials", "n_public_source", '
        '"n_attempted", "new_source_ip", "new_ip_range"]\n'
        'reason = "red-team exercise, ticket SEC-42"\nexpires = 2099-01-01\n'
    )
    covered = _score(tmp_path, bundle_path, stolen_token_day, "--allowlist", str(allow), "--force-day")  # a rerun
    assert covered.exit_code == 0, covered.output
    night = next(r for r in _rows(tmp_path) if r["identity"] == ALICE and r["window_start"].startswith("2026-03-05 02"))
    assert (night["suppressed"], night["suppressed_reason"]) == ("True", "red-team exercise, ticket SEC-42")


def test_suppressed_windows_stay_in_every_output_marked_and_counted(tmp_path, bundle_path, hostile_day):
    # The kubelet's 24 hourly windows are known noise; --top 1 shows one row, yet none of the
    # 24 disappears from any output.
    node = "system:node:ip-10-0-1-10.us-west-2.compute.internal"
    allow = tmp_path / "allow.toml"
    allow.write_text('[[suppress]]\nidentity = "system:node:*"\nreason = "lease renewals"\nexpires = 2099-01-01\n')
    result = _score(tmp_path, bundle_path, hostile_day, "--allowlist", str(allow), "--top", "1")
    assert result.exit_code == 0, result.output

    def hours_hidden(rows) -> list[int]:
        return sorted(
            pd.Timestamp(r["window_start"]).hour
            for r in rows
            if r["identity"] == node and r["suppressed_by"] == "allow.toml:1"
        )

    doc = json.loads((tmp_path / "kaad-2026-03-05.json").read_text())
    table = pd.read_parquet(tmp_path / "kaad-2026-03-05.parquet")
    assert hours_hidden(_rows(tmp_path)) == list(range(24))
    assert hours_hidden(doc["all_rows"]) == list(range(24)) and doc["suppressed"] == 24
    assert hours_hidden(table.to_dict("records")) == list(range(24))
    html = (tmp_path / "kaad-2026-03-05.html").read_text()
    section = html[html.index("Suppressed by the allowlist (24)") :]
    assert len(re.findall(rf'<tr class="suppressed"><td class="identity">{re.escape(node)}</td>', section)) == 24
    assert re.search(rf"{re.escape(node)}\s*│\s*allow\.toml:1\s*│\s*24\s*│", result.stdout)
    assert ", 24 suppressed," in result.stdout


def test_top_limits_only_the_terminal_table(tmp_path, trained):
    # Five planted attacks on a simulated day; --fail-on is set so that n >= 8 identity-days
    # are at or above it. --top 5 shows five ranked rows; all n are explained in every file,
    # and the exit code counts the same n.
    bundle = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle)
    day_file = trained["files"][-1]
    cut, n = cut_for(trained["result"].bundle, day_file, 8)
    result = _score(tmp_path / "out", bundle, day_file, "--top", "5", "--fail-on", repr(cut))
    assert result.exit_code == 1, result.output
    assert f"{n} at or above percentile {cut:g}: exit 1" in result.stdout
    out = tmp_path / "out"
    [doc_path] = out.glob("kaad-*.json")
    doc = json.loads(doc_path.read_text())
    # JSON: every counted identity-day is a finding, with reasons, and windows with the API calls.
    explained = [f for f in doc["findings"] if f["percentile"] >= cut]
    assert len(explained) == n and all(f["windows"][0]["calls"] and f["is_alert"] for f in explained)
    reasons = {f["identity"]: " | ".join(f"[{r['rarity']}] {r['text']}" for r in f["reasons"]) for f in explained}
    # CSV and Parquet: the same identity-days with the same reasons.
    with open(doc_path.with_suffix(".csv"), newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["level"] == "identity-day" and float(r["percentile"]) >= cut]
    assert {r["identity"]: r["reasons"] for r in rows} == reasons
    table = pd.read_parquet(doc_path.with_suffix(".parquet"))
    table = table[(table["level"] == "identity-day") & (table["percentile"] >= cut)]
    assert dict(zip(table["identity"], table["reasons"], strict=True)) == reasons
    # HTML: a drill-down for each of them.
    html = doc_path.with_suffix(".html").read_text()
    drilled = re.findall(r'<details id="f\d+"><summary>#\d+ ([^<]*): \d+ of \d+ windows unusual', html)
    assert set(reasons) <= set(drilled)
    # The terminal: five ranked rows, then where the others are.
    shown = re.findall(r"^│\s*(\d+)\s*│", result.stdout, re.M)
    assert shown == ["1", "2", "3", "4", "5"]
    written = ", ".join(str(out / f"{doc_path.stem}.{ext}") for ext in ("csv", "json", "parquet", "html"))
    assert f"{n - 5} more alerting identity-day(s) beyond --top 5, explained in {written}" in result.stdout


def test_a_directory_of_many_days_says_which_day_it_scored_and_what_it_left_out(tmp_path, bundle_path):
    """Four days in one directory (102 events a day, then 109 on the attack day): one day is
    scored, and the summary names it and counts the events of the other days it read."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(AUDIT / "normal_3days.jsonl", logs)
    shutil.copy(AUDIT / "attack_day.jsonl", logs)

    busiest = _score(tmp_path / "busiest", bundle_path, logs, "--format", "csv")
    assert busiest.exit_code == 0, busiest.output
    assert "day scored: 2026-03-05 (UTC); 306 events of other days read and not scored" in busiest.output

    chosen = _score(tmp_path / "chosen", bundle_path, logs, "--format", "csv", "--day", "2026-03-03", "--force-day")
    assert chosen.exit_code == 0, chosen.output
    assert "day scored: 2026-03-03 (UTC); 313 events of other days read and not scored" in chosen.output

    alone = _score(tmp_path / "alone", bundle_path, AUDIT / "attack_day.jsonl", "--format", "csv")
    assert "day scored: 2026-03-05 (UTC)\n" in alone.output  # nothing left out, nothing to say


def test_day_all_scores_every_day_oldest_first_each_with_its_own_report(tmp_path, bundle_path):
    """`--day all` over the same four days: the inputs are read once, then each UTC day is
    scored in time order with its own CSV, and the exit code covers every day."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(AUDIT / "attack_day.jsonl", logs)  # listed first; scored last
    shutil.copy(AUDIT / "normal_3days.jsonl", logs)

    # Three of the days are training days: forced, scored, not learned.
    result = _score(
        tmp_path / "all", bundle_path, logs, "--format", "csv", "--day", "all", "--fail-on", "90", "--force-day"
    )

    scored = re.findall(r"day scored: (\S+) \(UTC\)(.*)", result.output)
    assert [d for d, _ in scored] == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"], result.output
    assert all(rest == "" for _, rest in scored)  # no day's events are "of other days"
    for day, _ in scored:
        assert (tmp_path / "all" / f"kaad-{day}.csv").exists()
    assert "4 day(s) scored, 0 input rejects" in result.output
    assert result.exit_code == 1  # the attack day has windows at or above percentile 90
    one = _score(tmp_path / "one", bundle_path, logs, "--format", "csv", "--day", "2026-03-05", "--fail-on", "90")
    with (
        open(tmp_path / "one" / "kaad-2026-03-05.csv", newline="") as a,
        open(tmp_path / "all" / "kaad-2026-03-05.csv", newline="") as b,
    ):
        assert list(csv.reader(a)) == list(csv.reader(b))  # the same day, scored the same way
    assert one.exit_code == 1


def test_day_all_with_a_day_state_skips_the_days_it_has_and_scores_the_new_ones(tmp_path, bundle_path):
    """A daily job re-reads its log folder every morning with `--day all`. Without
    `--force-day`, the days the model trained on and the days already scored are skipped, each
    with its reason, and the new day is scored; the next morning nothing is scored twice."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(AUDIT / "normal_3days.jsonl", logs)
    shutil.copy(AUDIT / "attack_day.jsonl", logs)
    out = tmp_path / "daily"

    first = _score(out, bundle_path, logs, "--format", "csv", "--day", "all")
    assert first.exception is None or isinstance(first.exception, SystemExit), first.exception
    assert re.findall(r"day scored: (\S+) \(UTC\)", first.output) == ["2026-03-05"]
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):
        assert f"day skipped: {day}: day {day} is on or before the model's training end" in first.output
    assert "1 day(s) scored, 3 skipped, 0 input rejects" in first.output
    assert (out / "kaad-2026-03-05.csv").exists() and not (out / "kaad-2026-03-04.csv").exists()

    again = _score(out, bundle_path, logs, "--format", "csv", "--day", "all")
    assert again.exit_code == 0, again.output
    assert "day skipped: 2026-03-05: day 2026-03-05 was already scored with this model" in again.output
    assert "0 day(s) scored, 4 skipped, 0 input rejects" in again.output


def test_a_forced_rerun_of_the_last_day_gives_the_first_runs_report(tmp_path, trained):
    """An on-call engineer scores day 8, then reruns it with `--force-day` (a report was lost,
    a notifier failed). The rerun must judge the day against what was learned before it, as the
    first run did: the day's quiet values are not yet usual, its alerts are the same alerts.
    Found when a forced rerun went from 4 alerting identity-days to 2 (the rarity had counted
    the day's own quiet windows as history)."""
    bundle = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle)
    day_file, out = trained["files"][-1], tmp_path / "daily"
    args = ("--format", "json", "--day", Path(day_file).name[6:16])
    first = _score(out, bundle, day_file, *args)
    assert first.exception is None or isinstance(first.exception, SystemExit), first.output
    before = json.loads(next(out.glob("kaad-*.json")).read_text())
    rerun = _score(out, bundle, day_file, *args, "--force-day")
    assert rerun.exception is None or isinstance(rerun.exception, SystemExit), rerun.output
    after = json.loads(next(out.glob("kaad-*.json")).read_text())
    assert before["alerts"] > 0
    assert [(f["identity"], f["anomaly_score"], f["is_alert"]) for f in after["findings"]] == [
        (f["identity"], f["anomaly_score"], f["is_alert"]) for f in before["findings"]
    ]
    # Without --day the day is known only when its windows are featurised: it is read again, named.
    unnamed = _score(out, bundle, day_file, "--format", "json", "--force-day")
    assert unnamed.exception is None or isinstance(unnamed.exception, SystemExit), unnamed.output
    again = json.loads(next(out.glob("kaad-*.json")).read_text())
    assert [(f["identity"], f["anomaly_score"]) for f in again["findings"]] == [
        (f["identity"], f["anomaly_score"]) for f in before["findings"]
    ]
