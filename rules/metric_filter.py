"""A CloudWatch Logs metric filter for writes to pods and secrets by anyone but the known writers.

EKS hardening guides recommend this tripwire; kaad fills in the list of known writers from the
model's own history (``RuleHistory.writers``: who created, replaced or patched pods and secrets
in training), so the alarm fires between daily runs on the first write by anyone else. The
pattern is CloudWatch's JSON filter syntax; :func:`matches` evaluates that syntax (the subset
used here: ``=``/``!=``/``<`` comparisons, ``*`` wildcards, ``NOT EXISTS``, ``&&``, ``||``,
parentheses) so the pattern can be checked against real audit events before it is deployed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from errors import KaadError
from rules.history import RuleHistory

#: CloudWatch refuses longer filter patterns.
MAX_PATTERN = 1024
#: Kubelets write their own mirror pods and come and go with nodes: one wildcard stands for all.
NODES = "system:node:*"


@dataclass(frozen=True)
class MetricFilter:
    """A filter pattern, where it applies, and what it counts."""

    pattern: str
    log_group: str
    writers: tuple[str, ...]
    #: Writers left out because a filter cannot name them safely (their writes then alarm).
    left_out: tuple[str, ...] = ()
    name: str = "kaad-unknown-pod-secret-writer"
    namespace: str = "kaad"
    metric: str = "UnknownPodSecretWrites"

    def transformations(self) -> list[dict]:
        return [{"metricName": self.metric, "metricNamespace": self.namespace, "metricValue": "1", "defaultValue": 0}]

    def alarm(self) -> dict:
        """put_metric_alarm's arguments: any write in a minute alarms."""
        return {
            "AlarmName": self.name,
            "AlarmDescription": "A write to pods or secrets by an identity kaad never saw write them (kaad export).",
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        }

    def cloudformation(self) -> dict:
        alarm = self.alarm()
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": "kaad: known-writers tripwire for pods and secrets",
            "Resources": {
                "UnknownWriterFilter": {
                    "Type": "AWS::Logs::MetricFilter",
                    "Properties": {
                        "FilterName": self.name,
                        "LogGroupName": self.log_group,
                        "FilterPattern": self.pattern,
                        "MetricTransformations": [
                            {
                                "MetricName": self.metric,
                                "MetricNamespace": self.namespace,
                                "MetricValue": "1",
                                "DefaultValue": 0,
                            }
                        ],
                    },
                },
                "UnknownWriterAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": alarm},
            },
        }

    def cli(self) -> str:
        """The two aws CLI commands, every argument shell-quoted."""
        put_filter = [
            "aws",
            "logs",
            "put-metric-filter",
            "--log-group-name",
            self.log_group,
            "--filter-name",
            self.name,
            "--filter-pattern",
            self.pattern,
            "--metric-transformations",
            f"metricName={self.metric},metricNamespace={self.namespace},metricValue=1,defaultValue=0",
        ]
        a = self.alarm()
        put_alarm = [
            "aws", "cloudwatch", "put-metric-alarm", "--alarm-name", a["AlarmName"], "--alarm-description",
            a["AlarmDescription"], "--namespace", a["Namespace"], "--metric-name", a["MetricName"],
            "--statistic", a["Statistic"], "--period", str(a["Period"]), "--evaluation-periods",
            str(a["EvaluationPeriods"]), "--threshold", str(a["Threshold"]), "--comparison-operator",
            a["ComparisonOperator"], "--treat-missing-data", a["TreatMissingData"],
        ]  # fmt: skip
        return "\n".join(shlex.join(c) for c in (put_filter, put_alarm))


def known_writers(history: RuleHistory, *, min_days: int = 1) -> list[str]:
    """Identities that wrote pods or secrets on at least ``min_days`` training days; nodes as one."""
    names: set[str] = set()
    for per_identity in history.writers.values():
        names.update(i for i, days in per_identity.items() if days >= min_days)
    nodes = {n for n in names if n.startswith("system:node:")}
    return sorted((names - nodes) | ({NODES} if nodes else set()))


def _nameable(value: str) -> bool:
    # CloudWatch has no escape for a double quote in a value, and a control character would
    # reach a terminal through the aws command: such a name is left out, so its writes alarm.
    return not any(c in value for c in '"\\*') and value.isprintable()


