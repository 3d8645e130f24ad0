"""What is read from a logged request body, whichever reader (bulk or per line) parsed it."""

from __future__ import annotations

import json

import pytest
from support import frame_records

import sources.files
from pipelines.ingest import ingest


def _event(n: int, verb: str, resource: str, body, name: str = "web") -> dict:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": f"/apis/apps/v1/namespaces/shop/{resource}/{name}",
        "verb": verb,
        "user": {"username": "system:serviceaccount:shop:deployer", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.3.17"],
        "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        "objectRef": {"resource": resource, "namespace": "shop", "name": name},
        "responseStatus": {"code": 200},
        "requestObject": body,
        "requestReceivedTimestamp": f"2026-03-10T14:02:{n:02d}.000000Z",
    }


_PRIVILEGED = {
    "name": "debug",
    "image": "alpine:3.19",
    "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_PTRACE"]}},
}

BODIES = {
    # kubectl patch deployment web -p '...': a strategic merge patch has no kind, and is read.
    "merge_patch": _event(
        1,
        "patch",
        "deployments",
        {
            "spec": {
                "template": {
                    "spec": {
                        "hostPID": True,
                        "containers": [_PRIVILEGED],
                        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                    }
                }
            }
        },
    ),
    # A CronJob's pods are specified two templates deep.
    "cronjob": _event(
        2,
        "create",
        "cronjobs",
        {
            "kind": "CronJob",
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "hostNetwork": True,
                                "initContainers": [{"image": "busybox:1.36"}],
                                "containers": [{"image": "miner:latest"}],
                            }
                        }
                    }
                }
            },
        },
    ),
    # kubectl debug adds an ephemeral container to a running pod.
    "ephemeral": _event(
        3,
        "patch",
        "pods",
        {"kind": "Pod", "spec": {"containers": [{"image": "web:1.2"}], "ephemeralContainers": [_PRIVILEGED]}},
    ),
    # A JSON patch is a list of operations, not an object: nothing in it is a pod spec.
    "json_patch": _event(
        4,
        "patch",
        "deployments",
        [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext", "value": {"privileged": True}}],
    ),
    # Only kinds that hold a pod spec are read as one.
    "lease": _event(
        5, "update", "leases", {"kind": "Lease", "spec": {"holderIdentity": "web", "containers": [_PRIVILEGED]}}
    ),
    "cluster_role": _event(
        6,
        "create",
        "clusterroles",
        {
            "kind": "ClusterRole",
            "rules": [
                {"verbs": ["get", "list"], "resources": ["secrets"]},
                {"verbs": ["list", "watch"], "resources": ["secrets", "pods"]},
            ],
        },
    ),
    # Security settings that run a container as root, at pod and container level.
    "root_pod": _event(
        8,
        "create",
        "pods",
        {"kind": "Pod", "spec": {"securityContext": {"runAsNonRoot": False}, "containers": [{"image": "web:1.2"}]}},
    ),
    "root_container": _event(
        9,
        "create",
        "deployments",
        {
            "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [{"image": "web:1.2", "securityContext": {"runAsUser": 0}}]}}},
        },
    ),
    # Services, ingresses and config maps are read by resource: their patches carry no kind.
    "nodeport_patch": _event(10, "patch", "services", {"spec": {"type": "NodePort"}}),
    "ingress": _event(11, "create", "ingresses", {"kind": "Ingress", "spec": {"rules": [{"host": "shop"}]}}),
    "config_map": _event(
        12, "create", "configmaps", {"kind": "ConfigMap", "data": {"db.ini": "user=shop\npassword=hunter2\n"}}
    ),
    "csr": _event(
        13,
        "create",
        "certificatesigningrequests",
        {"kind": "CertificateSigningRequest", "spec": {"signerName": "kubernetes.io/kube-apiserver-client"}},
    ),
    # A rollout's pod: the Deployment's ReplicaSet is named with the rollout's pod-template-hash,
    # which the pod carries as a label; another reference comes first, but is not the controller.
    "replicaset_pod": _event(
        14,
        "create",
        "pods",
        {
            "kind": "Pod",
            "metadata": {
                "labels": {"app": "web", "pod-template-hash": "7d9f8c6b5"},
                "ownerReferences": [
                    {"kind": "ConfigMap", "name": "web-lock"},
                    {"kind": "ReplicaSet", "name": "web-7d9f8c6b5", "controller": True},
                ],
            },
            "spec": {"containers": [{"image": "web:1.2"}]},
        },
    ),
    # A DaemonSet's pod with one reference, no controller mark and no namespace in its metadata.
    "daemonset_pod": _event(
        15,
        "create",
        "pods",
        {
            "kind": "Pod",
            "metadata": {"ownerReferences": [{"kind": "DaemonSet", "name": "fluent-bit"}]},
            "spec": {"containers": [{"image": "fluent-bit:3.0"}]},
        },
    ),
    "binding": _event(
        7,
        "create",
        "clusterrolebindings",
        {
            "kind": "ClusterRoleBinding",
            "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "deployer", "namespace": "shop"},
                {"kind": "Group", "name": "system:masters"},
            ],
        },
    ),
}


