"""Fields the client controls cannot hide a request or an address.

kube-apiserver takes an event's auditID from the client's ``Audit-ID`` header, and lists the
client's ``X-Forwarded-For`` addresses first in ``sourceIPs``. An attacker with a stolen token
can send both. These tests play that attacker.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from events.source_address import parse_proxies
from pipelines.ingest import ingest

RUNNER = CliRunner()


def _event(**over) -> dict:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "4d3c2b1a-0000-4000-8000-00000000beef",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/configmaps/cart-settings",
        "verb": "get",
        "user": {
            "username": "system:serviceaccount:shop:cart",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        },
        "sourceIPs": ["10.0.7.21"],
        "userAgent": "cart/1.4.2 (linux/amd64) kubernetes/abc1234",
        "objectRef": {"resource": "configmaps", "namespace": "shop", "name": "cart-settings", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-03-22T02:10:00.100000Z",
        "stageTimestamp": "2026-03-22T02:10:00.104000Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    event.update(over)
    return event


# The attacker's second request carries the auditID of the first (curl -H 'Audit-ID: ...').
BINDING = _event(
    requestURI="/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    verb="create",
    userAgent="curl/8.5.0",
    objectRef={
        "resource": "clusterrolebindings",
        "apiGroup": "rbac.authorization.k8s.io",
        "apiVersion": "v1",
        "name": "cart-admin",
    },
    responseStatus={"metadata": {}, "code": 201},
    requestReceivedTimestamp="2026-03-22T02:10:03.900000Z",
    stageTimestamp="2026-03-22T02:10:03.912000Z",
)


def _write(path, *events) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def test_a_reused_audit_id_does_not_hide_the_second_request(tmp_path):
    """A get, then a cluster-admin-style binding under the same auditID and stage: two rows."""
    result = ingest([_write(tmp_path / "audit.log", _event(), BINDING)])
    events = result.events
    assert events["verb"].tolist() == ["get", "create"]
    assert events["target_resource"].tolist() == ["configmaps", "clusterrolebindings"]
    assert events["audit_id_reused"].tolist() == [False, True]
    assert result.stats.n_audit_id_reused == 1
    assert result.stats.n_redelivered == 0


def test_a_true_redelivery_still_collapses(tmp_path):
    """The same line read twice (overlapping CloudWatch reads) is one request, not a reuse."""
    result = ingest([_write(tmp_path / "audit.log", _event(), _event(), BINDING, BINDING)])
    assert len(result.events) == 2
    assert (result.stats.n_redelivered, result.stats.n_audit_id_reused) == (2, 1)


def test_the_stages_of_one_request_still_merge(tmp_path):
    """RequestReceived has no response code; it is still the same request as its completion."""
    received = _event(stage="RequestReceived", stageTimestamp="2026-03-22T02:10:00.100100Z")
    del received["responseStatus"]
    result = ingest([_write(tmp_path / "audit.log", received, _event())])
    assert result.events["stage"].tolist() == ["ResponseComplete"]
    assert (result.stats.n_stage_merged, result.stats.n_audit_id_reused) == (1, 0)


def test_the_ingest_summary_counts_reused_ids(tmp_path):
    path = _write(tmp_path / "audit.log", _event(), BINDING)
    outcome = RUNNER.invoke(app, ["ingest", path])
    assert outcome.exit_code == 0, outcome.output
    assert "reused auditIDs" in outcome.output and "1 request(s)" in outcome.output


def test_the_lake_keeps_a_request_that_reuses_an_id_it_holds(tmp_path):
    """The get is in the lake; the next read brings only the binding under the same ID: it is
    appended and flagged by the lake. A third read brings the get again: already there."""
    lake = tmp_path / "lake"
    first = ingest([_write(tmp_path / "a.log", _event())], out=lake, collect=False)
    assert first.lake.n_written == 1
    second = ingest([_write(tmp_path / "b.log", BINDING)], out=lake, collect=False)
    assert (second.lake.n_written, second.lake.n_audit_id_reused) == (1, 1)
    third = ingest([_write(tmp_path / "c.log", _event())], out=lake, collect=False)
    assert (third.lake.n_written, third.lake.n_already_there) == (0, 1)
    events = ingest([str(lake)]).events.sort_values("timestamp")
    assert events["verb"].tolist() == ["get", "create"]
    assert events["audit_id_reused"].tolist() == [False, True]


def test_reading_the_lake_twice_adds_nothing(tmp_path):
    lake = tmp_path / "lake"
    path = _write(tmp_path / "a.log", _event(), BINDING)
    ingest([path], out=lake, collect=False)
    again = ingest([path], out=lake, collect=False)
    assert (again.lake.n_written, again.lake.n_already_there) == (0, 2)


# --- X-Forwarded-For ---------------------------------------------------------------------
# A stolen token used from 198.51.100.23, with "X-Forwarded-For: 10.0.7.21" (the cart pod's
# own address) typed in to look like the workload.
FORGED = _event(sourceIPs=["10.0.7.21", "198.51.100.23"])


def test_the_source_address_is_the_peer_not_the_typed_header(tmp_path):
    events = ingest([_write(tmp_path / "audit.log", FORGED)]).events
    assert events["source_ip"].tolist() == ["198.51.100.23"]
    assert events["forwarded_unverified"].tolist() == [True]
    assert list(events["source_ips"].iloc[0]) == ["10.0.7.21", "198.51.100.23"]  # kept as logged


def test_a_trusted_proxy_forwards_the_client_it_saw(tmp_path):
    """Behind a proxy the operator names, the address the proxy reports is the client."""
    events = ingest([_write(tmp_path / "audit.log", FORGED)], trusted_proxies=parse_proxies("198.51.100.0/24")).events
    assert events["source_ip"].tolist() == ["10.0.7.21"]
    assert events["forwarded_unverified"].tolist() == [False]


def test_loopback_is_trusted_by_default_and_the_chain_left_of_the_client_is_flagged(tmp_path):
    """A proxy on the API server's host (127.0.0.1) reports a client that itself claimed to be
    forwarding for a pod: the client is 203.0.113.9; the pod address is an unverified claim."""
    chain = _event(sourceIPs=["10.0.7.21", "203.0.113.9", "127.0.0.1"])
    plain = _event(auditID="another", sourceIPs=["203.0.113.9", "127.0.0.1"])
    events = ingest([_write(tmp_path / "audit.log", chain, plain)]).events
    assert events["source_ip"].tolist() == ["203.0.113.9", "203.0.113.9"]
    assert events["forwarded_unverified"].tolist() == [True, False]


def test_a_truncated_line_keeps_the_whole_chain(tmp_path):
    """CloudWatch cut the line; the salvaged event still knows the peer."""
    line = json.dumps({**FORGED, "requestObject": {"data": "x" * 500}})
    cut = line[: line.index('"requestObject"') + 40]
    events = ingest([_write_text(tmp_path / "audit.log", cut)]).events
    assert events["truncated"].tolist() == [True]
    assert events["source_ip"].tolist() == ["198.51.100.23"]


def _write_text(path, text: str) -> str:
    path.write_text(text + "\n")
    return str(path)


def test_a_bad_trusted_proxy_is_a_one_line_error(tmp_path):
    path = _write(tmp_path / "audit.log", FORGED)
    outcome = RUNNER.invoke(app, ["ingest", path, "--trusted-proxies", "10.0.0.0/8,proxy.local"])
    assert outcome.exit_code == 2
    assert "'proxy.local' is not an IP address or CIDR" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize(("attack", "feature"), [(BINDING, "n_audit_id_reused"), (FORGED, "n_forwarded_unverified")])
def test_detection_counts_each_in_the_attackers_window(tmp_path, attack, feature):
    """Each is a counted feature of the window it happened in, explained in plain words."""
    from features.featurise import featurise_history
    from features.windows import SENSITIVE
    from models.explain import reason_text

    assert feature in SENSITIVE
    later = {
        **attack,
        "auditID": attack["auditID"] if attack is BINDING else "x-1",
        "requestReceivedTimestamp": "2026-03-22T03:10:00.000000Z",
    }
    events = ingest([_write(tmp_path / "audit.log", _event(), later)]).events
    windows, _ = featurise_history([events])
    counts = windows[feature].droplevel("identity")
    assert counts.tolist() == [0, 1]  # 02:00 window: the plain get; 03:00: the attack
    text = reason_text(feature, 1.0, 0.0, events.iloc[[1]], {}, "system:serviceaccount:shop:cart")
    assert text.startswith("1 request(s)")


def test_scoring_names_the_peer_and_honours_trusted_proxies(tmp_path, trained):
    """The daily job sees the attacker's own address; behind a named proxy, the forwarded one."""
    from events.source_address import parse_proxies
    from pipelines.score import score_day

    path = _write(tmp_path / "audit.log", FORGED)
    bundle = trained["result"].bundle
    for proxies, seen in ((None, "198.51.100.23"), (parse_proxies("198.51.100.0/24"), "10.0.7.21")):
        result = score_day([path], bundle, trusted_proxies=proxies)
        (finding,) = [f for f in result.findings if f.identity == "system:serviceaccount:shop:cart"]
        assert finding.calls["source_ip"].tolist() == [seen]
