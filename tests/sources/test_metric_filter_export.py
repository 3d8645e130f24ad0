"""The known-writers tripwire: a CloudWatch Logs metric filter and alarm built from who wrote pods
and secrets in training, accepted by CloudWatch's API (a moto server), and matching the writes of
anyone else in real audit events under CloudWatch's JSON filter syntax.

moto stores metric filters but neither evaluates them nor implements TestMetricFilter, so what
the pattern matches is checked with rules.metric_filter.matches, an evaluator of that syntax.
"""

from __future__ import annotations

import json

import boto3
import pytest

from errors import KaadError
from rules.history import RuleHistory
from rules.metric_filter import MAX_PATTERN, build_filter, matches, parse

DEPLOYER = "system:serviceaccount:ci:deployer"
HISTORY = RuleHistory(
    7,
    {},
    {},
    {
        "pods": {DEPLOYER: 7, "system:node:ip-10-0-1-5": 7, "system:node:ip-10-0-1-6": 3},
        "secrets": {"system:serviceaccount:cert-manager:cert-manager": 2, "alice": 1},
    },
)
GROUP = "/aws/eks/prod/cluster"


def test_cloudwatch_accepts_the_filter_and_the_alarm(aws):
    made = build_filter(HISTORY, GROUP)
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.put_metric_filter(
        logGroupName=GROUP,
        filterName=made.name,
        filterPattern=made.pattern,
        metricTransformations=made.transformations(),
    )
    stored = logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"]
    assert [(f["filterName"], f["filterPattern"]) for f in stored] == [(made.name, made.pattern)]
    boto3.client("cloudwatch").put_metric_alarm(**made.alarm())
    alarms = boto3.client("cloudwatch").describe_alarms(AlarmNames=[made.name])["MetricAlarms"]
    assert alarms[0]["MetricName"] == made.metric and alarms[0]["Namespace"] == "kaad"
    # The CloudFormation template carries the same pattern.
    template = made.cloudformation()
    assert template["Resources"]["UnknownWriterFilter"]["Properties"]["FilterPattern"] == made.pattern
    json.dumps(template)


def test_known_writers_are_named_and_kubelets_are_one_wildcard():
    made = build_filter(HISTORY, GROUP)
    assert made.writers == (
        "alice",
        "system:node:*",
        "system:serviceaccount:cert-manager:cert-manager",
        DEPLOYER,
    )
    assert build_filter(HISTORY, GROUP, min_days=3).writers == ("system:node:*", DEPLOYER)


def _event(username: str, verb: str = "create", resource: str = "pods", code: int = 201, **ref) -> dict:
    return {
        "kind": "Event",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": username},
        "objectRef": {"resource": resource, "namespace": "shop", **ref},
        "responseStatus": {"code": code},
    }


@pytest.mark.parametrize(
    ("event", "alarms"),
    [
        (_event("mallory"), True),  # a person who never wrote pods creates one
        (_event("mallory", verb="patch", resource="secrets"), True),
        (_event(DEPLOYER), False),  # CI's deployer, a known writer
        (_event("system:node:ip-10-0-9-9"), False),  # a kubelet of a node added since training
        (_event("mallory", code=403), False),  # refused: nothing was written
        (_event("mallory", verb="get"), False),
        (_event("mallory", resource="configmaps"), False),
        (_event("mallory", subresource="exec"), False),  # exec is not a write of the pod
    ],
)
def test_the_pattern_matches_writes_by_anyone_but_the_known_writers(event, alarms):
    assert matches(parse(build_filter(HISTORY, GROUP).pattern), event) is alarms


def test_on_falcos_real_captures_only_unknown_writers_match(real_samples):
    made = build_filter(
        RuleHistory(1, {}, {}, {"pods": {"system:serviceaccount:kube-system:replicaset-controller": 1}}), GROUP
    )
    tree = parse(made.pattern)
    lines = (real_samples / "falco" / "events.jsonl").read_text().splitlines()
    matched = {e["user"]["username"] for e in map(json.loads, lines) if matches(tree, e)}
    assert matched and "system:serviceaccount:kube-system:replicaset-controller" not in matched
    assert matched <= {"minikube-user", "admin", "system:kube-controller-manager", "some-user", "system:anonymous"}


@pytest.mark.parametrize(
    "pattern",
    ['{ $.verb = "create"', '{ ($.verb = "create" }', '{ $.verb < "create" }', "{ verb = create }", '$.verb = "x"'],
)
def test_patterns_cloudwatch_would_refuse_are_refused(pattern):
    with pytest.raises(KaadError, match="filter pattern"):
        parse(pattern)


def test_a_name_a_filter_cannot_hold_is_left_out_so_its_writes_alarm_and_too_long_is_an_error():
    odd = RuleHistory(1, {}, {}, {"pods": {'eve"x': 1, "ok": 1, "bell\x07": 1}})
    made = build_filter(odd, GROUP)
    assert made.writers == ("ok",) and set(made.left_out) == {'eve"x', "bell\x07"}
    many = RuleHistory(1, {}, {}, {"pods": {f"system:serviceaccount:team-{i}:deployer": 1 for i in range(40)}})
    with pytest.raises(KaadError, match=f"over CloudWatch's {MAX_PATTERN}"):
        build_filter(many, GROUP)
