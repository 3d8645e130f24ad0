"""Small audit events for the rule tests: one realistic request, changed where a test says so."""

from __future__ import annotations

import copy
import json
from pathlib import Path

BASE = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "stage": "ResponseComplete",
    "verb": "get",
    "requestURI": "/api/v1/namespaces/shop/pods/cart-0",
    "user": {"username": "alice", "groups": ["system:authenticated"]},
    "sourceIPs": ["10.0.3.17"],
    "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
    "objectRef": {"resource": "pods", "namespace": "shop", "name": "cart-0", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
}


def event(n: int, day: str = "2026-03-10", hour: int = 10, **changes) -> dict:
    """Request ``n`` of the day (its own auditID and second); ``changes`` replace top-level keys."""
    out = copy.deepcopy(BASE)
    out["auditID"] = f"00000000-0000-4000-8000-{n:012d}"
    stamp = f"{day}T{hour:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000000Z"
    out["requestReceivedTimestamp"] = out["stageTimestamp"] = stamp
    out.update(copy.deepcopy(changes))
    return out


def write(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def pod(privileged: bool = False, host_pid: bool = False) -> dict:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "debug", "namespace": "shop"},
        "spec": {
            "hostPID": host_pid,
            "containers": [{"name": "c", "image": "alpine", "securityContext": {"privileged": privileged}}],
        },
    }


def binding(*subjects: tuple[str, str]) -> dict:
    return {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": kind, "name": name, "apiGroup": "rbac.authorization.k8s.io"} for kind, name in subjects],
    }


DASHBOARD = "system:serviceaccount:kubernetes-dashboard:kubernetes-dashboard"
DEPLOYER = "system:serviceaccount:ci:deployer"
CART = "system:serviceaccount:shop:cart"
KUBELET = "system:node:ip-10-0-1-10.us-west-2.compute.internal"


def ordinary_day(day: str, start: int = 0, apps: int = 0) -> list[dict]:
    """A normal day: the dashboard lists secrets (SigmaHQ's enumeration rule fires on it every
    day), CI's deployer creates a pod, the cart app reads its config, alice looks at pods; and
    ``apps`` more workloads read their config at 10:00."""
    out, n = [], start
    for i in range(apps):
        n += 1
        out.append(
            event(n, day, 10, objectRef={"resource": "configmaps", "namespace": "shop", "name": f"app-{i}"},
                  user={"username": f"system:serviceaccount:shop:app-{i}"})
        )  # fmt: skip
    for hour in range(8, 18):
        for who, verb, ref, code in (
            (DASHBOARD, "list", {"resource": "secrets", "namespace": "kubernetes-dashboard"}, 200),
            (CART, "get", {"resource": "configmaps", "namespace": "shop", "name": "cart"}, 200),
            (KUBELET, "get", {"resource": "nodes", "name": "ip-10-0-1-10"}, 200),
        ):
            n += 1
            out.append(
                event(n, day, hour, verb=verb, objectRef=ref, user={"username": who}, responseStatus={"code": code})
            )
        if hour in (9, 14):
            n += 1
            out.append(event(n, day, hour, verb="list", objectRef={"resource": "pods", "namespace": "shop"}))
    n += 1
    out.append(
        event(n, day, 11, verb="create", user={"username": DEPLOYER}, responseStatus={"code": 201},
              objectRef={"resource": "pods", "namespace": "shop", "name": "migrate"}, requestObject=pod())
    )  # fmt: skip
    return out


def attack_day(day: str, apps: int = 0) -> list[dict]:
    """An ordinary day, plus: mallory (a new person) lists secrets and deletes one; the cart app's
    token execs into kube-system."""
    out = ordinary_day(day, apps=apps)
    out.append(event(9001, day, 20, verb="list", user={"username": "mallory"}, objectRef={"resource": "secrets"}))
    out.append(
        event(9003, day, 20, verb="delete", user={"username": "mallory"},
              objectRef={"resource": "secrets", "namespace": "shop", "name": "db"})
    )  # fmt: skip
    out.append(
        event(9002, day, 21, verb="create", user={"username": CART}, responseStatus={"code": 101},
              objectRef={"resource": "pods", "subresource": "exec", "namespace": "kube-system", "name": "aws-node-1"})
    )  # fmt: skip
    return out
