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

import numpy as np
import pytest
from sim_data import SMALL

from scenarios import networks
from scenarios.attacks import ATTACKS, NIGHT_HOURS, TOOL_UAS, WORKING_HOURS, Context, schedule
from scenarios.cluster import Cluster, build_cluster, day_start
from scenarios.eks import Call, Identity

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
    """The fixture's events: (attack events, everything else)."""
    attack_ids = {row["auditID"] for row in attacked["labels"] if row["scenario"] in ATTACKS}
    attack = [e for e in attacked["events"] if e["auditID"] in attack_ids]
    normal = [e for e in attacked["events"] if e["auditID"] not in attack_ids]
    return attack, normal


def _session(extra: dict | None) -> str | None:
    return ((extra or {}).get("sessionName") or [None])[0]


def _tz_of(cluster: Cluster, who: Identity) -> int:
    """The time zone of the actor behind an identity (people told apart by their IAM session)."""
    for actor in cluster.actors:
        if actor.identity.username == who.username and _session(actor.identity.extra) == _session(who.extra):
            return actor.tz_offset
    raise LookupError(who.username)


def _injected(cluster: Cluster, name: str, variant: str, seed: int) -> list[tuple[datetime, Call, Identity]]:
    """One attack built and timed alone, handed what scenarios.simulate.attack_day hands it."""
    attack = ATTACKS[name]
    ctx = Context(cluster, np.random.default_rng([seed, 3, DAY, 0]), loud=(variant == "loud"))
    steps = attack.build(ctx)
    # attack_day's time zone: that of the first actor with the first step's username.
    first_user = steps[0][1].username
    tz = next((a.tz_offset for a in cluster.actors if a.identity.username == first_user), 0)
    return schedule(attack, steps, ctx, day_start(cluster.spec, DAY), tz)


def _local_hours(name: str, variant: str, seed: int, cluster: Cluster) -> list[int]:
    """Local hours, in the time zone of the victim behind the first call, of an attack's calls."""
    timed = _injected(cluster, name, variant, seed)
    tz = _tz_of(cluster, timed[0][2])
    return [(t + timedelta(hours=tz)).hour for t, _, _ in timed]


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
    """Several people share the username ``developer``, in different time zones; exec_into_pods
    uses one person's session, and quiet it lands in that person's working day."""
    first_developer = cluster.actors_of("developer")[0]
    for seed in SEEDS:
        timed = _injected(cluster, "exec_into_pods", "quiet", seed)
        tz = _tz_of(cluster, timed[0][2])
        assert tz != first_developer.tz_offset  # else this test could not tell the two apart
        hours = {(t + timedelta(hours=tz)).hour for t, _, _ in timed}
        assert all(WORKING_HOURS[0] <= h < WORKING_HOURS[1] for h in hours), (seed, hours)


@pytest.mark.parametrize("variant", ["loud", "quiet"])
def test_low_and_slow_probing_is_a_denied_call_or_three_an_hour_through_a_working_day(cluster, variant):
    """A compromised application probes other namespaces from its own pod with its own client:
    every call denied, one an hour (three when loud), over at least eight consecutive hours."""
    per_hour = 3 if variant == "loud" else 1
    for seed in SEEDS:
        timed = _injected(cluster, "low_and_slow_probing", variant, seed)
        app = cluster.actor(timed[0][2].username)
        assert app.kind == "app" and {who.username for _, _, who in timed} == {app.identity.username}
        assert {who.user_agent for _, _, who in timed} == {app.identity.user_agent}
        addresses = {ip for _, _, who in timed for ip in who.ips}
        assert len(addresses) == 1 and addresses <= set(app.identity.ips)  # one of its own pods
        assert not any(call.allowed for _, call, _ in timed)
        assert all(call.namespace not in {None, app.namespace} for _, call, _ in timed)
        assert {call.resource for _, call, _ in timed} <= {"secrets", "configmaps", "pods"}
        assert {call.verb for _, call, _ in timed} <= {"get", "list"}
        per_clock_hour = collections.Counter(t.hour for t, _, _ in timed)
        hours = sorted(per_clock_hour)
        assert len(hours) >= 8 and hours == list(range(hours[0], hours[0] + len(hours))), hours
        assert set(per_clock_hour.values()) == {per_hour}, per_clock_hour


def test_labels_round_trip_for_the_new_attack_alone(tmp_path):
    """simulate(..., attacks=[...]) writes a label for every request of the low-and-slow probe."""
    from sim_data import read_events, read_labels

    from scenarios.simulate import simulate

    result = simulate(tmp_path, days=1, attacks=["low_and_slow_probing"], variant="quiet", seed=4, spec=SMALL)
    rows = [r for r in read_labels(result.labels) if r["scenario"] in ATTACKS]
    ids = {r["auditID"] for r in rows}
    denied = [e for e in read_events(result.files) if e["auditID"] in ids]
    assert len(rows) == len(denied) >= 8
    assert {r["scenario"] for r in rows} == {"low_and_slow_probing"}
    assert {r["technique"] for r in rows} == {"T1613"} and {r["variant"] for r in rows} == {"quiet"}
    assert {e["responseStatus"]["code"] for e in denied} == {403}
    assert {r["day"] for r in rows} == {str(day_start(SMALL, 0).date())}
