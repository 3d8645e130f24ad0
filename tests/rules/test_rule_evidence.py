"""Rule hits join the model's ranking: weighed by how often the rule fires on normal days for the
identity and its peers (learned in training), named in the identity-day's reasons, mutable for
one identity by a named allowlist entry with a reason and an expiry, never hidden silently.

The world (tests/rules/rule_events.py): three ordinary days in training, in which the dashboard
lists secrets every day and twenty more workloads read their config; then a day on which
mallory, a new person, lists secrets too and the cart app's token execs into a kube-system pod.
"""

from __future__ import annotations

import csv
import math
from datetime import date

import pytest
from rule_events import CART, DASHBOARD, DEPLOYER, attack_day, ordinary_day, write

from pipelines.allowlist import load_allowlist
from pipelines.score import score_day
from pipelines.train import TrainConfig, train
from rules.evidence import RuleEvidence, rule_evidence
from rules.history import LEVEL_RATE, RuleHistory, Weight

ENUMERATION = "kubernetes_audit_secrets_enumeration"
EXEC = "kaad-exec-kube-system"
MODIFIED = "kubernetes_audit_secrets_modified_or_deleted"
DAY = date(2026, 3, 5)
APPS = 20  # with the five usual identities, 75 normal identity-days in training


@pytest.fixture(scope="module")
def world(tmp_path_factory, sigma_rules):
    folder = tmp_path_factory.mktemp("rules-world")
    history = []
    for i, day in enumerate(("2026-03-02", "2026-03-03", "2026-03-04")):
        history += ordinary_day(day, start=1000 * i, apps=APPS)
    train_file = write(folder / "history.jsonl", history)
    day_file = write(folder / "day.jsonl", attack_day("2026-03-05", apps=APPS))
    trained = train([str(train_file)], TrainConfig(rules=("kaad", str(sigma_rules))))
    return {"bundle": trained.bundle, "day": str(day_file), "folder": folder, "sigma": str(sigma_rules)}


def _score(world, allowlist=None):
    source = rule_evidence(["kaad", world["sigma"]], world["bundle"], allowlist)
    return score_day([world["day"]], world["bundle"], top=50, allowlist=allowlist, evidence=[source]), source


def test_training_keeps_how_often_each_rule_fired_for_each_identity_and_who_writes_pods(world):
    history = RuleHistory.from_dict(world["bundle"].rule_history)
    assert history.n_days == 3
    assert history.fired[ENUMERATION] == {DASHBOARD: 3}
    assert history.fired[EXEC] == {}  # ran, never fired
    assert history.writers["pods"] == {DEPLOYER: 3}


def test_a_rule_the_dashboard_trips_every_day_adds_nothing_and_rules_no_peer_tripped_add_nats(world):
    _, source = _score(world)
    found = {(f.rule, f.identity): f for f in source.findings}
    dashboard, mallory = found[(ENUMERATION, DASHBOARD)], found[(ENUMERATION, "mallory")]
    assert dashboard.weight.p_value > 0.5 and dashboard.evidence == 0.0
    assert mallory.weight.p_value < dashboard.weight.p_value / 5  # no person listed secrets in training
    # A low rule with three days of history stays below the floor; a medium one (secrets
    # deleted) and a high one (exec into kube-system) that no peer ever tripped count.
    assert mallory.evidence == 0.0
    assert found[(MODIFIED, "mallory")].evidence > 1.0
    assert found[(EXEC, CART)].weight.evidence > found[(MODIFIED, "mallory")].weight.evidence


def test_the_rules_an_identity_day_fired_add_what_normal_days_vouch_for_however_many_fired(world):
    """The cart app's exec into kube-system trips three rules on one request (kaad's and two of
    SigmaHQ's), and each rule's own nats assume the others' hits told nothing. Ranked among the
    75 normal identity-days of training, each judged against the other days, the day is rarer
    than all of them: that is p = 1/76, log(0.05 * 76) nats, whether one rule fired (mallory's
    deletion) or three."""
    _, source = _score(world)
    per_identity: dict[str, float] = {}
    for f in source.findings:
        per_identity[f.identity] = per_identity.get(f.identity, 0.0) + f.evidence
    vouched = math.log(0.05 * (len(source.reference()) + 1))
    assert len(source.reference()) == 75 and not any(source.reference())
    assert per_identity[CART] == pytest.approx(vouched) and per_identity["mallory"] == pytest.approx(vouched)
    cart = [f for f in source.findings if f.identity == CART and f.evidence > 0]
    assert len(cart) == 3 and sum(f.weight.evidence for f in cart) > 3 * vouched  # what was added before
    assert per_identity[DASHBOARD] == 0.0  # its daily rule adds nothing still


