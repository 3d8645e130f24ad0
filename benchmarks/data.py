"""Benchmark inputs: N events of a realistic simulated cluster, plain and gzip, cached."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
sys.path.insert(0, str(ROOT))

from scenarios.cluster import ClusterSpec  # noqa: E402
from scenarios.simulate import simulate  # noqa: E402

#: A mid-size cluster at the real control-plane rate: ~250k events a day.
BENCH_CLUSTER = ClusterSpec(nodes=10, app_namespaces=12, humans=12, rate_scale=1.0)


def events_file(n_events: int, gz: bool = False) -> Path:
    """Return a JSON-lines file of exactly ``n_events`` simulated events (made on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    plain = CACHE / f"events-{n_events}.jsonl"
    if not plain.exists():
        days = 1
        while True:
            sim_dir = CACHE / f"sim-{days}d"
            if not sim_dir.exists():
                simulate(sim_dir, days=days, seed=42, spec=BENCH_CLUSTER)
            total = sum(_count_lines(f) for f in sorted(sim_dir.glob("*.gz")))
            if total >= n_events:
                break
            days = max(days + 1, int(days * n_events / max(total, 1)) + 1)
        tmp = plain.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            written = 0
            for f in sorted(sim_dir.glob("*.gz")):
                with gzip.open(f) as handle:
                    for line in handle:
                        if written == n_events:
                            break
                        out.write(line)
                        written += 1
        tmp.rename(plain)
    if not gz:
        return plain
    packed = CACHE / f"events-{n_events}.jsonl.gz"
    if not packed.exists():
        with open(plain, "rb") as src, gzip.open(packed.with_suffix(".tmp"), "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        packed.with_suffix(".tmp").rename(packed)
    return packed


def _count_lines(path: Path) -> int:
    with gzip.open(path) as handle:
        return sum(1 for _ in handle)


def _pod_spec(name: str) -> dict:
    return {
        "serviceAccountName": name,
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "containers": [
            {
                "name": name,
                "image": f"123456789012.dkr.ecr.us-west-2.amazonaws.com/{name}:1.4.2",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "us-west-2"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            },
            {
                "name": "envoy",
                "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.27.3.0-prod",
                "securityContext": {"runAsUser": 1337},
            },
        ],
        "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
    }


def _body_for(event: dict) -> object | None:
    """A request body such as a Request-level audit policy logs it, or None."""
    ref = event.get("objectRef") or {}
    resource, verb, name = ref.get("resource"), event["verb"], ref.get("name") or "app"
    meta = {"name": name, "namespace": ref.get("namespace"), "resourceVersion": "88231756", "uid": event["auditID"]}
    if verb == "update" and resource == "leases":
        # Every lease renewal would dwarf the rest; a quarter of them keeps the body share
        # at the 26% the issue measured on real logs.
        if int(event["auditID"][:2], 16) % 4:
            return None
        return {
            "kind": "Lease",
            "apiVersion": "coordination.k8s.io/v1",
            "metadata": meta,
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": 40,
                "acquireTime": "2026-03-01T00:00:00.000000Z",
                "renewTime": event["requestReceivedTimestamp"],
                "leaseTransitions": 3,
            },
        }
    if verb == "patch":  # JSON patch: an array, not an object
        return [
            {
                "op": "replace",
                "path": "/status/conditions/0/lastHeartbeatTime",
                "value": event["requestReceivedTimestamp"],
            },
            {"op": "add", "path": "/metadata/annotations/kaad.bench~1touched", "value": "1"},
        ]
    if verb == "create" and resource == "pods":
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                **meta,
                "ownerReferences": [{"kind": "ReplicaSet", "name": f"{name}-7d9c8", "controller": True}],
            },
            "spec": _pod_spec(name),
        }
    if verb in ("update", "create") and resource in ("deployments", "replicasets", "daemonsets"):
        return {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": meta,
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": _pod_spec(name)},
            },
        }
    if verb in ("update", "create") and resource in ("configmaps", "endpointslices", "events"):
        return {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": meta,
            "data": {"config.yaml": "listen: 0.0.0.0:8080\nlog_level: info\n" * 4},
        }
    return None


def bodies_file(n_events: int) -> Path:
    """The events of :func:`events_file` with request bodies where a Request-level policy
    would log them: 26% of events, lease renewals, JSON patches, pods and deployments."""
    import orjson

    path = CACHE / f"bodies-{n_events}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(events_file(n_events), "rb") as src, open(tmp, "wb") as out:
            for line in src:
                event = orjson.loads(line)
                body = _body_for(event)
                if body is not None:
                    event["level"] = "RequestResponse"
                    event["requestObject"] = body
                out.write(orjson.dumps(event) + b"\n")
        tmp.rename(path)
    return path
