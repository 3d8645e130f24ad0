"""Each of kaad's own rules fires on the dangerous request and stays quiet on its harmless twin;
Sigma's matching semantics survive the translation to DuckDB (case, literal %, lists)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rule_events import binding, event, pod, write

from pipelines.ingest import ingest
from rules import load_rules, run_rules


def _hits(tmp_path: Path, events: list[dict], rules=None) -> set[tuple[str, str]]:
    """(rule, identity) of every hit of ``rules`` (kaad's own by default) on ``events``."""
    table = tmp_path / "events.parquet"
    ingest([str(write(tmp_path / "audit.jsonl", events))], out=table, collect=False)
    run = run_rules(rules or load_rules([]), table)
    assert run.failed == {}
    return set(zip(run.hits["rule"], run.hits["identity"], strict=True))


ANONYMOUS = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
PERSON_POD = {"resource": "pods", "namespace": "shop", "name": "debug", "apiVersion": "v1"}

CASES = {
    # rule: (the dangerous request, its harmless twin)
    "kaad-anonymous-allowed": (
        event(1, user=ANONYMOUS, verb="list", requestURI="/api/v1/secrets", objectRef={"resource": "secrets"}),
        event(1, user=ANONYMOUS, requestURI="/healthz?verbose", objectRef={}),
    ),
    "kaad-anonymous-binding": (
        event(1, verb="create", objectRef={"resource": "clusterrolebindings", "name": "b"},
              requestObject=binding(("Group", "system:unauthenticated"))),
        event(1, verb="create", objectRef={"resource": "clusterrolebindings", "name": "b"},
              requestObject=binding(("User", "alice"))),
    ),
    "kaad-exec-kube-system": (
        event(1, verb="create", objectRef={"resource": "pods", "subresource": "exec", "namespace": "kube-system",
                                           "name": "aws-node-1"}, responseStatus={"code": 101}),
        event(1, verb="create", objectRef={"resource": "pods", "subresource": "exec", "namespace": "shop",
                                           "name": "cart-0"}, responseStatus={"code": 101}),
    ),
    "kaad-privileged-hostpid-person": (
        event(1, verb="create", objectRef=PERSON_POD, requestObject=pod(privileged=True, host_pid=True),
              responseStatus={"code": 201}),
        event(1, verb="create", objectRef=PERSON_POD, requestObject=pod(privileged=True, host_pid=True),
              responseStatus={"code": 201}, user={"username": "system:node:ip-10-0-1-5"}),
    ),
}  # fmt: skip


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_of_kaads_rules_fires_on_its_dangerous_request_and_not_on_the_harmless_twin(tmp_path, rule):
    dangerous, harmless = CASES[rule]
    assert (rule, dangerous["user"]["username"]) in _hits(tmp_path, [dangerous])
    assert not {hit for hit in _hits(tmp_path, [harmless]) if hit[0] == rule}


def test_a_request_that_reuses_an_earlier_requests_audit_id_is_a_hit_and_the_earlier_one_is_not(tmp_path):
    first = event(1, verb="get")
    again = event(2, verb="delete", user={"username": "mallory"})
    again["auditID"] = first["auditID"]  # a client-chosen Audit-ID header
    assert _hits(tmp_path, [first, again]) == {("kaad-audit-id-reused", "mallory")}


RULE = """
title: T
logsource: {{product: kubernetes, service: audit}}
detection:
    selection:
        {selection}
    condition: selection
level: low
"""


def _rule(tmp_path: Path, selection: str):
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "t.yml").write_text(RULE.format(selection=selection))
    return load_rules([tmp_path / "rules"], own=False)


def test_a_literal_percent_or_underscore_in_a_rule_value_is_not_a_wildcard(tmp_path):
    # SigmaHQ's enumeration rule looks for '%2fbin%2fsh' in URIs; DuckDB's LIKE would read % as "anything".
    rules = _rule(tmp_path, "requestURI|contains: 'command=%2fbin%2fsh'")
    encoded = event(1, user={"username": "encoded"}, requestURI="/api/v1/x/exec?command=%2fbin%2fsh")
    other = event(2, user={"username": "other"}, requestURI="/api/v1/x/exec?command=%2fusr%2fbin%2fsh")
    assert _hits(tmp_path, [encoded, other], rules) == {("t", "encoded")}


def test_string_matches_ignore_case_as_sigma_says(tmp_path):
    rules = _rule(tmp_path, "userAgent|startswith: 'Python-Requests'")
    assert _hits(tmp_path, [event(1, userAgent="python-requests/2.32")], rules) == {("t", "alice")}


def test_a_condition_on_a_list_field_holds_when_any_element_matches(tmp_path):
    rules = _rule(tmp_path, "user.groups: system:masters")
    admin = event(1, user={"username": "root", "groups": ["system:authenticated", "system:masters"]})
    plain = event(2, user={"username": "alice", "groups": ["system:authenticated"]})
    assert _hits(tmp_path, [admin, plain], rules) == {("t", "root")}


def test_sigmahq_rules_on_falcos_real_captures(tmp_path, sigma_rules, real_samples):
    table = tmp_path / "falco.parquet"
    ingest([str(real_samples / "falco" / "events.jsonl")], out=table, collect=False)
    run = run_rules(load_rules([sigma_rules]), table)
    assert run.failed == {}
    fired = dict(run.hits.groupby("rule").size())
    # The falco captures hold one exec into a pod, 3 binding writes, an anonymous namespace create.
    assert fired["kubernetes_audit_exec_into_container"] == 1
    assert fired["kubernetes_audit_rolebinding_modification"] == 3
    assert fired["kaad-anonymous-allowed"] == 1
    assert set(run.of("kaad-anonymous-allowed")["identity"]) == {"system:anonymous"}
