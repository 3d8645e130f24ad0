"""Each attack's labelled events are present, labelled right, and look like the technique."""

from __future__ import annotations

import ipaddress
from datetime import datetime

import pytest

from scenarios.attacks import ATTACKS


def _outside_vpc(event) -> bool:
    return ipaddress.ip_address(event["sourceIPs"][0]) not in ipaddress.ip_network("10.0.0.0/8")


def _ref(event, key):
    return (event.get("objectRef") or {}).get(key)


def _is(event, verb, resource, subresource=None):
    return event["verb"] == verb and _ref(event, "resource") == resource and _ref(event, "subresource") == subresource


def _local_hour(event, tz):
    return (datetime.fromisoformat(event["requestReceivedTimestamp"][:19]).hour + tz) % 24


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _containers(spec):
    return spec.get("containers", [])


LOOKS_LIKE = {
    "secret_enumeration": lambda ev, loud: (
        sum(_is(e, "list", "secrets") for e in ev) >= (5 if loud else 2)
        and any(e["responseStatus"]["code"] == 403 for e in ev)
    ),
    "permission_discovery": lambda ev, loud: (
        any(_is(e, "create", "selfsubjectrulesreviews") for e in ev)
        and any(_is(e, "create", "selfsubjectaccessreviews") for e in ev)
    ),
    "exec_into_pods": lambda ev, loud: (
        all(_is(e, "create", "pods", "exec") and "command=" in e["requestURI"] for e in ev)
        and any(_ref(e, "namespace") == "kube-system" for e in ev)
    ),
    "privileged_pod": lambda ev, loud: any(
        _is(e, "create", "pods")
        and e["level"] == "RequestResponse"
        and _containers(e["requestObject"]["spec"])[0]["securityContext"]["privileged"]
        and e["requestObject"]["spec"]["volumes"][0]["hostPath"]["path"] == "/"
        for e in ev
    ),
    "cluster_admin_binding": lambda ev, loud: any(
        _is(e, "create", "clusterrolebindings") and e["requestObject"]["roleRef"]["name"] == "cluster-admin" for e in ev
    ),
    "token_request": lambda ev, loud: (
        any(_is(e, "create", "serviceaccounts", "token") and _ref(e, "name") not in e["user"]["username"] for e in ev)
        and len({e["user"]["username"] for e in ev}) == 2
    ),
    "stolen_token_external": lambda ev, loud: (
        all(_outside_vpc(e) and e["user"]["username"].startswith("system:serviceaccount:") for e in ev)
        and any(_ref(e, "resource") == "secrets" for e in ev)
    ),
    "anonymous_probing": lambda ev, loud: (
        all(e["user"]["username"] == "system:anonymous" and _outside_vpc(e) for e in ev)
        and len({e["requestURI"] for e in ev}) >= 4
        and sum(e["responseStatus"]["code"] == 403 for e in ev) > len(ev) / 2
    ),
    "cronjob_persistence": lambda ev, loud: any(
        _is(e, "create", "cronjobs")
        and "| sh"
        in " ".join(e["requestObject"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"])
        for e in ev
    ),
    "daemonset_persistence": lambda ev, loud: any(
        _is(e, "create", "daemonsets")
        and _ref(e, "namespace") == "kube-system"
        and e["requestObject"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"]
        for e in ev
    ),
    "mutating_webhook": lambda ev, loud: any(
        _is(e, "create", "mutatingwebhookconfigurations")
        and e["requestObject"]["webhooks"][0]["clientConfig"]["url"].startswith("https://")
        for e in ev
    ),
    "aws_auth_edit": lambda ev, loud: any(
        _is(e, "patch", "configmaps")
        and _ref(e, "name") == "aws-auth"
        and _ref(e, "namespace") == "kube-system"
        and "system:masters" in e["requestObject"]["data"]["mapRoles"]
        for e in ev
    ),
    "events_deleted": lambda ev, loud: (
        ev and all(e["verb"] in {"delete", "deletecollection"} and _ref(e, "resource") == "events" for e in ev)
    ),
    "csr_approval": lambda ev, loud: (
        any(
            _is(e, "create", "certificatesigningrequests") and "system:masters" in e["requestObject"]["spec"]["groups"]
            for e in ev
        )
        and any(_is(e, "update", "certificatesigningrequests", "approval") for e in ev)
        and len({e["user"]["username"] for e in ev}) == 1
    ),
    "impersonation": lambda ev, loud: ev and all("impersonatedUser" in e for e in ev),
    "night_session_new_country": lambda ev, loud: all(
        _outside_vpc(e) and e["user"]["username"].startswith("arn:aws:sts::") for e in ev
    ),
    "low_and_slow_probing": lambda ev, loud: (
        len({e["user"]["username"] for e in ev}) == 1
        and all(e["responseStatus"]["code"] == 403 and e["verb"] in {"get", "list"} for e in ev)
        and len({e["requestReceivedTimestamp"][11:13] for e in ev}) >= 8
    ),
}


def test_every_attack_has_a_technique_check():
    assert set(LOOKS_LIKE) == set(ATTACKS) and len(ATTACKS) >= 14


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_present_labelled_and_looks_like_its_technique(attacked, name):
    labels = [row for row in attacked["labels"] if row["scenario"] == name]
    assert labels, f"{name} injected nothing"
    by_id = {(e["auditID"], e["stage"]): e for e in attacked["events"]}
    events = [by_id[(row["auditID"], row["stage"])] for row in labels]
    for row, event in zip(labels, events, strict=True):
        assert row["identity"] == event["user"]["username"]
        assert row["technique"] == ATTACKS[name].technique
        assert row["variant"] == attacked["variant"]
        assert _t(row["start"]) <= _t(event["requestReceivedTimestamp"]) <= _t(row["end"])
    assert LOOKS_LIKE[name](events, attacked["variant"] == "loud"), name


def test_quiet_is_quieter_than_loud(attacked):
    n = len({row["auditID"] for row in attacked["labels"] if row["scenario"] in ATTACKS})
    if attacked["variant"] == "quiet":
        assert n < 80
    else:
        assert n > 150


def test_night_session_is_at_night_when_loud_and_in_working_hours_when_quiet(attacked):
    """Platform admins work remotely on UTC: 00-06 is their night, 09-18 their working day."""
    rows = [r for r in attacked["labels"] if r["scenario"] == "night_session_new_country"]
    hours = {int(r["timestamp"][11:13]) for r in rows}
    assert hours <= (set(range(0, 6)) if attacked["variant"] == "loud" else set(range(9, 18))), hours