def build_filter(history: RuleHistory, log_group: str, *, min_days: int = 1) -> MetricFilter:
    """The known-writers filter for ``log_group`` (an EKS cluster's ``/aws/eks/NAME/cluster``)."""
    every = known_writers(history, min_days=min_days)
    writers = [w for w in every if _nameable(w) or w == NODES]
    terms = [
        '$.stage = "ResponseComplete"',
        '($.verb = "create" || $.verb = "update" || $.verb = "patch")',
        '($.objectRef.resource = "pods" || $.objectRef.resource = "secrets")',
        "$.objectRef.subresource NOT EXISTS",
        "$.responseStatus.code < 400",
        *[f'$.user.username != "{w}"' for w in writers],
    ]
    pattern = "{ " + " && ".join(terms) + " }"
    if len(pattern) > MAX_PATTERN:
        raise KaadError(
            f"the filter pattern for {len(writers)} known writers is {len(pattern)} characters, over "
            f"CloudWatch's {MAX_PATTERN}; raise --min-days to keep only the regular writers"
        )
    parse(pattern)  # what CloudWatch would refuse, refused here
    return MetricFilter(pattern, log_group, tuple(writers), tuple(w for w in every if w not in writers))


# --- CloudWatch JSON filter syntax: parse and evaluate --------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))|(?P<selector>\$(?:\.[A-Za-z0-9_\-/]+)+)"
    r'|(?P<string>"[^"]*")|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>NOT EXISTS|IS NULL|EXISTS))'
)


def _tokens(body: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(body.rstrip()):
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise KaadError(f"filter pattern: cannot read {body[pos : pos + 20]!r} at character {pos}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def parse(pattern: str):
    """Parse a JSON filter pattern ``{ ... }`` into a tree; raise :class:`KaadError` if malformed."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise KaadError("filter pattern: a JSON pattern is enclosed in { }")
    tokens = _tokens(text[1:-1])
    tree, rest = _or(tokens)
    if rest:
        raise KaadError(f"filter pattern: unexpected {rest[0][1]!r}")
    return tree


def _or(tokens):
    left, tokens = _and(tokens)
    while tokens and tokens[0] == ("op", "||"):
        right, tokens = _and(tokens[1:])
        left = ("or", left, right)
    return left, tokens


def _and(tokens):
    left, tokens = _atom(tokens)
    while tokens and tokens[0] == ("op", "&&"):
        right, tokens = _atom(tokens[1:])
        left = ("and", left, right)
    return left, tokens


def _atom(tokens):
    if not tokens:
        raise KaadError("filter pattern: an expression is missing")
    if tokens[0] == ("op", "("):
        inner, rest = _or(tokens[1:])
        if not rest or rest[0] != ("op", ")"):
            raise KaadError("filter pattern: a parenthesis is not closed")
        return inner, rest[1:]
    if tokens[0][0] != "selector" or len(tokens) < 2:
        raise KaadError(f"filter pattern: expected a $.selector, found {tokens[0][1]!r}")
    selector, second = tokens[0][1], tokens[1]
    if second[0] == "word":
        return ("test", selector, second[1]), tokens[2:]
    if second[0] != "op" or second[1] in ("&&", "||", "(", ")") or len(tokens) < 3:
        raise KaadError(f"filter pattern: expected a comparison after {selector}")
    value = tokens[2]
    if value[0] not in ("string", "number"):
        raise KaadError(f"filter pattern: expected a value after {selector} {second[1]}")
    if value[0] == "string" and second[1] not in ("=", "!="):
        raise KaadError(f"filter pattern: strings compare with = or != only ({selector})")
    literal: str | float = value[1][1:-1] if value[0] == "string" else float(value[1])
    return ("cmp", selector, second[1], literal), tokens[3:]


_MISSING = object()


def _lookup(event: Mapping, selector: str):
    value: object = event
    for key in selector[2:].split("."):
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def matches(tree, event: Mapping) -> bool:
    """Whether an audit event (parsed JSON) matches a parsed pattern, as CloudWatch decides."""
    kind = tree[0]
    if kind == "or":
        return matches(tree[1], event) or matches(tree[2], event)
    if kind == "and":
        return matches(tree[1], event) and matches(tree[2], event)
    value = _lookup(event, tree[1])
    if kind == "test":
        return {"NOT EXISTS": value is _MISSING, "EXISTS": value is not _MISSING, "IS NULL": value is None}[tree[2]]
    _, _, op, literal = tree
    if value is _MISSING:  # a comparison on an absent field does not match, != included
        return False
    if isinstance(literal, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return {"=": value == literal, "!=": value != literal, "<": value < literal, ">": value > literal,
                "<=": value <= literal, ">=": value >= literal}[op]  # fmt: skip
    text = value if isinstance(value, str) else json.dumps(value)
    # Only * is a wildcard in CloudWatch values.
    equal = re.fullmatch(".*".join(map(re.escape, literal.split("*"))), text, re.DOTALL) is not None
    return equal if op == "=" else not equal
