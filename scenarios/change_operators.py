"""Benign operator installs: ``helm install`` by CI of an operator with its CRDs, RBAC and webhooks.

Charts such as External Secrets, KEDA, Kyverno or the AWS Load Balancer Controller create
cluster-wide objects an intruder might also create (ClusterRoleBindings, admission webhooks),
which is why they belong in the simulated normal life.
"""

from __future__ import annotations

from scenarios import change_bodies as bodies
from scenarios.change import Day, Step, handler
from scenarios.change_ci import new_pods
from scenarios.cluster import DAY_S, Actor, client_go_ua, sa_identity
from scenarios.eks import RESOURCE_GROUPS, Call
from scenarios.networks import pod_address
from scenarios.normal import OPERATOR_KINDS

#: Operators CI installs with Helm: service account -> (namespace, chart version, webhook kinds).
OPERATORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "external-secrets": ("external-secrets", "v0.9.13", ("validating",)),
    "keda-operator": ("keda", "v2.13.1", ("validating",)),
    "kyverno": ("kyverno", "v1.11.4", ("validating", "mutating")),
    "aws-load-balancer-controller": ("kube-system", "v2.7.1", ("validating", "mutating")),
    "velero": ("velero", "v1.13.0", ()),
    "strimzi-cluster-operator": ("strimzi", "0.40.0", ("validating",)),
}


@handler("operator_install")
def operator_install(day: Day) -> None:
    """``helm install`` (or upgrade) of an operator: CRDs, ClusterRole, binding, webhooks, Deployment."""
    sa = list(OPERATORS)[int(day.rng.integers(len(OPERATORS)))]
    ns, version, hooks = OPERATORS[sa]
    installed = any(a.kind == "operator" and a.identity.username.endswith(f":{ns}:{sa}") for a in day.actors)
    verb = "patch" if installed else "create"
    ci = day.who("ci-deployer")
    t = day.at(9, 17)
    kinds = OPERATOR_KINDS[sa]
    calls = [
        Call("get", "secrets", ns, f"sh.helm.release.v1.{sa}.v1", code=0 if installed else 404),
        Call("list", "secrets", ns, query=f"labelSelector=name%3D{sa}%2Cowner%3Dhelm"),
    ]
    made_at = None  # when the namespace is created, if it is
    if not installed and ns not in day.namespaces:
        made_at = t + 0.8 * len(calls)
        calls.append(
            Call("create", "namespaces", body={"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}})
        )
    for k in kinds:
        group = RESOURCE_GROUPS[k][0]
        crd = {
            "kind": "CustomResourceDefinition",
            "apiVersion": "apiextensions.k8s.io/v1",
            "metadata": {"name": f"{k}.{group}", "labels": {"app.kubernetes.io/version": version}},
            "spec": {"group": group, "names": {"plural": k}, "scope": "Namespaced"},
        }
        calls.append(Call(verb, "customresourcedefinitions", None, f"{k}.{group}" if installed else None, body=crd))
    role = {
        "kind": "ClusterRole",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": sa},
        "rules": [
            {"apiGroups": [RESOURCE_GROUPS[kinds[0]][0]], "resources": list(kinds), "verbs": ["*"]},
            {
                "apiGroups": [""],
                "resources": ["pods", "configmaps", "secrets", "events"],
                "verbs": ["get", "list", "watch", "create", "patch"],
            },
        ],
    }
    named = sa if installed else None
    calls += [
        Call(
            verb,
            "serviceaccounts",
            ns,
            named,
            body={"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": sa}},
        ),
        Call(verb, "clusterroles", None, named, body=role),
        Call(
            verb,
            "clusterrolebindings",
            None,
            named,
            body=bodies.binding("ClusterRoleBinding", sa, sa, "ServiceAccount", sa, ns),
        ),
        Call(verb, "services", ns, named, body={"kind": "Service", "apiVersion": "v1", "metadata": {"name": sa}}),
        Call(
            verb,
            "deployments",
            ns,
            named,
            body={"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": sa}},
        ),
    ]
    for hook in hooks:
        resource = f"{hook}webhookconfigurations"
        body = {
            "kind": f"{hook.capitalize()}WebhookConfiguration",
            "apiVersion": "admissionregistration.k8s.io/v1",
            "metadata": {"name": f"{sa}-webhook"},
            "webhooks": [
                {
                    "name": f"{hook}.{sa}.svc",
                    "clientConfig": {"service": {"namespace": ns, "name": sa, "path": f"/{hook}"}},
                    "failurePolicy": "Fail" if hook == "validating" else "Ignore",
                    "sideEffects": "None",
                }
            ],
        }
        calls.append(Call(verb, resource, None, f"{sa}-webhook" if installed else None, body=body))
    calls.append(Call("create", "secrets", ns, f"sh.helm.release.v1.{sa}.v{2 if installed else 1}"))
    steps: list[Step] = [(t + 0.8 * i, c, ci) for i, c in enumerate(calls)]
    names, created = new_pods(day, ns, sa, 1, t + 0.8 * len(calls) + 5.0)
    steps += created
    day.record("operator_install", ci.username, steps)
    if installed:
        return
    if made_at is not None:
        day.create_namespace(ns, made_at)
    ident = sa_identity(ns, sa, (pod_address(day.rng),), client_go_ua(sa, version), day.rng)
    day.join(Actor(ident, "operator", namespace=ns, pod_names=tuple(names)), t + 60.0, "benign_operator_install", DAY_S)
