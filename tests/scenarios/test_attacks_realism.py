"""Attacks carry no marker that ordinary traffic never has (issue #15).

An intruder's address is the victim's own (its pod, its laptop, CI's runners) or comes from
the same kinds of networks benign newcomers use: a cloud VM, a residential proxy, a mobile or
VPN exit, a pod in the cluster. Its user agent is one the cluster's own clients send, or the
default of a real tool (curl, python-requests, Go's net/http). Each attack happens at an hour
of the kind it defines, in the victim's time zone, and that hour changes from seed to seed.
"""

from __future__ import annotations

import collections
import ipaddress
from datetime import datetime, timedelta

import pytest
from sim_data import SMALL

from scenarios import networks
from scenarios.attacks import ATTACKS, NIGHT_HOURS, TOOL_UAS, WORKING_HOURS
from scenarios.cluster import Cluster, build_cluster, day_start
from scenarios.simulate import attack_day

DOCUMENTATION_NET = ipaddress.ip_network("192.0.2.0/24")  # the attackers' range before issue #15
POD_SUBNETS = ipaddress.ip_network("10.0.16.0/20"), ipaddress.ip_network("10.0.32.0/20")
POD_SUBNETS += (ipaddress.ip_network("10.0.48.0/20"),)
SEEDS = range(12)
DAY = 1  # a Tuesday


def _in_a_pool_or_a_pod(ip: str) -> bool:
    prefix = ".".join(ip.split(".")[:2])
    in_pool = any(prefix in prefixes for prefixes in networks.POOLS.values())
    return in_pool or any(ipaddress.ip_address(ip) in net for net in POD_SUBNETS)


def _split(attacked) -> tuple[list[dict], list[dict]]:
    """The fixture's events: (attack events, ordinary events)."""
    attack_ids = {row["auditID"] for row in attacked["labels"]}
    attack = [e for e in attacked["events"] if e["auditID"] in attack_ids]
    normal = [e for e in attacked["events"] if e["auditID"] not in attack_ids]
    return attack, normal


def _session(user: dict) -> str | None:
    return ((user.get("extra") or {}).get("sessionName") or [None])[0]


def _victim_tz(cluster: Cluster, event: dict) -> int:
    """The time zone of the actor behind an event (people told apart by their IAM session)."""
    for actor in cluster.actors:
        who = actor.identity
        if who.username == event["user"]["username"] and _session({"extra": who.extra}) == _session(event["user"]):
            return actor.tz_offset
    raise LookupError(event["user"]["username"])


def _local_hours(name: str, variant: str, seed: int, cluster: Cluster) -> list[int]:
    """Local hours (victim's time zone) of every request of one attack injected alone."""
    events, labels, _ = attack_day(cluster, [name], DAY, variant, seed)
    by_id = {e["auditID"]: e for _, e in events}
    first = by_id[labels[0]["auditID"]]
    tz = _victim_tz(cluster, first)
    hours = []
    for row in labels:
        t = datetime.fromisoformat(row["timestamp"].replace("Z", ""))
        hours.append((t + timedelta(hours=tz)).hour)
    return hours


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return build_cluster(SMALL, 11)


def test_no_attack_comes_from_the_old_attacker_range_and_new_addresses_are_real_kinds_of_network(attacked):
    """An attack event's address is either one its identity already uses in ordinary traffic
    (the victim's own pod, laptop or CI runner) or lies in a network benign novelty also comes
    from (cloud, residential, mobile, VPN) or in the cluster's pod subnets."""
    attack, normal = _split(attacked)
    usual = collections.defaultdict(set)
    for event in normal:
        usual[event["user"]["username"]].update(event["sourceIPs"])
    for event in attack:
        ip = event["sourceIPs"][0]
        assert ipaddress.ip_address(ip) not in DOCUMENTATION_NET, event["user"]["username"]
        assert ip in usual[event["user"]["username"]] or _in_a_pool_or_a_pod(ip), (event["user"]["username"], ip)


def test_every_attack_user_agent_is_a_normal_clients_or_a_real_tools_default(attacked):
    """Stolen kubeconfigs bring kubectl of a version people here use; in-pod intruders use the
    victim's client-go, kubectl, curl or python-requests; no user agent is invented."""
    attack, normal = _split(attacked)
    normal_uas = {e["userAgent"] for e in normal}
    for event in attack:
        assert event["userAgent"] in normal_uas | set(TOOL_UAS.values()), event["userAgent"]