def test_rule_hits_raise_the_identity_day_by_their_nats_and_its_reasons_name_the_rule(world):
    plain = score_day([world["day"]], world["bundle"], top=50)
    scored, source = _score(world)
    before = plain.identities.set_index("identity")["anomaly_score"]
    after = scored.identities.set_index("identity")["anomaly_score"]
    added = sum(f.evidence for f in source.findings if f.identity == CART)
    assert added > 0 and after[CART] == pytest.approx(before[CART] + added)
    cart = next(f for f in scored.findings if f.identity == CART)
    assert any(r.text.startswith('rule "Exec Or Attach Into A Pod In kube-system" (high, T1609)') for r in cart.reasons)
    # mallory made one request: her identity-day ranks by the rule alone.
    mallory = next(f for f in scored.findings if f.identity == "mallory")
    assert any("Kubernetes Secrets Modified or Deleted" in r.text for r in mallory.reasons)


def test_an_allowlist_entry_mutes_one_rule_for_one_identity_and_says_so(world, tmp_path):
    path = tmp_path / "allow.toml"
    path.write_text(
        "[[suppress]]\n"
        f'identity = "{CART}"\n'
        f'covers = ["rule:{EXEC}"]\n'
        'reason = "the cart team debugs aws-node with the SRE on call"\n'
        "expires = 2026-12-31\n"
    )
    scored, source = _score(world, load_allowlist(path, DAY))
    muted = {(f.rule, f.identity): f for f in source.findings}[(EXEC, CART)]
    assert muted.muted_by is not None and muted.muted_by.label == "allow.toml:1" and muted.evidence == 0.0
    assert "muted by allowlist allow.toml:1 (the cart team debugs aws-node" in muted.reason()
    # SigmaHQ's exec rule is not muted for it: it still counts, and the identity-day stays live.
    other = {(f.rule, f.identity): f for f in source.findings}[("kubernetes_audit_exec_into_container", CART)]
    assert other.muted_by is None and other.evidence > 0
    assert not scored.identities.set_index("identity").loc[CART, "suppressed"]


def test_without_training_history_a_rule_weighs_by_its_level_and_says_so(world):
    source = RuleEvidence(rule_evidence(["kaad"], world["bundle"]).rules, None)
    found = source(None, DAY)
    assert found.contributions.empty and source.findings == []
    weight = RuleHistory(0, {}, {}).weight(source.rules.get(EXEC), CART)
    assert isinstance(weight, Weight) and weight.p_value == LEVEL_RATE["high"]
    assert weight.describe() == "not run in training: weighed by its level alone"


def test_the_rule_hits_csv_lists_every_hit_with_formula_text_quoted(world, tmp_path):
    from reports.rules_report import write_rule_hits_csv

    scored, _ = _score(world)
    assert write_rule_hits_csv(scored, tmp_path / "hits.csv")
    rows = list(csv.DictReader((tmp_path / "hits.csv").open()))
    assert {(r["rule"], r["identity"]) for r in rows} >= {(EXEC, CART), (ENUMERATION, "mallory")}


def test_an_entry_that_hides_the_windows_does_not_hide_a_rule_hit_it_does_not_name(world, tmp_path):
    from pipelines.allowlist import GUARDED

    path = tmp_path / "allow.toml"
    covers = ", ".join(f'"{g}"' for g in GUARDED)
    path.write_text(
        f'[[suppress]]\nidentity = "{CART}"\ncovers = [{covers}]\nreason = "debugging"\nexpires = 2026-12-31\n'
    )
    allow = load_allowlist(path, DAY)
    plain = score_day([world["day"]], world["bundle"], top=50, allowlist=allow)
    assert plain.identities.set_index("identity").loc[CART, "suppressed"]  # the windows alone: hidden
    scored, _ = _score(world, allow)
    assert scored.windows.xs(CART, level="identity")["suppressed"].any()
    assert not scored.identities.set_index("identity").loc[CART, "suppressed"]  # its rule hits keep it live


