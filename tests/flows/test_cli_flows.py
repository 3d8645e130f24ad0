"""`kaad simulate --flow-logs` and `kaad score --flow-logs` through the CLI, and the report's
network section with hostile names made inert."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from flows.evidence import day_evidence
from flows.source import NetworkEvidence
from models.detector import DetectorParams
from models.persistence import save_bundle
from pipelines.train import TrainConfig, train
from reports import network
from tests.flows.narrated import write

runner = CliRunner()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-flows")
    args = [
        "simulate",
        "--out",
        str(out / "logs"),
        "--flow-logs",
        str(out / "net"),
        "--days",
        "4",
        "--nodes",
        "2",
        "--namespaces",
        "3",
        "--humans",
        "3",
        "--rate-scale",
        "0.05",
        "--attacks",
        "cronjob_persistence",
        "--seed",
        "3",
    ]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    files = sorted(str(p) for p in (out / "logs").glob("audit-*.jsonl.gz"))
    bundle = out / "model.joblib"
    save_bundle(train(files[:-1], TrainConfig(params=DetectorParams(seed=3))).bundle, bundle)
    return out, done.output, bundle


def test_simulate_says_where_the_flow_logs_went(simulated):
    out, output, _ = simulated
    assert f"wrote 8 flow log files to {out / 'net'}" in output


def test_score_with_flow_logs_ranks_with_network_evidence_and_shows_it(simulated):
    out, _, bundle = simulated
    args = [
        "score",
        str(out / "logs"),
        "--day",
        "2026-03-05",
        "--bundle",
        str(bundle),
        "--flow-logs",
        str(out / "net" / "flowlogs"),
        "--format",
        "table,html",
        "--out",
        str(out / "report"),
        "--no-track",
    ]
    done = runner.invoke(app, args)
    assert done.exit_code in (0, 1), done.output
    assert "flows, 0 NODATA" in done.output and "flow attribution (format version 5)" in done.output
    page = (out / "report" / "kaad-2026-03-05.html").read_text()
    assert "Network (VPC flow logs)" in page
    # A reason, in its own words: the CronJob's pods fetch their script from the server its spec
    # names (the pods share their nodes' addresses here, so the node's SNAT traffic is judged).
    assert re.search(r"sent \d+ kB to [\d.]+:80, an address the audit log named today \(in the spec of CronJob", page)
    # The pool connection is listed above the nodes' bulk traffic to S3, and says what the port is.
    assert "<h3>Network: " in page and ":4444</code>" in page and "a port mining pools use" in page


def test_the_network_section_escapes_what_the_audit_log_named(tmp_path):
    audit, flows = write(tmp_path)
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text(Path(audit).read_text().replace("log-rotate-2912-x7k2p", "<script>x</script>"))
    source = NetworkEvidence([flows], [str(hostile)])
    found = source(None, pd.Timestamp("2026-03-22").date())
    # the narrated file has no history days, so the evidence is empty but the rows are there
    result = SimpleNamespace(evidence={"network": found})
    page = network.finding_html(result, "ci:deployer")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert network.finding_html(result, "nobody") == (
        "<h3>Network</h3><p>No flow data for any pod (it created or exec&#x27;d into none) on this day.</p>"
    )


def test_no_flow_logs_no_network_section():
    assert (
        network.finding_html(SimpleNamespace(evidence={}), "x")
        == ""
        == network.summary_html(SimpleNamespace(evidence={}))
    )
    assert day_evidence  # the evidence module is importable without flow logs given


def test_train_keeps_the_network_baseline_and_score_judges_the_day_by_it_and_carries_it_forward(simulated):
    # The model learns its network baseline from the training days' flow logs. The scorer is
    # then given the attack day's flow logs only: the CronJob's pool connection is new against
    # the model's baseline, and afterwards the day state carries that baseline forward.
    out, _, _ = simulated
    files = sorted(str(p) for p in (out / "logs").glob("audit-*.jsonl.gz"))
    model = out / "model-net.joblib"
    flows = out / "net" / "flowlogs"
    trained = runner.invoke(
        app, ["train", *files[:-1], "--flow-logs", str(flows), "--out", str(model), "--no-track", "--seed", "3"]
    )
    assert trained.exit_code == 0, trained.output
    assert "network baseline: " in trained.output and " units over 3 days" in trained.output
    day = next(flows.rglob("2026/03/05"))
    args = ["score", str(out / "logs"), "--day", "2026-03-05", "--bundle", str(model), "--flow-logs", str(day)]
    done = runner.invoke(app, [*args, "--format", "html", "--out", str(out / "net-report"), "--no-track"])
    assert done.exit_code in (0, 1), done.output
    page = (out / "net-report" / "kaad-2026-03-05.html").read_text()
    # (given the attack day alone, nothing could be "first seen" without the model's baseline)
    assert "first seen in the cluster" in page and ":4444</code>" in page
    from flows.source import STATE_ATTRIBUTE
    from models.state_store import load_state

    (state_file,) = (out / "net-report" / "state").rglob("*.joblib")
    carried = getattr(load_state(state_file), STATE_ATTRIBUTE)
    assert [str(d.date()) for d in sorted(set(carried["unit_days"]["day"]))][-1] == "2026-03-05"
