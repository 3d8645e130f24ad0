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

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

import pytest
from sim_data import read_events

from scenarios.attacks import ATTACKS
from scenarios.change import Change
from scenarios.change_bodies import DAEMONSETS
from scenarios.change_ci import NEW_APPS
from scenarios.change_rates import ChangeRates
from scenarios.cluster import DAY_S, Cluster, ClusterSpec, build_cluster
from scenarios.eks import Call
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
    collector a little later) nor after it (a pod an on-call engineer deletes). Every pod a
    change deletes is one the simulator knows (a DaemonSet upgrade once deleted invented names
    for the pods of DaemonSets it kept no list of)."""
    cluster = build_cluster(ClusterSpec(), seed)
    deletes = 0
    for day in range(4):
        view = cluster.on(day)
        for change in cluster.changes_on(day):
            for s, call, _ in change.steps:
                if (call.verb, call.resource, call.subresource) != ("delete", "pods", None):
                    continue
                assert call.name in view.pods.get(call.namespace, []), (seed, day, change.scenario, call.name)
                born, died = view.pod_spans.get((call.namespace, call.name), (0.0, DAY_S))
                assert born <= s == died, (seed, day, change.scenario, call.name, born, s, died)
                deletes += 1
    assert deletes


#: A small cluster whose nodes join and leave, whose DaemonSets are upgraded and whose on-call
#: engineer is paged about every day.
FLEET = ClusterSpec(
    nodes=4,
    rate_scale=0.01,
    change=replace(
        ChangeRates(), node_replaced=60.0, node_added=60.0, node_removed=60.0, daemonset_upgrade=7.0, oncall_night=7.0
    ),
)


def node_of_body(body: dict) -> str:
    """The node a DaemonSet's pod is created for (its node affinity), or "" for any other pod."""
    affinity = body["spec"].get("affinity", {}).get("nodeAffinity", {})
    terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", [])
    return terms[0]["matchFields"][0]["values"][0] if terms else ""


def pod_calls(cluster: Cluster, days: int) -> Iterator[tuple[int, float, Call, Change, set, dict]]:
    """The pod creates, deletes and evictions of the cluster's changes, day by day in time order.

    Each comes as (day, second, call, change, alive, nodes): the pods alive just before the
    call, from the cluster as built and the changes' own creates and deletes, and the node
    of each DaemonSet pod (the build's, then each create's node affinity).
    """
    alive = {(ns, p) for ns, pods in cluster.pods.items() for p in pods}
    nodes = dict(cluster.pod_nodes)
    for day in range(days):
        steps = [(s, c, ch) for ch in cluster.changes_on(day) for s, c, _ in ch.steps]
        for s, call, change in sorted(steps, key=lambda step: step[0]):
            if (call.verb, call.resource) == ("delete", "namespaces"):
                alive = {(ns, p) for ns, p in alive if ns != call.name}
            if call.resource != "pods":
                continue
            if call.verb == "create" and call.subresource is None and call.body:
                key = (call.namespace, call.body["metadata"]["name"])
                if node_of_body(call.body):
                    nodes[key] = node_of_body(call.body)
                yield day, s, call, change, alive, nodes
                alive.add(key)
            elif (call.verb, call.subresource) == ("delete", None) or call.subresource == "eviction":
                yield day, s, call, change, alive, nodes
                alive.discard((call.namespace, call.name))


@pytest.mark.parametrize(("spec", "seeds"), [(ClusterSpec(), range(10)), (FLEET, range(3))], ids=["default", "fleet"])
def test_no_change_deletes_or_evicts_a_pod_that_does_not_exist(spec, seeds):
    """Pods deleted by DaemonSet upgrades, drains, rollouts and people, and pods evicted by
    drains, over eight days: each existed (was built or created, and not deleted since).

    (A DaemonSet upgrade once deleted an invented pod on each node it had no pod of; a drain
    once evicted a pod the on-call engineer had deleted that night.)
    """
    ends = 0
    for seed in seeds:
        for day, s, call, change, alive, _ in pod_calls(build_cluster(spec, seed), 8):
            if call.verb == "create" and call.subresource is None:
                continue
            assert (call.namespace, call.name) in alive, (seed, day, change.scenario, s, call.verb, call.name)
            ends += 1
    assert ends


