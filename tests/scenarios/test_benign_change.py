"""A simulated cluster changes for ordinary reasons every week, and every change is labelled.

Nodes are replaced, apps roll out to new pod addresses, teams are onboarded, people are
hired and work from home, CI runs on hosted runners and installs operators. Each change is
labelled ``benign_<change>`` in labels.csv, so a detector's false positives can be named.
"""

from __future__ import annotations

import collections
import math
from dataclasses import fields, replace

import pytest
from sim_data import read_events, read_labels

from scenarios.attacks import ATTACKS
from scenarios.change import handlers
from scenarios.change_bodies import DAEMONSETS
from scenarios.change_rates import REFERENCE, ChangeRates
from scenarios.cluster import ClusterSpec, build_cluster, day_start
from scenarios.networks import POOLS
from scenarios.simulate import attack_day, simulate

SIZE = {"nodes": 4, "apps": 6, "people": 6}


def every_change(per_week: float) -> ChangeRates:
    """Rates at which every kind of change happens ``per_week`` times a week on a SIZE cluster."""
    return ChangeRates(
        **{
            f.name: per_week
            * (REFERENCE[f.metadata["driver"]] / SIZE[f.metadata["driver"]] if f.metadata["driver"] else 1)
            for f in fields(ChangeRates)
        }
    )


#: Four nodes, six apps, six people; periodic control-plane traffic thinned to keep tests quick.
MODEST = ClusterSpec(nodes=4, app_namespaces=6, humans=6, rate_scale=0.01, change=every_change(2.0))


@pytest.fixture(scope="module")
def changing(tmp_path_factory):
    """Three weeks of a modest cluster in which every kind of change happens about twice a week."""
    out = tmp_path_factory.mktemp("changing")
    result = simulate(out, days=21, seed=4, spec=MODEST)
    return {"result": result, "events": read_events(result.files), "labels": read_labels(result.labels), "dir": out}


def expected_changes(spec: ClusterSpec, name: str, days: int) -> float:
    """Work changes happen on weekdays only; fleet and control-plane changes on any day."""
    per_day = spec.change.per_day(spec)[name]
    weekends = handlers()[name][1]
    weekday = [day_start(spec, d).weekday() < 5 for d in range(days)]
    return sum(per_day if weekends else per_day * 7 / 5 * w for w in weekday)


def test_default_rates_describe_a_busy_month_scaled_to_the_cluster():
    spec = ClusterSpec(nodes=5, app_namespaces=6, humans=6)
    per_day = spec.change.per_day(spec)
    # 10 replacements a week on 50 nodes are one a week on 5; 36 rollouts on 12 apps, 18 on 6.
    assert per_day["node_replaced"] == pytest.approx(1 / 7)
    assert per_day["rollout"] == pytest.approx(18 / 7)
    assert per_day["break_glass"] == pytest.approx(1 / 13 / 7)  # once a quarter, whatever the size
    assert set(per_day) == set(handlers())  # every rate drives a change, every change has a rate
    assert ChangeRates.none().per_day(spec) == dict.fromkeys(per_day, 0.0)


def test_each_benign_change_happens_at_about_its_configured_rate():
    """Over four weeks, every change's count is within three standard deviations of its rate."""
    spec = ClusterSpec(nodes=4, app_namespaces=6, humans=6, change=every_change(4.0))
    cluster = build_cluster(spec, seed=1)
    made = collections.Counter(c.scenario for day in range(28) for c in cluster.changes_on(day))
    for name in handlers():
        expected = expected_changes(spec, name, 28)
        assert expected == pytest.approx(16.0, abs=0.5)
        assert abs(made[f"benign_{name}"] - expected) <= 3 * math.sqrt(expected), (name, made[f"benign_{name}"])


def test_every_change_is_labelled_benign(changing):
    labels = changing["labels"]
    cluster = build_cluster(MODEST, seed=4)
    labelled = {(row["scenario"], row["identity"]) for row in labels}
    scenarios = set()
    for day in range(21):
        for change in cluster.changes_on(day):
            scenarios.add(change.scenario)
            assert (change.scenario, change.identity) in labelled or any(
                (change.scenario, who.username) in labelled for _, _, who in change.steps
            )
    assert scenarios == {f"benign_{name}" for name in handlers()}  # three weeks show every kind
    assert {row["variant"] for row in labels} == {"benign"}
    assert {row["technique"] for row in labels} == {""}
    assert changing["result"].changes == dict(
        collections.Counter(c.scenario for d in range(21) for c in cluster.changes_on(d))
    )


