"""Audit events in the exact form an EKS API server writes them.

Field order, stages, annotations, ``user.extra`` for IAM principals, request URIs with the
query strings real clients send, and status bodies for failures follow the events in
../shared/real-samples and the upstream audit.k8s.io/v1 types. Nothing here knows how kaad
reads or scores events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

K8S_VERSION = "v1.29.10-eks-7f9249a"

#: resource -> (API group, version). Core group resources have group "".
RESOURCE_GROUPS: dict[str, tuple[str, str]] = {
    "pods": ("", "v1"),
    "secrets": ("", "v1"),
    "configmaps": ("", "v1"),
    "services": ("", "v1"),
    "endpoints": ("", "v1"),
    "namespaces": ("", "v1"),
    "nodes": ("", "v1"),
    "serviceaccounts": ("", "v1"),
    "events": ("", "v1"),
    "persistentvolumeclaims": ("", "v1"),
    "replicationcontrollers": ("", "v1"),
    "deployments": ("apps", "v1"),
    "replicasets": ("apps", "v1"),
    "daemonsets": ("apps", "v1"),
    "statefulsets": ("apps", "v1"),
    "jobs": ("batch", "v1"),
    "cronjobs": ("batch", "v1"),
    "leases": ("coordination.k8s.io", "v1"),
    "endpointslices": ("discovery.k8s.io", "v1"),
    "ingresses": ("networking.k8s.io", "v1"),
    "networkpolicies": ("networking.k8s.io", "v1"),
    "roles": ("rbac.authorization.k8s.io", "v1"),
    "rolebindings": ("rbac.authorization.k8s.io", "v1"),
    "clusterroles": ("rbac.authorization.k8s.io", "v1"),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1"),
    "certificatesigningrequests": ("certificates.k8s.io", "v1"),
    "mutatingwebhookconfigurations": ("admissionregistration.k8s.io", "v1"),
    "validatingwebhookconfigurations": ("admissionregistration.k8s.io", "v1"),
    "customresourcedefinitions": ("apiextensions.k8s.io", "v1"),
    "selfsubjectaccessreviews": ("authorization.k8s.io", "v1"),
    "selfsubjectrulesreviews": ("authorization.k8s.io", "v1"),
    "subjectaccessreviews": ("authorization.k8s.io", "v1"),
    "tokenreviews": ("authentication.k8s.io", "v1"),
    "certificates": ("cert-manager.io", "v1"),
    "applications": ("argoproj.io", "v1alpha1"),
    "eniconfigs": ("crd.k8s.amazonaws.com", "v1alpha1"),
    "podmetrics": ("metrics.k8s.io", "v1beta1"),
    "nodemetrics": ("metrics.k8s.io", "v1beta1"),
    # Custom resources of add-ons and operators that benign change installs (scenarios.change_ci).
    "certificaterequests": ("cert-manager.io", "v1"),
    "externalsecrets": ("external-secrets.io", "v1beta1"),
    "secretstores": ("external-secrets.io", "v1beta1"),
    "clustersecretstores": ("external-secrets.io", "v1beta1"),
    "scaledobjects": ("keda.sh", "v1alpha1"),
    "scaledjobs": ("keda.sh", "v1alpha1"),
    "triggerauthentications": ("keda.sh", "v1alpha1"),
    "policies": ("kyverno.io", "v1"),
    "clusterpolicies": ("kyverno.io", "v1"),
    "policyreports": ("wgpolicyk8s.io", "v1alpha2"),
    "targetgroupbindings": ("elbv2.k8s.aws", "v1beta1"),
    "ingressclassparams": ("elbv2.k8s.aws", "v1beta1"),
    "backups": ("velero.io", "v1"),
    "schedules": ("velero.io", "v1"),
    "backupstoragelocations": ("velero.io", "v1"),
    "kafkas": ("kafka.strimzi.io", "v1beta2"),
    "kafkatopics": ("kafka.strimzi.io", "v1beta2"),
    "kafkausers": ("kafka.strimzi.io", "v1beta2"),
}
CLUSTER_SCOPED = {
    "nodes",
    "namespaces",
    "clusterroles",
    "clusterrolebindings",
    "certificatesigningrequests",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "customresourcedefinitions",
    "selfsubjectaccessreviews",
    "selfsubjectrulesreviews",
    "subjectaccessreviews",
    "tokenreviews",
    "nodemetrics",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who calls: the user block of the event, and where and how they call from."""

    username: str
    groups: tuple[str, ...]
    ips: tuple[str, ...]
    user_agent: str
    uid: str = ""
    extra: dict[str, list[str]] | None = None


