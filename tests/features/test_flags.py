"""Sensitive-action flags are columns of the event table: what raises each, and what does not.

Each test ingests a few audit events the way a cluster would log them and reads the ``flags``
(carried out), ``flags_attempted`` (refused or failed) and ``action_families`` columns.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from cli import app
from features.flags import FAMILIES, FLAGS
from pipelines.ingest import ingest

RUNNER = CliRunner()


def _event(
    n: int,
    verb: str,
    resource: str | None,
    *,
    ns: str | None = "shop",
    name: str | None = None,
    user: str = "dana@example.com",
    code: int = 201,
    body=None,
    sub: str | None = None,
    uri: str | None = None,
    ips: tuple[str, ...] = ("10.0.3.17",),
) -> dict:
    ref = {
        k: v
        for k, v in (("resource", resource), ("subresource", sub), ("namespace", ns), ("name", name))
        if v is not None
    }
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": uri or f"/api/v1/namespaces/{ns}/{resource}",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": list(ips),
        "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        "objectRef": ref,
        "responseStatus": {"code": code},
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow"},
        "requestReceivedTimestamp": f"2026-03-10T14:02:{n:02d}.000000Z",
    }
    if body is not None:
        event["requestObject"] = body
    return event


def _flags(tmp_path, *events) -> list[tuple[list, list]]:
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = ingest([str(path)]).events
    return [(_list(f), _list(a)) for f, a in zip(rows["flags"], rows["flags_attempted"], strict=True)]


def _list(value) -> list:
    return [] if value is None or value is pd.NA else list(value)


BINDING = {
    "kind": "ClusterRoleBinding",
    "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"kind": "User", "name": "dana@example.com"}],
}


def test_a_refused_binding_is_an_attempt_and_a_granted_one_is_done(tmp_path):
    """The same cluster-admin binding twice: RBAC refuses it (403), then allows it (201)."""
    denied = _event(1, "create", "clusterrolebindings", ns=None, name="dana-admin", code=403, body=BINDING)
    granted = _event(2, "create", "clusterrolebindings", ns=None, name="dana-admin", code=201, body=BINDING)
    assert _flags(tmp_path, denied, granted) == [([], ["privileged_binding"]), (["privileged_binding"], [])]


def test_a_binding_to_a_control_plane_role_is_privileged(tmp_path):
    body = {**BINDING, "roleRef": {"kind": "ClusterRole", "name": "system:kube-controller-manager"}}
    plain = {**BINDING, "roleRef": {"kind": "ClusterRole", "name": "view"}}
    rows = _flags(
        tmp_path,
        _event(1, "create", "clusterrolebindings", ns=None, body=body),
        _event(2, "create", "clusterrolebindings", ns=None, body=plain),
    )
    assert rows == [(["privileged_binding"], []), ([], [])]


def _role(n: int, *rules) -> dict:
    body = {"kind": "ClusterRole", "rules": [{"apiGroups": [""], "resources": r, "verbs": v} for r, v in rules]}
    return _event(n, "create", "clusterroles", ns=None, name=f"role-{n}", body=body)


def test_roles_that_grant_exec_node_proxy_secrets_or_writes_are_flagged(tmp_path):
    rows = _flags(
        tmp_path,
        _role(1, (["pods/exec"], ["create"])),
        _role(2, (["nodes/proxy"], ["get"])),
        _role(3, (["secrets"], ["get", "list"])),
        _role(4, (["deployments"], ["patch"])),
        _role(5, (["pods", "pods/log"], ["get", "list", "watch"])),
    )
    assert [done for done, _ in rows] == [
        ["role_grants_exec", "role_grants_write"],
        ["role_grants_node_proxy"],
        ["role_grants_secrets"],
        ["role_grants_write"],
        [],
    ]


def test_changing_a_system_role_is_flagged_but_changing_ones_own_role_is_not(tmp_path):
    rows = _flags(
        tmp_path,
        _event(1, "delete", "clusterroles", ns=None, name="system:kube-aggregator", code=200),
        _event(2, "delete", "clusterroles", ns=None, name="shop-reader", code=200),
    )
    assert rows == [(["system_role_changed"], []), ([], [])]


def _pod(n: int, spec: dict, ns: str = "shop") -> dict:
    return _event(
        n,
        "create",
        "pods",
        ns=ns,
        name=f"pod-{n}",
        body={"kind": "Pod", "metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]}, "spec": spec},
        user="system:serviceaccount:kube-system:replicaset-controller",
    )


def test_containers_that_run_as_root_are_flagged_at_pod_or_container_level(tmp_path):
    rows = _flags(
        tmp_path,
        _pod(1, {"securityContext": {"runAsUser": 0}, "containers": [{"image": "web:1"}]}),
        _pod(2, {"containers": [{"image": "web:1", "securityContext": {"runAsNonRoot": False}}]}),
        _pod(3, {"containers": [{"image": "web:1", "securityContext": {"allowPrivilegeEscalation": True}}]}),
        _pod(4, {"containers": [{"image": "web:1", "securityContext": {"runAsUser": 1000, "runAsNonRoot": True}}]}),
    )
    assert [done for done, _ in rows] == [["runs_as_root"]] * 3 + [[]]


def test_pods_and_service_accounts_created_in_system_namespaces(tmp_path):
    rows = _flags(
        tmp_path,
        _pod(1, {"containers": [{"image": "miner:latest"}]}, ns="kube-public"),
        _event(2, "create", "serviceaccounts", ns="kube-system", name="helper", body={"kind": "ServiceAccount"}),
        _pod(3, {"containers": [{"image": "web:1"}]}, ns="shop"),
    )
    assert [done for done, _ in rows] == [["system_namespace_workload"], ["system_namespace_serviceaccount"], []]


def test_exposed_services_and_ingresses_without_tls(tmp_path):
    ingress = {"kind": "Ingress", "spec": {"rules": [{"host": "shop.example.com"}]}}
    with_tls = {
        "kind": "Ingress",
        "spec": {
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [{"host": "shop.example.com"}],
        },
    }
    rows = _flags(
        tmp_path,
        _event(1, "create", "services", name="web", body={"kind": "Service", "spec": {"type": "NodePort"}}),
        _event(2, "create", "services", name="db", body={"kind": "Service", "spec": {"type": "ClusterIP"}}),
        _event(3, "create", "ingresses", name="web", body=ingress),
        _event(4, "create", "ingresses", name="web", body=with_tls),
        # A patch that leaves spec.tls out does not remove TLS.
        _event(5, "patch", "ingresses", name="web", code=200, body={"metadata": {"labels": {"a": "b"}}}),
    )
    assert [done for done, _ in rows] == [["service_exposed"], [], ["ingress_without_tls"], [], []]


def test_a_config_map_holding_a_credential_is_flagged_and_the_value_kept_nowhere(tmp_path):
    secret_value = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    leaky = {"kind": "ConfigMap", "data": {"app.properties": f"aws_secret_access_key = {secret_value}\n"}}
    plain = {"kind": "ConfigMap", "data": {"app.properties": "color.good=purple\nallow.textmode=true\n"}}
    path = tmp_path / "audit.jsonl"
    path.write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in (
                _event(1, "create", "configmaps", name="leaky", body=leaky),
                _event(2, "create", "configmaps", name="plain", body=plain),
            )
        )
    )
    out = tmp_path / "events.parquet"
    result = RUNNER.invoke(app, ["ingest", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table["flags"].to_pylist() == [["configmap_credentials"], None]
    assert table["configmap_credentials"].to_pylist() == [True, False]
    assert secret_value.encode() not in out.read_bytes()
    assert secret_value not in json.dumps(table.to_pylist(), default=str)


def test_the_table_written_by_ingest_out_carries_flags_and_families(tmp_path):
    """What a hunter queries: `kaad ingest --out events.parquet`, then the three columns."""
    path = tmp_path / "audit.jsonl"
    exec_ = _event(
        1,
        "create",
        "pods",
        sub="exec",
        name="web-0",
        code=101,
        uri="/api/v1/namespaces/shop/pods/web-0/exec?command=cat&command=%2Fvar%2Frun%2F"
        "secrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken",
    )
    path.write_text(json.dumps(exec_) + "\n")
    out = tmp_path / "events.parquet"
    assert RUNNER.invoke(app, ["ingest", str(path), "--out", str(out)]).exit_code == 0
    row = pq.read_table(out, columns=["flags", "flags_attempted", "action_families"]).to_pylist()[0]
    assert row == {
        "flags": ["exec", "exec_reads_credentials"],
        "flags_attempted": None,
        "action_families": ["execution"],
    }


def test_anonymous_requests_count_on_version_but_not_on_health_probes(tmp_path):
    """Scanners ask /version first; load balancers ask /healthz and /readyz, and workload
    identity clients the service-account issuer's discovery document."""

    def anon(n: int, uri: str, ips=("10.0.0.12",), code: int = 200) -> dict:
        return _event(n, "get", None, ns=None, user="system:anonymous", code=code, uri=uri, ips=ips)

    rows = _flags(
        tmp_path,
        anon(1, "/version"),
        anon(2, "/readyz?verbose"),
        anon(3, "/livez/ping"),
        anon(4, "/healthz", ips=("44.238.138.237",)),
        anon(5, "/vendor/phpunit/src/Util/PHP/eval-stdin.php", ips=("8.216.81.10",), code=403),
        anon(6, "/.well-known/openid-configuration"),
        anon(7, "/livezzz"),
    )
    assert rows == [
        (["anonymous_request"], []),
        ([], []),
        ([], []),
        (["public_anonymous"], []),
        ([], ["anonymous_request", "public_anonymous", "public_refused"]),
        ([], []),
        (["anonymous_request"], []),
    ]


