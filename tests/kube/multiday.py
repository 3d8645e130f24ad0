"""A week of a real kube-apiserver's life with benign change, and attacks on the last day.

Days run from Tuesday 2026-02-03; with the default eight days the last one is a Tuesday too
(people and CI work Monday to Friday; the applications, the monitor, the health checks and
the kubelet refreshing pod tokens every hour of every day, the replicaset controller after
each rollout). The real log is written in about a minute;
``timeshift`` spreads it over the synthetic days (see there for exactly what moves).

Benign change, labelled ``benign_*`` (variant ``benign``, technique empty):

- ``benign_new_engineer`` (a third of the way in): carol's kubectl is denied, the admin binds
  her the developer Role in team-a, she works from her own home address.
- ``benign_oncall_night`` (the fourth day and the last, 03:00): the admin from home reads logs,
  tries a shell (400: no kubelet here), deletes the pod, restarts the deployment; the
  replicaset controller replaces the pod.
- ``benign_new_service`` (last day): namespace team-c with its own service account that, from
  then on, behaves like team-a's app.
- ``benign_operator_install`` (last day): CI (``ci:deployer``, cluster-admin) installs an
  operator: namespace, CRD, ClusterRole, ClusterRoleBinding, service account, validating
  webhook configuration, deployment, helm release secret; the operator's service account then
  reconciles every hour, and on its first day is denied the secrets its chart forgot to grant.
- ``benign_ci_runner_move`` (last day): CI's deploys come from a new cloud address.

Attacks on the last day: ``slow_namespace_probing`` (team-a's app, one denied call into
another namespace each hour from 09:00 to 17:00, from its own pod address and user agent),
``stolen_token_new_address`` (bob's token with kubectl from a VPN address at 14:00 while bob
works as usual) and, loud, ``secret_enumeration`` then ``cluster_admin_binding`` (the monitor's
token from a pod address with kubectl at 13:00: rules reviews, secrets listed namespace by
namespace and cluster-wide, a cluster-admin binding; all denied).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np

from scenarios.networks import address, pod_address
from tests.kube import acts
from tests.kube.cast import Cast, identity, setup
from tests.kube.timeshift import Label, Mark, spread

BASE = datetime(2026, 2, 3)  # a Tuesday
DAYS = 8
NEW_ENGINEER = Label("benign_new_engineer")
ON_CALL = Label("benign_oncall_night")
NEW_SERVICE = Label("benign_new_service")
OPERATOR = Label("benign_operator_install")
RUNNER_MOVE = Label("benign_ci_runner_move")
SLOW_PROBE = Label("slow_namespace_probing", "T1613", "quiet")
STOLEN_TOKEN = Label("stolen_token_new_address", "T1550.001", "quiet")
SECRETS = Label("secret_enumeration", "T1552.007", "loud")
ADMIN_BINDING = Label("cluster_admin_binding", "T1098.006", "loud")
ATTACKS = (SLOW_PROBE, STOLEN_TOKEN, SECRETS, ADMIN_BINDING)
BENIGN = (NEW_ENGINEER, ON_CALL, NEW_SERVICE, OPERATOR, RUNNER_MOVE)


@dataclass(frozen=True)
class Burst:
    """One identity's calls at a synthetic time (``who`` is a cast name, or an identity)."""

    at: datetime
    who: str
    act: Callable[[], object]
    label: Label | None = None


@dataclass
class RealDays:
    """What a run wrote: one audit log per day, labels, and the raw log it came from."""

    files: list[Path]
    labels: Path
    log: Path
    attack_day: datetime


def addresses(rng: np.random.Generator) -> dict[str, str]:
    """Each client's address: pods in the pod subnets, people at home, CI on a cloud runner."""
    out = {name: pod_address(rng) for name in ("app", "worker", "monitor", "app-c", "operator")}
    out |= {name: address(rng, "residential") for name in ("alice", "bob", "carol")}
    out |= {"admin": address(rng, "vpn"), "deployer": address(rng, "cloud"), "controller": ""}
    out["node"] = f"10.0.1.{int(rng.integers(10, 250))}"
    return out


