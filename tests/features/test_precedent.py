"""A change with a peer precedent is not new: the first-seen encoder judges it against its peers.

The story: the kubelets of nodes a and b have served the shop's pods for weeks; node c joined
last night and has served only kube-system. This morning the scheduler puts a shop pod on c,
and c reads its secret, as every kubelet does; a kubelet reading in ``vault``, where no
kubelet ever served a pod, is another matter. Alice has run kubectl 1.29 on her Mac; today
Homebrew gives her 1.31. Someone using her name from a Linux machine, or with curl, is not
an upgrade. And a person's namespaces stay her own: other people working in ``payments`` is
no precedent for alice.
"""

from __future__ import annotations

import pandas as pd

from features.first_seen import FirstSeenEncoder

ATTRS = (("namespace", "target_namespace"), ("user_agent", "user_agent"))
KUBELET = "kubelet/v1.29.10-eks-7f9249a (linux/amd64) kubernetes/7f9249a"
KUBECTL_129_MAC = "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625"


def events(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    who, ns, ua, when = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "identity": list(who),
            "target_namespace": list(ns),
            "user_agent": list(ua),
            "window_start": pd.to_datetime(list(when), utc=True),
        }
    )


HISTORY = events(
    [
        ("system:node:a", "shop", KUBELET, "2026-03-01 00:00"),
        ("system:node:b", "shop", KUBELET, "2026-03-01 00:00"),
        ("system:node:c", "kube-system", KUBELET, "2026-03-01 23:00"),
        ("alice", "web", KUBECTL_129_MAC, "2026-03-01 09:00"),
        ("bob", "payments", KUBECTL_129_MAC, "2026-03-01 09:00"),
    ]
)


def new_namespace_and_agent(today: list[tuple[str, str, str, str]]) -> list[tuple[float, float]]:
    flags = FirstSeenEncoder(attributes=ATTRS).fit(HISTORY).transform(events(today))
    return [(row[0], row[1]) for row in flags]


def test_a_new_kubelet_serving_a_namespace_every_kubelet_serves_is_not_in_a_new_namespace():
    today = [
        ("system:node:c", "shop", KUBELET, "2026-03-02 08:00"),
        ("system:node:c", "vault", KUBELET, "2026-03-02 09:00"),
    ]
    assert new_namespace_and_agent(today) == [(0.0, 0.0), (1.0, 0.0)]


def test_a_persons_namespace_is_still_judged_by_her_own_past_not_by_other_peoples():
    assert new_namespace_and_agent([("alice", "payments", KUBECTL_129_MAC, "2026-03-02 09:00")]) == [(1.0, 0.0)]


def test_a_newer_kubectl_on_the_same_platform_is_an_upgrade_and_not_a_new_client():
    today = [
        ("alice", "web", "kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5", "2026-03-02 09:00"),
        ("alice", "web", "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505", "2026-03-02 10:00"),
        ("alice", "web", "curl/8.5.0", "2026-03-02 11:00"),
    ]
    assert new_namespace_and_agent(today) == [(0.0, 0.0), (0.0, 1.0), (0.0, 1.0)]


# The add-on manager patches the aws-node DaemonSet to a new tag. Its pod template has the
# profile (namespace, image repository, host access, host paths) of the pods the daemon-set
# controller has created on every node since it joined: the write grants nothing new. An
# intruder's DaemonSet in kube-system with another image, or the CNI's image with the host's
# root mounted, is a profile nobody wrote.
CNI = "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni"
CNI_PATHS = ["/opt/cni/bin", "/etc/cni/net.d"]


def pod_spec_write(who: str, verb: str, resource: str, image: str, paths: list[str], when: str) -> dict:
    return {
        "identity": who,
        "verb": verb,
        "target_resource": resource,
        "target_namespace": "kube-system",
        "response_code": 200,
        "auth_decision": "allow",
        "audit_id_reused": False,
        "forwarded_unverified": False,
        "pod_privileged": True,
        "pod_host_network": True,
        "pod_images": [image],
        "pod_host_paths": paths,
        "window_start": pd.Timestamp(when, tz="UTC"),
    }


def new_host_workload(history: list[dict], today: list[dict]) -> list[float]:
    from events.schema import EVENT_SCHEMA
    from features.enrich import enrich_events
    from features.flags import FLAG_COLUMNS

    def enriched(rows: list[dict]) -> pd.DataFrame:
        frame = pd.DataFrame(rows)
        for column in EVENT_SCHEMA.names:  # the flags are left out: enrich_events raises them
            if column not in frame.columns and column not in FLAG_COLUMNS:
                frame[column] = None
        return enrich_events(frame)

    encoder = FirstSeenEncoder(attributes=(("host_workload", "host_workload"),)).fit(enriched(history))
    return encoder.transform(enriched(today))[:, 0].tolist()


def test_an_add_on_upgrading_its_privileged_daemonset_writes_what_its_pods_always_had():
    controller = "system:serviceaccount:kube-system:daemon-set-controller"
    history = [pod_spec_write(controller, "create", "pods", f"{CNI}:v1.18.1-eksbuild.1", CNI_PATHS, "2026-03-01 10:00")]
    today = [
        pod_spec_write(
            "eks:addon-manager", "patch", "daemonsets", f"{CNI}:v1.18.1-eksbuild.1-4", CNI_PATHS, "2026-03-02 11:00"
        ),
        pod_spec_write("alice", "create", "daemonsets", "docker.io/xmrig/xmrig:latest", CNI_PATHS, "2026-03-02 12:00"),
        pod_spec_write("bob", "create", "daemonsets", f"{CNI}:v1.18.1-eksbuild.1", ["/"], "2026-03-02 13:00"),
    ]
    assert new_host_workload(history, today) == [0.0, 1.0, 1.0]