def test_public_addresses_are_judged_on_the_trusted_client_address(tmp_path):
    """A node credential used from the internet, and one that typed a public X-Forwarded-For."""
    token = {"sub": "token", "ns": "kube-system", "name": "kube-proxy", "user": "system:node:ip-10-0-3-17"}
    from_internet = _event(1, "create", "serviceaccounts", ips=("198.18.7.1",), **token)
    forged_header = _event(2, "create", "serviceaccounts", ips=("198.18.7.1", "10.0.3.17"), **token)
    from_vpc = _event(3, "create", "serviceaccounts", ips=("10.0.3.17",), **token)
    rows = _flags(tmp_path, from_internet, forged_header, from_vpc)
    assert rows == [
        (["public_system_namespace", "public_system_principal"], []),
        (["forwarded_unverified"], []),
        ([], []),
    ]


def test_an_application_s_token_used_from_outside_the_cluster_is_flagged(tmp_path):
    """A stolen token looks like this: an application's service account reads its own
    namespace's secret, as it always does, but from a residential proxy, an address no pod
    has. From its pod's address (RFC 1918 on EKS, carrier-grade NAT for custom pod networking,
    IPv6 unique-local) the same request raises nothing; nor does a person from the internet."""
    app = "system:serviceaccount:shop:cart"
    read = {"verb": "get", "resource": "secrets", "name": "db-credentials", "user": app}
    rows = _flags(
        tmp_path,
        _event(1, ips=("81.17.23.140",), **read),
        _event(2, ips=("10.0.37.12",), **read),
        _event(3, ips=("100.64.3.9",), **read),
        _event(4, ips=("fd00:ec2::17",), **read),
        _event(5, "get", "pods", ips=("81.17.23.140",)),
    )
    assert rows == [(["public_service_account"], []), ([], []), ([], []), ([], []), ([], [])]


