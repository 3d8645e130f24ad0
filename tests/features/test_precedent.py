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