def test_attack_free_simulation_has_benign_labels_only(changing):
    ids = {e["auditID"] for e in changing["events"]}
    assert changing["labels"]
    for row in changing["labels"]:
        assert row["scenario"].startswith("benign_"), row
        assert row["auditID"] in ids


def test_a_replaced_nodes_kubelet_registers_then_calls_like_its_peers(changing):
    replaced = sorted({r["identity"] for r in changing["labels"] if r["scenario"] == "benign_node_replaced"})
    newcomers = [u for u in replaced if u.startswith("system:node:")]
    assert newcomers
    new = newcomers[0]
    by_user = collections.defaultdict(list)
    for e in changing["events"]:
        by_user[e["user"]["username"]].append(e)
    first = sorted(by_user[new], key=lambda e: e["requestReceivedTimestamp"])
    # Registration: it asks for its Node, creates it, then requests a serving certificate.
    assert [(e["verb"], e["objectRef"]["resource"]) for e in first[:3]] == [
        ("get", "nodes"),
        ("create", "nodes"),
        ("create", "certificatesigningrequests"),
    ]
    assert first[1]["requestObject"]["kind"] == "Node"
    # The cluster's own components approve the CSR and schedule privileged DaemonSet pods onto it.
    node = new.removeprefix("system:node:")
    helpers = [e for e in changing["events"] if e["user"]["username"] in {"eks:certificate-controller"}]
    assert any(e["requestURI"].endswith("/approval") for e in helpers)
    joined = {r["auditID"] for r in changing["labels"] if r["scenario"] == "benign_node_replaced"}
    daemon_pods = [
        e
        for e in changing["events"]
        if e["user"]["username"] == "system:serviceaccount:kube-system:daemon-set-controller"
        and e["verb"] == "create"
        and e["auditID"] in joined
        and node in str(e.get("requestObject", ""))
    ]
    # A pod of every DaemonSet; kube-proxy, the CNI and the CSI node plugin privileged.
    assert {p["requestObject"]["metadata"]["generateName"] for p in daemon_pods} == {f"{ds}-" for ds in DAEMONSETS}
    assert all(
        bool(c["securityContext"].get("privileged"))
        == DAEMONSETS[p["requestObject"]["metadata"]["generateName"][:-1]][2]
        for p in daemon_pods
        for c in p["requestObject"]["spec"]["containers"]
    )
    assert all("hostPath" in v for p in daemon_pods for v in p["requestObject"]["spec"]["volumes"])
    # Afterwards it behaves like any other kubelet: the same kinds of calls, the same client, its own address.
    peers = [u for u in by_user if u.startswith("system:node:") and u not in replaced]

    def habits(user):
        # After its first 20 events by request time: a registration watch's ResponseComplete is
        # written 5-10 minutes on, and in write order it once fell after them (a changed seed's stream).
        later = sorted(by_user[user], key=lambda e: e["requestReceivedTimestamp"])[20:]
        return {(e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("subresource")) for e in later}

    peer_habits = set().union(*(habits(p) for p in peers))
    assert habits(new) <= peer_habits | {("get", "pods", None), ("patch", "pods", "status")}
    assert {e["userAgent"] for e in by_user[new]} == {by_user[peers[0]][0]["userAgent"]}
    assert len({e["sourceIPs"][0] for e in by_user[new]}) == 1
    assert by_user[new][0]["sourceIPs"][0] not in {e["sourceIPs"][0] for p in peers for e in by_user[p]}


def test_hosted_ci_runs_come_from_cloud_addresses_that_differ_between_runs(changing):
    runs = collections.defaultdict(set)
    by_id = {e["auditID"]: e for e in changing["events"]}
    for row in changing["labels"]:
        if row["scenario"] == "benign_hosted_ci_run":
            runs[row["start"]].add(by_id[row["auditID"]]["sourceIPs"][0])
    assert len(runs) >= 3
    cloud = set(POOLS["cloud"])
    for addresses in runs.values():
        assert len(addresses) == 1  # one runner per run
        assert ".".join(next(iter(addresses)).split(".")[:2]) in cloud
    assert len(set().union(*runs.values())) >= len(runs) - 1  # a different address most runs