def test_every_flag_has_a_family_and_a_definition():
    assert len({f.name for f in FLAGS}) == len(FLAGS)
    assert all(f.family in FAMILIES and f.definition for f in FLAGS)


def test_window_counters_count_what_was_done_and_attempts_apart(tmp_path):
    """The detector's n_admin_bindings counts the granted binding; the refused one is an attempt."""
    from features.enrich import enrich_events

    path = tmp_path / "audit.jsonl"
    path.write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in (
                _event(1, "create", "clusterrolebindings", ns=None, name="a", code=403, body=BINDING),
                _event(2, "create", "clusterrolebindings", ns=None, name="b", code=201, body=BINDING),
            )
        )
    )
    enriched = enrich_events(ingest([str(path)]).events)
    assert enriched["n_admin_bindings"].tolist() == [False, True]
    assert enriched["n_attempted"].tolist() == [True, False]


def test_tables_written_before_the_flag_columns_get_them_when_read(tmp_path):
    """An event table from an older kaad (no flag or new body columns) is read with its flags."""
    import pyarrow.parquet as pq

    from features.flags import FLAG_COLUMNS

    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(_event(1, "create", "clusterrolebindings", ns=None, body=BINDING)) + "\n")
    new = tmp_path / "new.parquet"
    ingest([str(path)], out=new)
    table = pq.read_table(new)
    old = tmp_path / "old.parquet"
    pq.write_table(
        table.drop_columns(
            [*FLAG_COLUMNS, "pod_runs_as_root", "service_type", "ingress_tls", "configmap_credentials", "csr_signer"]
        ),
        old,
    )
    events = ingest([str(old)]).events
    assert [_list(v) for v in events["flags"]] == [["privileged_binding"]]


def test_frames_without_the_flag_columns_are_flagged_by_the_same_definition(tmp_path):
    from features.enrich import enrich_events
    from features.flags import FLAG_COLUMNS

    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(_event(1, "create", "clusterrolebindings", ns=None, body=BINDING)) + "\n")
    events = ingest([str(path)]).events
    bare = enrich_events(events.drop(columns=list(FLAG_COLUMNS)))
    assert bare["n_admin_bindings"].tolist() == enrich_events(events)["n_admin_bindings"].tolist() == [True]


