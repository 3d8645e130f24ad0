"""Nothing is touched before it exists or after it is gone.

A team's namespace is created by CI at some time in the morning; a retired service's
namespace is deleted in the afternoon; a rollout creates new pods and deletes the old ones.
In a real cluster no controller, kubelet, person or pipeline reads or writes a namespace
before its create or after its delete, and no one names a pod before it is created or
after it is deleted. (The simulator once bound a day's routines to the namespaces and pods
as they stood at the end of the day: the controllers wrote into a new team's namespace from
midnight on, hours before CI created it.)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from sim_data import read_events

from scenarios.attacks import ATTACKS
from scenarios.change_ci import NEW_APPS
from scenarios.change_rates import ChangeRates
from scenarios.cluster import DAY_S, ClusterSpec, build_cluster
from scenarios.simulate import attack_day, simulate

#: A small cluster in its ordinary weekly change, with a team onboarded and a service retired
#: about every working day.
BUSY = ClusterSpec(
    nodes=2,
    app_namespaces=6,
    humans=6,
    rate_scale=0.01,
    change=replace(ChangeRates(), team_onboarded=5.0, sa_retired=10.0),
)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Three working days (Monday to Wednesday) of the busy cluster, in request order."""
    result = simulate(tmp_path_factory.mktemp("lifetimes"), days=3, seed=5, spec=BUSY)
    assert result.changes.get("benign_team_onboarded", 0) >= 2
    assert result.changes.get("benign_sa_retired", 0) >= 2
    return sorted(read_events(result.files), key=lambda e: e["requestReceivedTimestamp"])


def touches(event: dict, ns: str) -> bool:
    """Whether ``event`` is in namespace ``ns`` or names it (the namespace itself, an Argo CD app)."""
    path = event["requestURI"].split("?")[0]
    return event.get("objectRef", {}).get("namespace") == ns or ns in path.split("/")


def namespace_calls(events: list[dict], verb: str) -> dict[str, str]:
    """Namespace name -> when it was created (``verb`` create) or deleted (delete)."""
    out = {}
    for e in events:
        ref = e.get("objectRef", {})
        if e["verb"] == verb and ref.get("resource") == "namespaces" and not ref.get("subresource"):
            name = ref.get("name") or e.get("requestObject", {}).get("metadata", {}).get("name")
            out[name] = e["requestReceivedTimestamp"]
    return out


def test_no_one_touches_a_new_teams_namespace_before_ci_creates_it(events):
    created = namespace_calls(events, "create")
    teams = [ns for ns in created if ns in NEW_APPS]  # (helm looks for a release before it makes an operator's)
    assert teams  # the days saw teams onboarded
    for ns in teams:
        early = [e for e in events if touches(e, ns) and e["requestReceivedTimestamp"] < created[ns]]
        assert not early, (ns, created[ns], [(e["user"]["username"], e["requestURI"]) for e in early[:5]])
        # And after it, the team's namespace is lived in like its peers.
        assert sum(touches(e, ns) for e in events) > 20


def test_after_its_delete_only_the_namespace_controller_cleans_a_retired_namespace(events):
    deleted = namespace_calls(events, "delete")
    assert deleted
    cleanup = "system:serviceaccount:kube-system:namespace-controller"
    for ns, at in deleted.items():
        later = [e for e in events if touches(e, ns) and e["requestReceivedTimestamp"] > at]
        assert later  # the controller empties the namespace
        strays = [e for e in later if (e["user"]["username"], e["verb"]) != (cleanup, "deletecollection")]
        assert not strays, (ns, at, [(e["user"]["username"], e["requestURI"]) for e in strays[:5]])


def test_no_one_names_a_pod_before_it_is_created_or_after_it_is_deleted(events):
    """Pods made by rollouts, onboarding and node changes; pods deleted by anyone (controllers,
    a garbage collector, a person)."""
    born: dict[str, str] = {}
    died: dict[str, str] = {}
    for e in events:
        ref = e.get("objectRef", {})
        if ref.get("resource") != "pods":
            continue
        if e["verb"] == "create" and not ref.get("subresource") and "requestObject" in e:
            born[e["requestObject"]["metadata"]["name"]] = e["requestReceivedTimestamp"]
        deleted = e["verb"] == "delete" and not ref.get("subresource") and ref.get("name")
        if deleted or ref.get("subresource") == "eviction":
            died.setdefault(ref["name"], e["requestReceivedTimestamp"])
    assert born and died
    for pod, at in born.items():
        early = [e for e in events if pod in e["requestURI"] and e["requestReceivedTimestamp"] < at]
        assert not early, (pod, at, [(e["user"]["username"], e["requestURI"]) for e in early[:5]])
    for pod, at in died.items():
        late = [e for e in events if pod in e["requestURI"] and e["requestReceivedTimestamp"] > at]
        assert not late, (pod, at, [(e["user"]["username"], e["requestURI"]) for e in late[:5]])


@pytest.mark.parametrize("variant", ["quiet", "loud"])
def test_no_attack_names_a_namespace_or_pod_outside_its_life(variant):
    """An intruder too lists, reads and execs only into what exists at the time of the call.

    On the days a namespace is created or deleted, every attack of the library: none names
    a namespace of the cluster before its create or after its delete, or one of its pods
    outside the pod's life (a rollout replaces pods; an exec into the old one would fail).
    """
    checked = 0
    for seed in (0, 1, 2):
        cluster = build_cluster(ClusterSpec(), seed)
        for day in range(14):
            view = cluster.on(day)
            if not view.namespace_spans:
                continue
            events, _, _ = attack_day(cluster, list(ATTACKS), day, variant, seed)
            for _, e in events:
                ref = e.get("objectRef", {})
                ns, name = ref.get("namespace"), ref.get("name")
                t = datetime.fromisoformat(e["requestReceivedTimestamp"].rstrip("Z"))
                where = (seed, day, e["user"]["username"], e["requestURI"], e["requestReceivedTimestamp"])
                if ns in view.namespaces:
                    assert view.exists(ns, view.seconds(t)), where
                if ref.get("resource") == "pods" and name in view.pods.get(ns, []):
                    assert name in view.pods_at(ns, t), where
                    checked += 1
    assert checked  # some attack named a pod of the cluster


@pytest.mark.parametrize("seed", [0, 5, 6])
def test_every_pod_a_change_deletes_lives_until_its_delete(seed):
    """A benign change deletes a pod that exists: after its create (a DaemonSet upgrade that
    runs while a node joins replaces only the pods already there), and the pod's life ends
    with that delete, not before it (a drained node's daemon pods, deleted by a garbage
    collector a little later) nor after it (a pod an on-call engineer deletes)."""
    cluster = build_cluster(ClusterSpec(), seed)
    deletes = 0
    for day in range(4):
        view = cluster.on(day)
        for change in cluster.changes_on(day):
            for s, call, _ in change.steps:
                if (call.verb, call.resource, call.subresource) != ("delete", "pods", None):
                    continue
                if call.name not in view.pods.get(call.namespace, []):
                    continue  # a pod the simulator keeps no list of (fluent-bit's)
                born, died = view.pod_spans.get((call.namespace, call.name), (0.0, DAY_S))
                assert born <= s == died, (seed, day, change.scenario, call.name, born, s, died)
                deletes += 1
    assert deletes
