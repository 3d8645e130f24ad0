"""Write the narrated feature fixtures: three ordinary days and an attack day (run once).

python tests/data/make_narrated.py  -> tests/data/audit/normal_3days.jsonl, attack_day.jsonl

Cast (all on 2026-03-02 .. 2026-03-05, UTC):
- cart: the service account system:serviceaccount:shop:cart reads its configmap and its
  database secret at minute 5 of every hour from its pod 10.0.1.10, with client-go.
- alice: a developer (arn:aws:sts::111122223333:assumed-role/Dev/alice) lists pods and reads
  logs in shop at 09:30, 13:30 and 16:30 from the office 198.51.100.23 with kubectl.
- a kubelet renews its lease at minutes 0 and 30.
On the attack day (2026-03-05) everyone does the same, and at 02:10-02:14 someone with cart's
token, still inside the pod but with curl, lists secrets in five namespaces (four denied),
asks what it may do, and execs into a kube-system pod.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

OUT = Path(__file__).parent / "audit"
CART = (
    "system:serviceaccount:shop:cart",
    ["system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"],
    "10.0.1.10",
    "cart/v1.2.0 (linux/amd64) kubernetes/$Format",
)
ALICE = (
    "arn:aws:sts::111122223333:assumed-role/Dev/alice",
    ["developers", "system:authenticated"],
    "198.51.100.23",
    "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
)
NODE = (
    "system:node:ip-10-0-1-10.us-west-2.compute.internal",
    ["system:nodes", "system:authenticated"],
    "10.0.1.10",
    "kubelet/v1.29.10-eks-7f9249a (linux/amd64) kubernetes/7f9249a",
)
_count = 0


def event(
    who,
    t: datetime,
    verb: str,
    resource: str | None,
    namespace: str | None = None,
    name: str | None = None,
    sub: str | None = None,
    code: int = 200,
    uri: str | None = None,
):
    global _count
    _count += 1
    user, groups, ip, ua = who
    if uri is None:
        group = (
            "/apis/coordination.k8s.io/v1"
            if resource == "leases"
            else ("/apis/authorization.k8s.io/v1" if resource and resource.startswith("self") else "/api/v1")
        )
        uri = (
            group
            + (f"/namespaces/{namespace}" if namespace else "")
            + f"/{resource}"
            + (f"/{name}" if name else "")
            + (f"/{sub}" if sub else "")
        )
    ev = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{_count:012d}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": groups},
        "sourceIPs": [ip],
        "userAgent": ua,
    }
    if resource:
        ref = {"resource": resource, "apiVersion": "v1"}
        if namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        if sub:
            ref["subresource"] = sub
        ev["objectRef"] = ref
    ev["responseStatus"] = {"metadata": {}, "code": code}
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    ev["requestReceivedTimestamp"] = stamp
    ev["stageTimestamp"] = stamp
    ev["annotations"] = {
        "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
        "authorization.k8s.io/reason": "",
    }
    return ev


def ordinary_day(day: datetime) -> list[dict]:
    events = []
    for hour in range(24):
        h = day + timedelta(hours=hour)
        events += [
            event(NODE, h, "update", "leases", "kube-node-lease", NODE[0][12:]),
            event(NODE, h + timedelta(minutes=30), "update", "leases", "kube-node-lease", NODE[0][12:]),
            event(CART, h + timedelta(minutes=5), "get", "configmaps", "shop", "cart-config"),
            event(CART, h + timedelta(minutes=5, seconds=1), "get", "secrets", "shop", "cart-db"),
        ]
    for hour in (9, 13, 16):
        t = day + timedelta(hours=hour, minutes=30)
        events += [
            event(ALICE, t, "list", "pods", "shop"),
            event(ALICE, t + timedelta(seconds=20), "get", "pods", "shop", "cart-7d9f", "log"),
        ]
    return events


def attack(day: datetime) -> list[dict]:
    thief = (CART[0], CART[1], CART[2], "curl/8.5.0")
    t = day + timedelta(hours=2, minutes=10)
    events = [event(thief, t, "create", "selfsubjectrulesreviews")]
    for i, ns in enumerate(("shop", "payments", "kube-system", "monitoring", "default")):
        events.append(
            event(thief, t + timedelta(seconds=10 * (i + 1)), "list", "secrets", ns, code=200 if ns == "shop" else 403)
        )
    events.append(
        event(
            thief,
            t + timedelta(minutes=4),
            "create",
            "pods",
            "kube-system",
            "aws-node-4xk2p",
            "exec",
            code=101,
            uri="/api/v1/namespaces/kube-system/pods/aws-node-4xk2p/exec"
            "?command=cat&command=%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken",
        )
    )
    return events


def main() -> None:
    start = datetime(2026, 3, 2)
    normal = sorted(
        (e for d in range(3) for e in ordinary_day(start + timedelta(days=d))),
        key=lambda e: e["requestReceivedTimestamp"],
    )
    attack_day = ordinary_day(start + timedelta(days=3)) + attack(start + timedelta(days=3))
    attack_day.sort(key=lambda e: e["requestReceivedTimestamp"])
    for name, events in (("normal_3days.jsonl", normal), ("attack_day.jsonl", attack_day)):
        (OUT / name).write_text("".join(json.dumps(e) + "\n" for e in events))


if __name__ == "__main__":
    main()