def test_rollouts_onboarding_and_operator_installs_write_what_real_ones_write(changing):
    labelled = collections.defaultdict(list)
    by_id = {e["auditID"]: e for e in changing["events"]}
    for row in changing["labels"]:
        labelled[row["scenario"]].append(by_id[row["auditID"]])
    # A rollout: the app then calls from pod addresses it never used before.
    rollout_ips = {e["sourceIPs"][0] for e in labelled["benign_rollout"] if e["user"]["username"].endswith("-api")}
    assert rollout_ips and all(ip.startswith("10.0.") for ip in rollout_ips)
    # An onboarded team's service account reads its own config and secrets, as its peers do.
    newcomers = {e["user"]["username"] for e in labelled["benign_team_onboarded"]} - {
        e["user"]["username"] for e in changing["events"] if e["requestReceivedTimestamp"] < "2026-03-03"
    }
    app_sa = [u for u in newcomers if u.startswith("system:serviceaccount:") and u.endswith("-api")]
    assert app_sa
    verbs = {(e["verb"], e["objectRef"]["resource"]) for e in changing["events"] if e["user"]["username"] == app_sa[0]}
    assert {("get", "configmaps"), ("update", "leases"), ("watch", "configmaps")} <= verbs
    # An operator install writes CRDs, ClusterRoles, bindings and webhook configurations with bodies.
    kinds = {e["objectRef"]["resource"] for e in labelled["benign_operator_install"] if "requestObject" in e}
    assert {"customresourcedefinitions", "clusterroles", "clusterrolebindings"} <= kinds
    assert kinds & {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}
    # A privileged DaemonSet rolled by an add-on upgrade.
    ds = [e for e in labelled["benign_daemonset_upgrade"] if e["verb"] == "patch"]
    assert ds and ds[0]["objectRef"]["resource"] == "daemonsets"


def test_noise_is_failures_real_clients_cause(changing):
    codes = collections.Counter()
    for row in changing["labels"]:
        if row["scenario"] in {"benign_bad_deploy", "benign_client_errors"}:
            codes[row["scenario"]] += 1
    by_id = {e["auditID"]: e for e in changing["events"]}
    storm = [
        by_id[r["auditID"]]["responseStatus"]["code"]
        for r in changing["labels"]
        if r["scenario"] == "benign_bad_deploy"
    ]
    assert set(storm) <= {404, 409} and len(storm) >= 20
    relists = [by_id[r["auditID"]] for r in changing["labels"] if r["scenario"] == "benign_apiserver_restart"]
    assert len({e["user"]["username"] for e in relists}) >= 10  # every informer relists at once


def test_same_seed_same_bytes_with_change(tmp_path):
    spec = ClusterSpec(nodes=2, rate_scale=0.01, change=every_change(7.0))
    a = simulate(tmp_path / "a", days=3, seed=9, spec=spec)
    b = simulate(tmp_path / "b", days=3, seed=9, spec=spec)
    assert sum(a.changes.values()) >= 10
    assert [f.read_bytes() for f in a.files] == [f.read_bytes() for f in b.files]
    assert a.labels is not None and b.labels is not None
    assert a.labels.read_bytes() == b.labels.read_bytes()


def test_attack_victims_exist_on_the_attack_day():
    """A retired service account is no victim: attacks pick among the actors present all day."""
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.01, change=every_change(4.0))
    cluster = build_cluster(spec, seed=2)
    retired = {c.identity for d in range(14) for c in cluster.changes_on(d) if c.scenario == "benign_sa_retired"}
    assert retired
    present = {a.identity.username for a in cluster.actors_on(14)}
    assert not retired & present
    _, labels, _ = attack_day(cluster, list(ATTACKS), 14, "quiet", seed=2)
    assert not retired & {row["identity"] for row in labels}


def test_every_attack_finds_its_victims_on_every_day_of_a_hectic_month():
    """People with a new session or a day at home are still there to be attacked."""
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.01, change=every_change(10.0))
    cluster = build_cluster(spec, seed=3)
    for day in range(21):
        present = {a.identity.username for a in cluster.actors_on(day)}
        for variant in ("loud", "quiet"):
            _, labels, summary = attack_day(cluster, list(ATTACKS), day, variant, seed=3)
            assert len(summary) == len(ATTACKS)
            victims = {row["identity"] for row in labels if row["scenario"] in {"exec_into_pods", "secret_enumeration"}}
            assert victims <= present, (day, victims - present)


