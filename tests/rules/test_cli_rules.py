"""`kaad rules test`, `kaad score --rules` and `kaad export metric-filter` through the CLI."""

from __future__ import annotations

import json

from rule_events import CART, DEPLOYER, attack_day, event, ordinary_day, write
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_rules_test_shows_per_rule_its_conversion_its_hits_and_the_hit_events(tmp_path, sigma_rules, real_samples):
    done = runner.invoke(app, ["rules", "test", str(sigma_rules), str(real_samples / "falco" / "events.jsonl")])
    assert done.exit_code == 0, done.output
    text = done.stdout
    assert "kubernetes_audit_potential_enumeration_activity" in text
    assert "not converted: field 'responseStatus.code' is a number" in text
    assert "16 rule(s): 15 converted, 1 not converted, 0 failed to run" in text
    exec_block = text.split("kubernetes_audit_exec_into_container", 1)[1].split("kubernetes_audit_hostpath_mount")[0]
    assert "converted, 1 hit(s)" in exec_block and "minikube-user" in exec_block
    strict = runner.invoke(app, ["rules", "test", str(sigma_rules), str(real_samples / "falco"), "--strict"])
    assert strict.exit_code == 2


def test_attacker_chosen_usernames_and_uris_are_printed_inert(tmp_path):
    hostile = "\x1b[2J[bold red]root[/bold red]"
    log = write(
        tmp_path / "day.jsonl",
        [
            event(
                1,
                user={"username": hostile},
                verb="create",
                requestURI="/api/v1/namespaces/kube-system/pods/x/exec?command=%1b%5b2J",
                objectRef={"resource": "pods", "subresource": "exec", "namespace": "kube-system", "name": "x"},
                responseStatus={"code": 101},
            )
        ],
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "exec.yml").write_text(
        "title: Exec\nlogsource: {product: kubernetes, service: audit}\n"
        "detection: {selection: {objectRef.subresource: exec}, condition: selection}\nlevel: high\n"
    )
    done = runner.invoke(app, ["rules", "test", str(rules), str(log)], color=True)
    assert done.exit_code == 0, done.output
    assert "\x1b[2J" not in done.stdout
    assert "\\x1b[2J[bold red]root[/bold red]" in done.stdout  # shown as text, markup and all


def test_score_with_rules_then_export_the_known_writers_metric_filter(tmp_path, sigma_rules):
    history = []
    for i, day in enumerate(("2026-03-02", "2026-03-03", "2026-03-04")):
        history += ordinary_day(day, start=1000 * i)
    train_file = write(tmp_path / "history.jsonl", history)
    day_file = write(tmp_path / "day.jsonl", attack_day("2026-03-05"))
    model = tmp_path / "model.joblib"
    trained = runner.invoke(
        app, ["train", str(train_file), "--rules", str(sigma_rules), "--out", str(model), "--no-track"]
    )
    assert trained.exit_code == 0, trained.output
    scored = runner.invoke(
        app,
        ["score", str(day_file), "--bundle", str(model), "--rules", str(sigma_rules), "--no-track",
         "--out", str(tmp_path / "out"), "--format", "table,csv,html"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert "Rule findings" in scored.stdout and "Exec Or Attach Into A Pod In kube-system [high]" in scored.stdout
    assert (tmp_path / "out" / "kaad-2026-03-05-rule-hits.csv").exists()
    assert "Rule findings" in (tmp_path / "out" / "kaad-2026-03-05.html").read_text()
    assert CART in scored.stdout

    exported = runner.invoke(
        app,
        ["export", "metric-filter", "--bundle", str(model), "--log-group", "/aws/eks/prod/cluster", "--format", "cli"],
    )
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith("aws logs put-metric-filter --log-group-name /aws/eks/prod/cluster")
    assert f'$.user.username != "{DEPLOYER}"' in exported.stdout
    template = runner.invoke(app, ["export", "metric-filter", "--bundle", str(model), "--log-group", "g"])
    assert json.loads(template.stdout)["Resources"]["UnknownWriterAlarm"]["Type"] == "AWS::CloudWatch::Alarm"


def test_export_refuses_a_model_trained_without_rules(tmp_path):
    history = []
    for i, day in enumerate(("2026-03-02", "2026-03-03", "2026-03-04")):
        history += ordinary_day(day, start=1000 * i)
    model = tmp_path / "model.joblib"
    trained = runner.invoke(
        app, ["train", str(write(tmp_path / "h.jsonl", history)), "--out", str(model), "--no-track"]
    )
    assert trained.exit_code == 0, trained.output
    done = runner.invoke(app, ["export", "metric-filter", "--bundle", str(model), "--log-group", "g"])
    assert done.exit_code == 2
    assert "was trained without --rules" in done.output