@dataclass(slots=True)
class Call:
    """One API request, before it is dressed as an audit event."""

    verb: str
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    path: str | None = None  # non-resource URL (/healthz, /api, /metrics)
    query: str = ""
    code: int = 0  # 0: the usual success code for the verb
    body: dict[str, Any] | None = None
    duration_s: float = 0.0  # watches and exec sessions run for a while
    reason: str = ""  # authorization reason annotation
    allowed: bool = True
    user_agent: str | None = None  # overrides the identity's
    source_ip: str | None = None  # overrides the identity's
    impersonate: str | None = None
    extra_annotations: dict[str, str] = field(default_factory=dict)


def request_uri(call: Call) -> str:
    if call.path is not None:
        return call.path + (f"?{call.query}" if call.query else "")
    group, version = RESOURCE_GROUPS.get(call.resource or "", ("", "v1"))
    parts = ["/api/v1"] if not group else [f"/apis/{group}/{version}"]
    if call.namespace and call.resource not in CLUSTER_SCOPED:
        parts.append(f"namespaces/{call.namespace}")
    parts.append(call.resource or "")
    if call.name:
        parts.append(call.name)
    if call.subresource:
        parts.append(call.subresource)
    return "/".join(parts) + (f"?{call.query}" if call.query else "")


def success_code(call: Call) -> int:
    if call.code:
        return call.code
    if call.subresource in {"exec", "attach", "portforward"}:
        return 101
    return 201 if call.verb == "create" else 200


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_id(rng: np.random.Generator) -> str:
    """A random (version 4) UUID, drawn from the scenario's own generator for determinism."""
    b = bytearray(rng.bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _status(call: Call, code: int, who: Identity) -> dict[str, Any]:
    if code < 400:
        return {"metadata": {}, "code": code}
    reason = {
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
    }.get(code, "BadRequest")
    if code == 403:
        what = call.resource or call.path or ""
        scope = f'in the namespace "{call.namespace}"' if call.namespace else "at the cluster scope"
        group = RESOURCE_GROUPS.get(call.resource or "", ("", ""))[0]
        message = (
            f'{what} is forbidden: User "{who.username}" cannot {call.verb} resource '
            f'"{what}" in API group "{group}" {scope}'
        )
    elif code == 404:
        message = f'{call.resource} "{call.name}" not found'
    else:
        message = reason
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def build_events(
    call: Call, who: Identity, t: datetime, rng: np.random.Generator
) -> list[tuple[datetime, dict[str, Any]]]:
    """Return (write time, event) for each stage that ``call`` made at ``t`` produces."""
    code = success_code(call) if call.allowed else (call.code or 403)
    write = call.verb in WRITE_VERBS
    level = "RequestResponse" if (write and call.body is not None) else "Metadata"
    user: dict[str, Any] = {"username": who.username}
    if who.uid:
        user["uid"] = who.uid
    user["groups"] = list(who.groups)
    if who.extra:
        user["extra"] = who.extra
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id(rng),
        "stage": "ResponseComplete",
        "requestURI": request_uri(call),
        "verb": call.verb,
        "user": user,
    }
    if call.impersonate:
        event["impersonatedUser"] = {"username": call.impersonate, "groups": ["system:authenticated"]}
    event["sourceIPs"] = [call.source_ip or who.ips[int(rng.integers(len(who.ips)))]]
    event["userAgent"] = call.user_agent or who.user_agent
    if call.path is None:
        group, version = RESOURCE_GROUPS.get(call.resource or "", ("", "v1"))
        ref: dict[str, Any] = {"resource": call.resource}
        if call.namespace and call.resource not in CLUSTER_SCOPED:
            ref["namespace"] = call.namespace
        if call.name:
            ref["name"] = call.name
        if group:
            ref["apiGroup"] = group
        ref["apiVersion"] = version
        if call.subresource:
            ref["subresource"] = call.subresource
        event["objectRef"] = ref
    event["responseStatus"] = _status(call, code, who)
    if level == "RequestResponse" and call.allowed:
        event["requestObject"] = call.body
    latency = timedelta(microseconds=int(rng.gamma(2.0, 2500)))
    event["requestReceivedTimestamp"] = _iso(t)
    event["stageTimestamp"] = _iso(t + latency)
    annotations = {
        "authorization.k8s.io/decision": "allow" if call.allowed else "forbid",
        "authorization.k8s.io/reason": call.reason if call.allowed else "",
    }
    if call.resource == "pods" and call.verb == "create" and call.subresource is None:
        annotations["pod-security.kubernetes.io/enforce-policy"] = "privileged:latest"
    annotations.update(call.extra_annotations)
    event["annotations"] = annotations
    long_running = call.verb == "watch" or call.subresource in {"exec", "attach", "portforward"}
    if not long_running or not call.allowed:
        return [(t + latency, event)]
    started = dict(event, stage="ResponseStarted")
    end = t + timedelta(seconds=call.duration_s) + latency
    done = dict(event, stageTimestamp=_iso(end))
    return [(t + latency, started), (end, done)]