def test_the_stolen_token_is_used_from_a_new_public_address_of_a_real_kind(attacked):
    attack, normal = _split(attacked)
    rows = [r for r in attacked["labels"] if r["scenario"] == "stolen_token_external"]
    ids = {r["auditID"] for r in rows}
    victim = rows[0]["identity"]
    used_before = {ip for e in normal if e["user"]["username"] == victim for ip in e["sourceIPs"]}
    addresses = {e["sourceIPs"][0] for e in attack if e["auditID"] in ids}
    assert addresses and not addresses & used_before
    kinds = {kind for ip in addresses for kind, pool in networks.POOLS.items() if ".".join(ip.split(".")[:2]) in pool}
    assert kinds <= {"cloud", "residential"} and kinds, addresses


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_quiet_variant_stays_in_the_victims_working_hours(cluster, name):
    for seed in SEEDS:
        hours = _local_hours(name, "quiet", seed, cluster)
        assert all(WORKING_HOURS[0] <= h < WORKING_HOURS[1] for h in hours), (name, seed, sorted(set(hours)))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_loud_variant_happens_at_night_when_the_attack_is_off_hours_else_in_working_hours(cluster, name):
    start, end = NIGHT_HOURS if ATTACKS[name].off_hours else WORKING_HOURS
    for seed in SEEDS:
        hours = _local_hours(name, "loud", seed, cluster)
        assert all(start <= h < end for h in hours), (name, seed, sorted(set(hours)))


@pytest.mark.parametrize("variant", ["loud", "quiet"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_the_hour_of_an_attack_changes_with_the_seed(cluster, name, variant):
    starts = {_local_hours(name, variant, seed, cluster)[0] for seed in SEEDS}
    assert len(starts) > 1, (name, variant, starts)


def test_a_developer_attack_keeps_the_hours_of_the_developer_whose_session_it_is(cluster):
    """Several people share the username ``developer``; exec_into_pods uses the second one's
    session (Austin, UTC-6), so quiet it lands in Austin's working day, not Berlin's."""
    events, labels, _ = attack_day(cluster, ["exec_into_pods"], DAY, "quiet", 3)
    first = next(e for _, e in events if e["auditID"] == labels[0]["auditID"])
    assert _victim_tz(cluster, first) == -6
    utc_hours = {int(row["timestamp"][11:13]) for row in labels}
    assert utc_hours <= set(range(9 + 6, 18 + 6)), utc_hours


@pytest.mark.parametrize("variant", ["loud", "quiet"])
def test_low_and_slow_probing_is_a_denied_call_or_three_an_hour_through_a_working_day(cluster, variant):
    """A compromised application probes other namespaces from its own pod with its own client:
    every call denied, one an hour (three when loud), over at least eight consecutive hours."""
    per_hour = 3 if variant == "loud" else 1
    for seed in SEEDS:
        events, labels, _ = attack_day(cluster, ["low_and_slow_probing"], DAY, variant, seed)
        probes = [e for _, e in events]
        app = cluster.actor(probes[0]["user"]["username"])
        assert app.kind == "app"
        assert {e["userAgent"] for e in probes} == {app.identity.user_agent}
        assert len({e["sourceIPs"][0] for e in probes}) == 1 and probes[0]["sourceIPs"][0] in app.identity.ips
        assert all(e["responseStatus"]["code"] == 403 for e in probes)
        assert all(e["objectRef"]["namespace"] != app.namespace for e in probes)
        assert {e["objectRef"]["resource"] for e in probes} <= {"secrets", "configmaps", "pods"}
        assert {e["verb"] for e in probes} <= {"get", "list"}
        per_utc_hour = collections.Counter(int(e["requestReceivedTimestamp"][11:13]) for e in probes)
        hours = sorted(per_utc_hour)
        assert len(hours) >= 8 and hours == list(range(hours[0], hours[0] + len(hours))), hours
        assert set(per_utc_hour.values()) == {per_hour}, per_utc_hour
        assert len(labels) == len(probes)


def test_labels_round_trip_for_the_new_attack_alone(tmp_path):
    """simulate(..., attacks=[...]) writes a label for every request of the low-and-slow probe."""
    from sim_data import read_events, read_labels

    from scenarios.simulate import simulate

    result = simulate(tmp_path, days=1, attacks=["low_and_slow_probing"], variant="quiet", seed=4, spec=SMALL)
    labels = read_labels(result.labels)
    denied = [e for e in read_events(result.files) if e["auditID"] in {r["auditID"] for r in labels}]
    assert len(labels) == len(denied) >= 8
    assert {r["scenario"] for r in labels} == {"low_and_slow_probing"}
    assert {r["technique"] for r in labels} == {"T1613"}
    assert str(day_start(SMALL, 0).date()) == labels[0]["day"]