def test_docs_list_every_flag_as_defined():
    from pathlib import Path

    from features.flags import render_markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "flags.md"
    assert render_markdown() in docs.read_text(), "run: python -m features.flags, paste into docs/flags.md"


def test_an_explanation_names_the_actions_that_were_attempted(tmp_path):
    """Two refused requests in a window: the reason says what they tried, by flag."""
    from features.enrich import enrich_events
    from models.explain import reason_text, top_calls

    role = _role(3, (["pods/exec"], ["create"]))
    role["responseStatus"] = {"code": 403}
    path = tmp_path / "audit.jsonl"
    path.write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in (
                _event(1, "get", "pods", name="web-0", code=200),
                _event(2, "create", "clusterrolebindings", ns=None, name="a", code=403, body=BINDING),
                role,
            )
        )
    )
    events = enrich_events(ingest([str(path)]).events)
    text = reason_text("n_attempted", 2.0, 0.0, events, {}, "dana@example.com")
    assert text == (
        "2 refused or failed attempt(s) at flagged actions (privileged_binding, "
        "role_grants_exec, role_grants_write); usual 0"
    )
    assert top_calls(events)["verb"].tolist()[-1] == "get"  # the attempts come first


def _webhook(n: int, kind: str, client: dict, user: str = "ci-deployer") -> dict:
    resource = f"{kind.lower()}webhookconfigurations"
    body = {"kind": f"{kind}WebhookConfiguration", "webhooks": [{"name": f"hook-{n}", "clientConfig": client}]}
    return _event(n, "create", resource, ns=None, name=f"hook-{n}", body=body, user=user)


def test_a_webhook_that_sends_its_requests_out_of_the_cluster_is_flagged_apart_from_any_webhook(tmp_path):
    # Operators register webhooks served by a service of their own (Kyverno, the AWS Load
    # Balancer Controller); EKS's own webhooks call the control plane's loopback. An intruder's
    # admission controller sends every pod it matches to a server of the intruder's: a public
    # address, or a host name of theirs. Every webhook write is flagged; only those two call out.
    path = tmp_path / "audit.jsonl"
    hooks = [
        _webhook(1, "Validating", {"service": {"namespace": "kyverno", "name": "kyverno-svc", "path": "/validate"}}),
        _webhook(2, "Mutating", {"url": "https://127.0.0.1:23443/mutate"}, user="eks:addon-manager"),
        _webhook(3, "Mutating", {"url": "https://kyverno-svc.kyverno.svc:443/mutate"}),
        _webhook(4, "Mutating", {"url": "https://203.0.113.80:8443/mutate"}, user="dana@example.com"),
        _webhook(5, "Validating", {"url": "https://pod-policy.example.dev/validate"}, user="dana@example.com"),
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in hooks))
    table = ingest([str(path)]).events
    flagged = {name: sorted(_list(f)) for name, f in zip(table["target_name"], table["flags"], strict=True)}
    calls_out = ["webhook_calls_out", "webhook_written"]
    assert [flagged[f"hook-{n}"] for n in range(1, 6)] == [["webhook_written"]] * 3 + [calls_out] * 2


def test_a_drain_listing_one_nodes_pods_is_not_a_cluster_wide_pod_listing(tmp_path):
    """Before a node leaves (a managed node group's replacement, the autoscaler's scale-down),
    eks:node-manager or the cluster-autoscaler lists the pods bound to that node, as kubectl
    drain does: ``?fieldSelector=spec.nodeName=<node>`` across namespaces. It reads one node's
    pods, not the cluster's inventory an intruder enumerates; at 50 nodes (seed 3) a
    replacement's drain list made eks:node-manager a benign alert on "pods listed across all
    namespaces". A selector on anything else, or none, still lists the cluster's pods."""
    node = "ip-10-0-52-244.us-west-2.compute.internal"

    def pods(n: int, user: str, query: str) -> dict:
        return _event(n, "list", "pods", ns=None, user=user, code=200, uri=f"/api/v1/pods{query}")

    rows = _flags(
        tmp_path,
        pods(1, "eks:node-manager", f"?fieldSelector=spec.nodeName%3D{node}&limit=500"),
        pods(2, "eks:node-manager", f"?limit=500&fieldSelector=spec.nodeName={node}"),
        pods(3, "dana@example.com", "?limit=500"),
        pods(4, "dana@example.com", "?fieldSelector=status.phase%3DRunning"),
    )
    assert [f for f, _ in rows] == [[], [], ["pods_listed_cluster_wide"], ["pods_listed_cluster_wide"]]