def test_every_node_has_one_pod_of_each_daemonset_from_its_join_to_its_drain():
    """At the start of every day, each node has exactly one pod of each DaemonSet, and no
    DaemonSet's pod is left of a node that is gone: the cluster's build and a node's join make
    them, an upgrade replaces them, the garbage collection after a drain deletes them."""
    nodes_checked = 0
    for seed in range(3):
        cluster = build_cluster(FLEET, seed)
        for day in range(9):
            cluster.on(day)
            state = cluster.world.states[day]
            for ds, (ns, *_) in DAEMONSETS.items():
                pods = [p for p in state.pods.get(ns, []) if p.startswith(f"{ds}-")]
                assert len(pods) == len(state.node_names), (seed, day, ds)
                assert sorted(state.pod_nodes[(ns, p)] for p in pods) == sorted(state.node_names), (seed, day, ds)
            nodes_checked += len(state.node_names)
    assert nodes_checked


def test_a_daemonset_upgrade_replaces_each_nodes_own_pod():
    """An upgrade deletes a node's pod of the DaemonSet and creates the new one for that node."""
    upgraded: set[str] = set()
    for seed in range(3):
        for day, s, call, change, alive, nodes in pod_calls(build_cluster(FLEET, seed), 8):
            if change.scenario != "benign_daemonset_upgrade" or call.verb != "delete":
                continue
            made = next(c.body for t, c, _ in change.steps if t == s + 5.0 and c.verb == "create" and c.body)
            assert (call.namespace, call.name) in alive, (seed, day, call.name)
            assert nodes[(call.namespace, call.name)] == node_of_body(made), (seed, day, call.name)
            upgraded.add(call.name.rsplit("-", 1)[0])
    assert upgraded == set(DAEMONSETS)  # each DaemonSet, those the simulator once kept no pods of too


def test_a_drained_node_loses_its_own_daemon_pods():
    """The garbage collection after a drain deletes the drained node's pods, one of each
    DaemonSet, and no other node's. (It once deleted the first kube-proxy and aws-node pods the
    cluster listed, whichever node they ran on: the drained node's own lived on.)"""
    deleted: dict[int, list[tuple[str, str]]] = {}
    on_node: dict[int, list[tuple[str, str]]] = {}
    for seed in range(3):
        for _, _, call, change, alive, nodes in pod_calls(build_cluster(FLEET, seed), 8):
            drained = next((c.name for _, c, _ in change.steps if (c.verb, c.resource) == ("delete", "nodes")), None)
            if drained is None or call.verb != "delete":
                continue  # not a drain, or an application's pod evicted
            # The node's pods as the garbage collection begins.
            on_node.setdefault(id(change), sorted(k for k in alive if nodes.get(k) == drained))
            deleted.setdefault(id(change), []).append((call.namespace, call.name))
    assert deleted
    for change, pods in deleted.items():
        assert sorted(pods) == on_node[change]
        assert sorted(p.rsplit("-", 1)[0] for _, p in pods) == sorted(DAEMONSETS)


def test_a_pod_deleted_on_call_is_replaced_at_a_new_address():
    """The pod a ReplicaSet makes for one deleted by hand gets a new address, and the
    application calls from it once it runs (it once kept the deleted pod's address). An
    application another change moved today keeps its addresses: an actor changes identity
    once a day."""
    replaced = 0
    for seed in range(3):
        cluster = build_cluster(FLEET, seed)
        for day in range(8):
            view = cluster.on(day)
            before = cluster.world.states[day]
            for change in cluster.changes_on(day):
                if change.scenario != "benign_oncall_night":
                    continue
                deleted = [(s, c.name) for s, c, _ in change.steps if (c.verb, c.resource) == ("delete", "pods")]
                made = [c.body["metadata"]["name"] for _, c, _ in change.steps if c.verb == "create" and c.body]
                for (at, old), new in zip(deleted, made, strict=True):
                    was = next((a for a in before.actors if old in a.pod_names), None)
                    if was is None:
                        continue  # a pod no application runs in (made by a rollout today)
                    app = next(a for a in view.actors if a.identity.username == was.identity.username)
                    if app.novel is not None and not at < app.switch_at < at + 60.0 or new not in app.pod_names:
                        continue  # moved by another change today (or another page)
                    old_ip = was.identity.ips[was.pod_names.index(old)]
                    assert app.identity.ips[app.pod_names.index(new)] != old_ip, (seed, day, old, new)
                    assert app.was is not None and app.was.ips == was.identity.ips, (seed, day, old, new)
                    assert at < app.switch_at, (seed, day, old, new)
                    replaced += 1
    assert replaced