def test_a_hostile_username_in_a_rule_hit_is_inert_in_the_csv_the_html_and_the_terminal(world, tmp_path):
    from types import SimpleNamespace

    from rich.console import Console
    from rule_events import event

    from pipelines.ingest import ingest
    from reports.rules_report import render_rule_findings, rule_findings_html, write_rule_hits_csv

    hostile = '=HYPERLINK("http://x")<script>alert(1)</script>\x1b[2J'
    secret = {"resource": "secrets", "namespace": "shop", "name": "db"}
    raw = write(
        tmp_path / "day.jsonl", [event(1, "2026-03-05", user={"username": hostile}, verb="delete", objectRef=secret)]
    )
    table = tmp_path / "day.parquet"
    ingest([str(raw)], out=table, collect=False)
    source = rule_evidence([world["sigma"]], world["bundle"])
    result = SimpleNamespace(evidence={"rule": source(table, DAY)})
    assert write_rule_hits_csv(result, tmp_path / "hits.csv")
    row = next(csv.DictReader((tmp_path / "hits.csv").open()))
    assert row["identity"] == "'" + hostile  # a spreadsheet reads text, not a formula
    page = rule_findings_html(result)
    assert "<script>" not in page and "&lt;script&gt;" in page
    console = Console(record=True, width=200, force_terminal=True)
    console.print(render_rule_findings(result))
    shown = console.export_text(styles=True, clear=False)
    assert "\x1b[2J" not in shown and "\\x1b[2J" in console.export_text()


def test_make_eval_reads_rules_alone_model_alone_and_both_from_one_scored_day(world):
    from evaluation.rules_sigma import day_scores

    plain = score_day([world["day"]], world["bundle"], top=50)
    scored, _ = _score(world)
    frame = day_scores(scored)
    model = plain.identities.set_index("identity")["anomaly_score"]
    assert frame["model"].to_dict() == pytest.approx(model.reindex(frame.index, fill_value=0.0).to_dict())
    assert frame.loc[CART, "combined"] > frame.loc[CART, "model"]
    # A rule engine alerts on every identity-day with a hit, the dashboard's daily one included,
    # and ranks the highest level first: cart's exec into kube-system (high) above mallory (medium).
    assert set(frame.index[frame["rules_alert"]]) == {CART, DASHBOARD, "mallory"}
    assert frame.loc[CART, "rules"] > frame.loc["mallory", "rules"] > frame.loc[DASHBOARD, "rules"]


def test_make_eval_counts_a_repeat_of_an_open_finding_apart_from_the_alerts_that_page(world):
    """The same attack again the next morning, unaccepted: the model still scores it above the
    threshold, but it only repeats the open findings of the day before, so the daily job pages
    nobody. The evaluation counts it as a repeat, not an alert; a rule engine, which keeps no
    findings open, alerts on it again."""
    from evaluation.rules_sigma import day_scores
    from models.day_state import DayState

    source = rule_evidence(["kaad", world["sigma"]], world["bundle"])
    state = DayState.from_bundle(world["bundle"], "rules-world")
    first = day_scores(score_day([world["day"]], world["bundle"], top=50, evidence=[source], state=state))
    again = write(world["folder"] / "again.jsonl", attack_day("2026-03-06", apps=APPS))
    second = day_scores(
        score_day([str(again)], world["bundle"], day=date(2026, 3, 6), top=50, evidence=[source], state=state)
    )
    assert first.loc[CART, "combined_alert"] and not first["combined_repeat"].any()
    assert second.loc[CART, "combined_repeat"] and not second.loc[CART, "combined_alert"]
    assert second.loc[CART, "rules_alert"]
    assert not (second["combined_alert"] & second["combined_repeat"]).any()
