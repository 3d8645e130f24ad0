"""Request bodies of the writes benign change makes, shaped like the objects real components send.

EKS logs writes to pods, RBAC, webhooks, CRDs and nodes at RequestResponse level, so these
bodies reach the audit log: DaemonSet pods are privileged with hostPath volumes, as kube-proxy
and the VPC CNI really are.
"""

from __future__ import annotations

import zlib
from typing import Any

#: DaemonSets of a typical EKS cluster: name -> (namespace, image, privileged, host paths).
DAEMONSETS: dict[str, tuple[str, str, bool, tuple[str, ...]]] = {
    "kube-proxy": (
        "kube-system",
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy:v1.29.10-minimal-eksbuild.3",
        True,
        ("/var/log", "/run/xtables.lock", "/lib/modules"),
    ),
    "aws-node": (
        "kube-system",
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.1-eksbuild.1",
        True,
        ("/opt/cni/bin", "/etc/cni/net.d", "/var/log/aws-routed-eni", "/var/run/aws-node", "/run/xtables.lock"),
    ),
    "ebs-csi-node": (
        "kube-system",
        "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-ebs-csi-driver:v1.30.0",
        True,
        ("/var/lib/kubelet", "/var/lib/kubelet/plugins/ebs.csi.aws.com/", "/dev"),
    ),
    "fluent-bit": (
        "monitoring",
        "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2",
        False,
        ("/var/log", "/var/lib/docker/containers", "/var/fluent-bit/state"),
    ),
}


def daemon_pod(name: str, ds: str, node: str, image: str | None = None) -> dict[str, Any]:
    """The pod the daemon-set-controller creates for ``ds`` on ``node``."""
    ns, default_image, privileged, paths = DAEMONSETS[ds]
    security: dict[str, Any] = {"privileged": True} if privileged else {"runAsUser": 0}
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": f"{ds}-",
            "namespace": ns,
            "labels": {"k8s-app": ds, "controller-revision-hash": name[-10:]},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds, "controller": True}],
        },
        "spec": {
            "volumes": [{"name": f"v{i}", "hostPath": {"path": p}} for i, p in enumerate(paths)],
            "containers": [{"name": ds, "image": image or default_image, "securityContext": security}],
            "serviceAccountName": ds,
            "hostNetwork": ds != "fluent-bit",
            "priorityClassName": "system-node-critical",
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                        ]
                    }
                }
            },
            "tolerations": [{"operator": "Exists"}],
        },
    }


def daemonset(ds: str, image: str) -> dict[str, Any]:
    """The DaemonSet an add-on upgrade patches in (its pod template, privileged as before)."""
    pod = daemon_pod(f"{ds}-template", ds, "node", image)
    return {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": ds, "namespace": DAEMONSETS[ds][0]},
        "spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {"metadata": {"labels": {"k8s-app": ds}}, "spec": pod["spec"] | {"affinity": {}}},
        },
    }


def app_image(app: str, replicaset: str) -> str:
    """The application image the pods of ``replicaset`` run: its account ECR repository at one
    build number.

    A ReplicaSet's name ends in its pod template's hash, and every pod it creates runs that
    template: one build per ReplicaSet, whichever pod, node or day. So the build is read off
    the name (a replacement pod after an eviction runs its siblings' image, a rollout's new
    ReplicaSet a new one).
    """
    build = 1000 + zlib.crc32(replicaset.encode()) % 9000
    return f"111122223333.dkr.ecr.us-west-2.amazonaws.com/{app}-api:{build}"


def app_pod(name: str, ns: str, sa: str, image: str) -> dict[str, Any]:
    """A pod the replicaset-controller creates for an application (unprivileged)."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app": sa},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name.rsplit("-", 1)[0]}],
        },
        "spec": {
            "serviceAccountName": sa,
            "containers": [{"name": "api", "image": image, "securityContext": {"runAsNonRoot": True}}],
        },
    }


def node(name: str, zone: str) -> dict[str, Any]:
    """The Node object a kubelet registers on its first start."""
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/nodegroup": "general",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-0{name[3:11].replace('-', '')}"},
    }


def csr(signer: str, usages: list[str]) -> dict[str, Any]:
    return {
        "kind": "CertificateSigningRequest",
        "apiVersion": "certificates.k8s.io/v1",
        "metadata": {"generateName": "csr-"},
        "spec": {"signerName": signer, "usages": usages},
    }


def binding(kind: str, name: str, role: str, subject_kind: str, subject: str, ns: str | None = None) -> dict[str, Any]:
    """A RoleBinding or ClusterRoleBinding of ``role`` (a ClusterRole) to one subject."""
    subj: dict[str, Any] = {"kind": subject_kind, "name": subject}
    if subject_kind == "ServiceAccount":
        subj["namespace"] = ns
    else:
        subj["apiGroup"] = "rbac.authorization.k8s.io"
    meta: dict[str, Any] = {"name": name} | ({"namespace": ns} if kind == "RoleBinding" else {})
    return {
        "kind": kind,
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subj],
    }