@pytest.fixture(params=["bulk", "lines"])
def rows(request, tmp_path, monkeypatch) -> dict:
    """The normalised row of each body, read by DuckDB's bulk reader or the per-line reader."""
    monkeypatch.setattr(sources.files, "BULK_MIN_BYTES", 0 if request.param == "bulk" else 1 << 62)
    path = tmp_path / "bodies.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in BODIES.values()))
    records = frame_records(ingest([str(path)]).events)
    return dict(zip(BODIES, records, strict=True))


def test_a_kindless_merge_patch_is_read_as_a_pod_template(rows):
    row = rows["merge_patch"]
    assert row["request_object_kind"] is None
    assert row["pod_privileged"] and row["pod_host_pid"] and not row["pod_host_network"]
    assert (row["pod_host_paths"], row["pod_capabilities"]) == (["/"], ["SYS_PTRACE"])
    assert row["pod_images"] == ["alpine:3.19"]


def test_a_cronjob_pod_template_is_read_two_levels_down(rows):
    row = rows["cronjob"]
    assert row["pod_host_network"] and not row["pod_privileged"]
    assert row["pod_images"] == ["miner:latest", "busybox:1.36"]  # containers, then init containers


def test_ephemeral_containers_count_as_containers(rows):
    row = rows["ephemeral"]
    assert row["pod_privileged"] and row["pod_images"] == ["web:1.2", "alpine:3.19"]
    assert row["pod_has_owner"] is False


@pytest.mark.parametrize("name", ["json_patch", "lease"])
def test_bodies_that_hold_no_pod_spec_give_no_pod_fields(rows, name):
    row = rows[name]
    assert not (row["pod_privileged"] or row["pod_host_pid"] or row["pod_host_network"])
    assert row["pod_images"] is None and row["pod_capabilities"] is None


def test_rbac_bodies_give_rules_and_subjects(rows):
    role, binding = rows["cluster_role"], rows["binding"]
    assert sorted(role["rule_verbs"]) == ["get", "list", "watch"]
    assert sorted(role["rule_resources"]) == ["pods", "secrets"]
    assert (binding["role_ref_kind"], binding["role_ref_name"]) == ("ClusterRole", "cluster-admin")
    assert binding["subjects"] == ["ServiceAccount:shop/deployer", "Group:system:masters"]
    assert role["subjects"] is None and binding["rule_verbs"] is None


def test_a_pods_owner_is_its_controller_reference_in_the_requests_namespace(rows):
    """One Deployment is one owner across its rollouts: the ReplicaSet loses its template hash."""
    assert rows["replicaset_pod"]["pod_owner"] == "ReplicaSet/shop/web"
    assert rows["daemonset_pod"]["pod_owner"] == "DaemonSet/shop/fluent-bit"
    assert rows["ephemeral"]["pod_owner"] is None  # no owner named
    assert rows["cronjob"]["pod_owner"] is None  # not a Pod


def test_containers_that_run_as_root_are_read_from_pod_or_container_settings(rows):
    assert rows["root_pod"]["pod_runs_as_root"] and rows["root_container"]["pod_runs_as_root"]
    assert not rows["merge_patch"]["pod_runs_as_root"]  # privileged, but says nothing of the user


def test_service_ingress_config_map_and_csr_bodies_give_their_facts_not_their_data(rows):
    assert rows["nodeport_patch"]["service_type"] == "NodePort"
    assert rows["ingress"]["ingress_tls"] is False
    assert rows["config_map"]["configmap_credentials"] is True
    assert "hunter2" not in json.dumps(rows["config_map"], default=str)
    assert rows["csr"]["csr_signer"] == "kubernetes.io/kube-apiserver-client"
    assert rows["lease"]["service_type"] is None and rows["lease"]["configmap_credentials"] is None