def novelty_per_day(events: list[dict], days: range) -> list[dict[str, int]]:
    """New source IPs, /16 networks, user agents and usernames per day, from the raw events."""
    seen: dict[str, set] = {k: set() for k in ("ips", "nets", "agents", "identities")}
    per_day: dict[str, dict[str, set]] = collections.defaultdict(lambda: {k: set() for k in seen})
    for e in events:
        today = per_day[e["requestReceivedTimestamp"][:10]]
        ip = e["sourceIPs"][0]
        today["ips"].add(ip)
        today["nets"].add(".".join(ip.split(".")[:2]))
        today["agents"].add(e["userAgent"])
        today["identities"].add(e["user"]["username"])
    out = []
    for day in sorted(per_day):
        out.append({k: len(per_day[day][k] - seen[k]) for k in seen})
        for k in seen:
            seen[k] |= per_day[day][k]
    return [out[d] for d in days]


def test_new_addresses_agents_and_identities_appear_on_working_days(changing, tmp_path):
    """Days 3-7 (Thursday to Monday): novelty on working days now, none in a frozen cluster."""
    now = novelty_per_day(changing["events"], range(3, 8))
    frozen = simulate(tmp_path, days=8, seed=4, spec=replace(MODEST, change=ChangeRates.none()))
    before = novelty_per_day(read_events(frozen.files), range(3, 8))
    assert all(v == 0 for day in before for v in day.values())
    working = [now[0], now[1], now[4]]  # Thursday, Friday, Monday
    assert all(day["ips"] > 0 for day in working)
    assert sum(day["identities"] for day in now) > 0
    assert sum(day["agents"] for day in now) > 0


def test_a_rollout_runs_one_build_on_all_its_pods(changing):
    """A deploy writes one image into the Deployment's template; the new ReplicaSet's pods all
    run it, and all name that one ReplicaSet as owner. (The simulator once gave each pod its own
    build, which made a rollout look like many new images.)"""
    by_id = {e["auditID"]: e for e in changing["events"]}
    rollouts: dict[tuple, list[dict]] = collections.defaultdict(list)
    for row in changing["labels"]:
        if row["scenario"] not in ("benign_rollout", "benign_client_upgrade"):
            continue
        e = by_id[row["auditID"]]
        if e["verb"] == "create" and e["objectRef"]["resource"] == "pods" and "requestObject" in e:
            day = e["requestReceivedTimestamp"][:10]
            rollouts[(row["scenario"], e["objectRef"]["namespace"], day)].append(e["requestObject"])
    several = [pods for pods in rollouts.values() if len(pods) > 1]
    assert several  # rollouts of more than one pod were simulated
    for pods in several:
        images = {c["image"] for p in pods for c in p["spec"]["containers"]}
        owners = {r["name"] for p in pods for r in p["metadata"]["ownerReferences"]}
        assert len(images) == 1 and len(owners) == 1


def test_an_api_server_restart_makes_each_informer_list_again_what_it_watches(changing):
    """Who relists is who keeps informers, and only the kinds it watches (client-go's ListAndWatch).

    kube-controller-manager's shared informers run under its own name with the user agent suffix
    ``/shared-informers`` (the kubeadm dataset in ../shared/real-samples: it lists and watches
    every kind after a start, its controllers' service accounts none). The simulator had each
    controller's account list kinds it never watched, which no real restart does.
    """
    by_id = {e["auditID"]: e for e in changing["events"]}
    relists = [by_id[r["auditID"]] for r in changing["labels"] if r["scenario"] == "benign_apiserver_restart"]
    lists = [e for e in relists if e["verb"] == "list"]
    assert lists
    kcm = {e["objectRef"]["resource"] for e in lists if e["user"]["username"] == "system:kube-controller-manager"}
    assert len(kcm) >= 15
    assert all(
        e["userAgent"].endswith("/shared-informers")
        for e in lists
        if e["user"]["username"] == "system:kube-controller-manager"
    )
    controllers = {e["user"]["username"] for e in lists if e["user"]["username"].endswith("-controller")}
    assert not {c for c in controllers if c.startswith("system:serviceaccount:kube-system:")}
    watched = {(e["user"]["username"], e["objectRef"]["resource"]) for e in changing["events"] if e["verb"] == "watch"}
    assert {(e["user"]["username"], e["objectRef"]["resource"]) for e in lists} <= watched
