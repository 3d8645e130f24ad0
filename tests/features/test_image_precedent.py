"""An image is introduced by whoever writes it into a spec, not by the controller that copies it.

The story: on a morning of an add-on upgrade, eks:addon-manager patches the kube-proxy
DaemonSet to a new build, and the daemon-set-controller then replaces the pod on each node
with one from the new template, each pod naming its DaemonSet as owner. The controller has
no say in the image: the template's author chose it, minutes before. On a 50-node cluster
this was the day's top benign alert (seed 1: the daemon-set-controller "with an image new to
the identity", 8.8 nats; quick size seed 3 alike on a benign_daemonset_upgrade day). The
author's write of a new image is news and stays news; so does a pod created by hand, with no
owner, running an image its creator never ran (the privileged_pod attack).

But ``ownerReferences`` are whatever the requester wrote. A user, or an application's service
account, that creates a pod naming a DaemonSet it made up has still chosen the image itself:
only kube-controller-manager's controllers, whose names a requester cannot take, copy a template.
"""

from __future__ import annotations

import pytest
from support import ingested_table

from features.featurise import featurise, featurise_history

DSC = "system:serviceaccount:kube-system:daemon-set-controller"
ADDON = "eks:addon-manager"
ALICE = "alice"
MALLORY = "mallory"
APP_SA = "system:serviceaccount:shop:deployer"
REPO = "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy"
OLD, NEW = f"{REPO}:v1.29.10-eksbuild.1", f"{REPO}:v1.29.10-eksbuild.2"


def _containers(image: str) -> list[dict]:
    return [{"name": "kube-proxy", "image": image, "securityContext": {"privileged": True}}]


def _daemonset(image: str) -> dict:
    return {"spec": {"template": {"spec": {"containers": _containers(image)}}}}


def _pod(image: str, *, owned: bool) -> dict:
    meta: dict = {"generateName": "kube-proxy-", "namespace": "kube-system"}
    if owned:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy"}]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {"containers": _containers(image)}}


def _event(n: int, when: str, who: str, verb: str, resource: str, body: dict) -> dict:
    group = "/apis/apps/v1" if resource == "daemonsets" else "/api/v1"
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": f"{group}/namespaces/kube-system/{resource}",
        "verb": verb,
        "user": {"username": who, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.3.17"],
        "userAgent": "kube-controller-manager/v1.29.10 (linux/amd64) kubernetes/7f9249a",
        "objectRef": {"resource": resource, "namespace": "kube-system", "name": "kube-proxy"},
        "responseStatus": {"code": 201 if verb == "create" else 200},
        "requestObject": body,
        "requestReceivedTimestamp": when,
    }


@pytest.fixture(scope="module")
def upgrade_day(tmp_path_factory):
    """Last week: the add-on manager wrote the old build and the controller ran it on each node,
    and alice, mallory and the shop's deployer each created a pod. Today: the upgrade (one hour),
    alice's bare pod with a new image, and mallory and the deployer each creating a pod with a
    new image that names a kube-proxy DaemonSet as its owner."""
    tmp = tmp_path_factory.mktemp("image_precedent")
    week = [
        _event(1, "2026-03-02T09:00:01Z", ADDON, "patch", "daemonsets", _daemonset(OLD)),
        _event(2, "2026-03-02T09:00:05Z", DSC, "create", "pods", _pod(OLD, owned=True)),
        _event(3, "2026-03-02T09:00:25Z", DSC, "create", "pods", _pod(OLD, owned=True)),
        _event(4, "2026-03-03T14:00:00Z", ALICE, "create", "pods", _pod("busybox:1.36", owned=False)),
        _event(9, "2026-03-03T15:00:00Z", MALLORY, "create", "pods", _pod("busybox:1.36", owned=False)),
        _event(10, "2026-03-03T16:00:00Z", APP_SA, "create", "pods", _pod("shop/web:1.4", owned=False)),
    ]
    today = [
        _event(5, "2026-03-10T10:00:01Z", ADDON, "patch", "daemonsets", _daemonset(NEW)),
        _event(6, "2026-03-10T10:00:05Z", DSC, "create", "pods", _pod(NEW, owned=True)),
        _event(7, "2026-03-10T10:00:35Z", DSC, "create", "pods", _pod(NEW, owned=True)),
        _event(8, "2026-03-10T15:00:00Z", ALICE, "create", "pods", _pod("alpine:3.19", owned=False)),
        _event(11, "2026-03-10T16:00:00Z", MALLORY, "create", "pods", _pod("attacker/miner:1", owned=True)),
        _event(12, "2026-03-10T17:00:00Z", APP_SA, "create", "pods", _pod("attacker/miner:1", owned=True)),
    ]
    _, encoder = featurise_history([ingested_table(tmp, "week", week)])
    windows = featurise(ingested_table(tmp, "today", today), encoder)
    return windows["new_image"].groupby(level="identity").max()


def test_the_controller_copying_its_owners_new_template_has_no_new_image(upgrade_day):
    assert upgrade_day[DSC] == 0


def test_the_template_author_writing_a_new_image_still_has_one(upgrade_day):
    assert upgrade_day[ADDON] == 1


def test_a_pod_created_by_hand_with_an_image_its_creator_never_ran_still_has_one(upgrade_day):
    assert upgrade_day[ALICE] == 1


def test_a_user_naming_an_owner_in_her_pod_still_introduces_its_image(upgrade_day):
    """The owner is mallory's claim, not a controller's copy: her new image stays news."""
    assert upgrade_day[MALLORY] == 1


def test_an_application_service_account_naming_an_owner_still_introduces_its_image(upgrade_day):
    """A stolen app token can write ownerReferences as well as a user can."""
    assert upgrade_day[APP_SA] == 1