def plan(cast: Cast, days: int, rng: np.random.Generator) -> list[Burst]:
    """Every burst of the scenario, in synthetic time order."""
    bursts: list[Burst] = []
    last, engineer_day = days - 1, max(1, days // 3)
    nodes = [f"10.0.{i}.{int(rng.integers(10, 250))}" for i in range(1, 4)]
    at = partial(_at, rng)

    def add(t: datetime, who: str, act: Callable[[], object], label: Label | None = None) -> None:
        bursts.append(Burst(t, who, act, label))

    for d in range(days):
        day, weekday = BASE + timedelta(days=d), (BASE + timedelta(days=d)).weekday() < 5
        on_last = d == last
        for h in range(24):
            add(at(day, h), "app", partial(acts.app_hour, cast, "app", "team-a", rng))
            add(at(day, h), "worker", partial(acts.app_hour, cast, "worker", "team-b", rng))
            add(at(day, h), "monitor", partial(acts.monitor_hour, cast))
            add(at(day, h), "system:anonymous", partial(acts.probes, cast, nodes))
            add(at(day, h), "node", partial(acts.kubelet_hour, cast))
            if on_last and h >= 11:  # the new service and the operator, from their first hour
                add(at(day, h), "app-c", partial(acts.app_hour, cast, "app-c", "team-c", rng), NEW_SERVICE)
                add(at(day, h), "operator", partial(acts.operator_hour, cast, True), OPERATOR)
        if d in (min(3, last - 1), last):
            night = partial(acts.on_call, cast, "team-a", address(rng, "residential"))
            add(day + timedelta(hours=3, minutes=5), "admin", night, ON_CALL)
            replace = partial(acts.replace_pod, cast, "team-a", f"n{d}")
            add(day + timedelta(hours=3, minutes=9), "controller", replace, ON_CALL)
        if not weekday:
            continue
        engineers = [("alice", "team-a"), ("bob", "team-b")] + ([("carol", "team-a")] if d >= engineer_day else [])
        for who, ns in engineers:
            for h in range(9, 18):
                if rng.random() < 0.7 and not (who == "carol" and d == engineer_day and h < 11):
                    label = NEW_ENGINEER if who == "carol" and d == engineer_day else None
                    add(at(day, h), who, partial(acts.developer_hour, cast, who, ns, rng), label)
        if d == engineer_day:
            add(
                day + timedelta(hours=9, minutes=20),
                "carol",
                partial(acts.first_try, cast, "carol", "team-a"),
                NEW_ENGINEER,
            )
            add(
                day + timedelta(hours=10, minutes=40),
                "admin",
                partial(acts.onboard, cast, "carol", "team-a"),
                NEW_ENGINEER,
            )
        add(at(day, 14), "admin", partial(acts.admin_hour, cast))
        if on_last:
            moved = address(rng, "cloud")
            add(day + timedelta(hours=1), "deployer", partial(cast.addresses.__setitem__, "deployer", moved))
            add(day + timedelta(hours=10, minutes=10), "admin", partial(acts.new_service, cast, "team-c"), NEW_SERVICE)
            pods_c = partial(acts.replace_pod, cast, "team-c", "c1")
            add(day + timedelta(hours=10, minutes=12), "controller", pods_c, NEW_SERVICE)
            add(day + timedelta(hours=10, minutes=30), "deployer", partial(acts.install_operator, cast), OPERATOR)
            pods_op = partial(acts.replace_pod, cast, "backup-operator", "op1")
            add(day + timedelta(hours=10, minutes=32), "controller", pods_op, OPERATOR)
        for hour, ns in ((11, "team-a"), (15, "team-b")):
            t = at(day, hour)
            add(t, "deployer", partial(acts.deploy, cast, ns, f"{d}.{hour}"), RUNNER_MOVE if on_last else None)
            add(t + timedelta(minutes=2), "controller", partial(acts.replace_pod, cast, ns, f"{d}-{hour}"))
    bursts += _attacks(cast, BASE + timedelta(days=last), rng)
    bursts.sort(key=lambda b: b.at)
    return bursts


def _at(rng: np.random.Generator, day: datetime, hour: int) -> datetime:
    """A random second of ``hour``, short of its last minute (a burst stays inside its window)."""
    return day + timedelta(hours=hour, seconds=float(rng.uniform(0, 3540)))


def _attacks(cast: Cast, day: datetime, rng: np.random.Generator) -> list[Burst]:
    bursts = [
        Burst(_at(rng, day, h), "app", partial(acts.slow_probe, cast, i), SLOW_PROBE)
        for i, h in enumerate(range(9, 18))
    ]
    stolen_from, pod = address(rng, "vpn"), pod_address(rng)
    t = day + timedelta(hours=14, minutes=int(rng.integers(0, 40)))
    bursts.append(Burst(t, "bob", partial(acts.stolen_token, cast, stolen_from), STOLEN_TOKEN))
    t = day + timedelta(hours=13, minutes=int(rng.integers(0, 40)))
    bursts.append(Burst(t, "monitor", partial(acts.secret_enumeration, cast, pod), SECRETS))
    bursts.append(
        Burst(t + timedelta(minutes=3), "monitor", partial(acts.cluster_admin_binding, cast, pod), ADMIN_BINDING)
    )
    return bursts


def run(url: str, log: Path, out_dir: Path, *, days: int = DAYS, seed: int = 0) -> RealDays:
    """Set the cluster up, run every burst against the API server at ``url``, write the days.

    ``log`` is the API server's audit log; it is read once the last burst is done.
    """
    if days < 3:
        raise ValueError(f"the scenario needs at least 3 days (history, change, attacks), not {days}")
    rng = np.random.default_rng(seed)
    cast = Cast(url, addresses(rng))
    marks = [Mark(time.time(), None)]  # start-up and setup: before the first day
    setup(cast)
    for burst in plan(cast, days, rng):
        who = burst.who if burst.who.startswith("system:") else identity(burst.who)
        marks.append(Mark(time.time(), burst.at, who, burst.label))
        burst.act()
    marks.append(Mark(time.time(), None))  # the end: nothing after it is written
    time.sleep(0.5)  # a request's last stage can be written just after its reply
    files, labels = spread(log, marks, out_dir)
    return RealDays(files, labels, log, BASE + timedelta(days=days - 1))
