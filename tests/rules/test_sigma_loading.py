"""Sigma rules load as written: SigmaHQ's Kubernetes audit rules convert through kaad's field
mapping, and a rule that cannot is reported by name with the reason while the others run."""

from __future__ import annotations

from pathlib import Path

from rules import load_rules

#: The one SigmaHQ rule that cannot run: it compares responseStatus.code (a number) with 'ALLOW'.
REFUSED = {
    "kubernetes_audit_potential_enumeration_activity": "field 'responseStatus.code' is a number; "
    "the rule compares it with 'ALLOW', which no event can match"
}


def test_fifteen_of_sigmahqs_sixteen_kubernetes_audit_rules_convert_and_the_sixteenth_says_why(sigma_rules):
    rules = load_rules([sigma_rules], own=False)
    assert len(rules.rules) == 16
    assert {r.name: r.reason for r in rules.refused} == REFUSED
    assert len(rules.runnable) == 15
    # Dotted audit field names were mapped to the event table's columns, not left as written.
    exec_rule = rules.get("kubernetes_audit_exec_into_container")
    assert exec_rule is not None and exec_rule.query is not None
    assert "target_subresource" in exec_rule.query and "objectRef" not in exec_rule.query
    assert exec_rule.level == "medium" and exec_rule.attack == ("T1609",)


def test_kaads_own_rules_load_first_with_level_attack_tags_and_a_description():
    rules = load_rules([])
    assert [r.name for r in rules.rules] == [
        "kaad-anonymous-allowed",
        "kaad-anonymous-binding",
        "kaad-audit-id-reused",
        "kaad-exec-kube-system",
        "kaad-privileged-hostpid-person",
    ]
    for rule in rules.rules:
        assert rule.converted, (rule.name, rule.reason)
        assert rule.level in ("high", "critical") and rule.attack and len(rule.description) > 40


RULE = """
title: {title}
id: 1f0e1c52-8a3e-4f5b-9d7c-2b1a6e4c9f0{n}
logsource:
    product: {product}
    service: audit
detection:
    selection:
        {field}: value
    condition: selection
level: high
"""


def _write(folder: Path, name: str, **fields) -> None:
    (folder / f"{name}.yml").write_text(RULE.format(**fields))


def test_a_field_the_event_table_lacks_a_foreign_logsource_and_broken_yaml_are_each_named_the_rest_run(tmp_path):
    _write(tmp_path, "a-good", title="Good", n=1, product="kubernetes", field="objectRef.name")
    _write(tmp_path, "b-missing-field", title="Missing", n=2, product="kubernetes", field="requestObject.data.token")
    _write(tmp_path, "c-windows", title="Windows", n=3, product="windows", field="verb")
    (tmp_path / "d-broken.yml").write_text("title: [unclosed\n")
    rules = load_rules([tmp_path], own=False)
    reasons = {r.name: r.reason for r in rules.refused}
    assert [r.name for r in rules.runnable] == ["a-good"]
    assert (
        reasons["b-missing-field"] == "field 'requestObject.data.token' is not in kaad's event table (rules/fields.py)"
    )
    assert (
        reasons["c-windows"] == "logsource is product: windows, service: audit, not product kubernetes, service audit"
    )
    assert reasons["d-broken"]  # pySigma's YAML error, whatever its wording


def test_a_rule_name_loaded_twice_keeps_the_first_and_says_where_it_came_from(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _write(tmp_path / "one", "same", title="First", n=1, product="kubernetes", field="verb")
    _write(tmp_path / "two", "same", title="Second", n=2, product="kubernetes", field="verb")
    rules = load_rules([tmp_path / "one", tmp_path / "two"], own=False)
    assert [r.title for r in rules.runnable] == ["First"]
    assert rules.refused[0].reason.startswith("a rule named 'same' was loaded before, from ")
