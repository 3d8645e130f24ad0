"""Benign change: how a cluster's cast moves from day to day for ordinary reasons.

Nodes come and go, rollouts give pods new addresses, teams are onboarded, people are hired,
change laptops and work from home, CI runs on hosted runners and installs operators. A real
cluster sees all of this every week; a detector that alerts on it is no use.

:class:`World` plays the days in order from the cluster as built: each day's changes are drawn
(deterministic for the cluster's seed) from the rates in ``ClusterSpec.change`` and applied to
the state the day before left. A day's plan is the :class:`Cluster` view of who acts that day
(with the span of the day each actor, and each namespace or pod made or deleted that day,
exists in) and the :class:`Change` records with the explicit API calls each change makes;
:mod:`scenarios.simulate` turns both into events and labels (scenario ``benign_<change>``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from scenarios.cluster import DAY_S, Actor, Cluster, Novelty, day_start, within_span
from scenarios.eks import Call, Identity

Step = tuple[float, Call, Identity]  # seconds into the day, call, caller


@dataclass
class Change:
    """One benign change: its scenario label, the identity it is about, and its calls."""

    scenario: str
    identity: str
    steps: list[Step]

    @property
    def span(self) -> tuple[float, float]:
        times = [s for s, _, _ in self.steps]
        return min(times), max(times)


@dataclass
class DayPlan:
    """Who acts on a day (``view``) and the changes made in it."""

    view: Cluster
    changes: list[Change]


class Day:
    """The working state of one day while its changes are drawn and applied.

    Handlers (``scenarios.change_*``) read the cast through :meth:`pick` and change it through
    :meth:`join`, :meth:`leave`, :meth:`switch`, :meth:`for_today` and :meth:`record`. They say
    when a namespace or pod is made or deleted (:meth:`create_namespace`, :meth:`add_pods`...):
    the day's routines touch one only while it exists.
    """

    def __init__(self, state: Cluster, index: int, rng: np.random.Generator, added: np.random.Generator) -> None:
        self.spec = state.spec
        self.index = index
        self.start = day_start(state.spec, index)
        self.rng = rng
        # Draws a change gained after a seed's days were settled come from ``added``, so that the
        # draws from ``rng`` (which changes happen, to whom, when) stay as they were.
        self.added = added
        self.actors = [replace(a, routines=[]) for a in state.actors]
        self.namespaces = list(state.namespaces)  # as they will be tomorrow
        self.app_namespaces = list(state.app_namespaces)
        self.pods = {ns: list(p) for ns, p in state.pods.items()}  # as they will be tomorrow
        self.pods_today = {ns: list(p) for ns, p in state.pods.items()}  # every pod of the day
        self.namespace_spans: dict[str, tuple[float, float]] = {}  # created or deleted today
        self.pod_spans: dict[tuple[str, str], tuple[float, float]] = {}  # (namespace, pod): made or gone today
        self.pod_nodes = dict(state.pod_nodes)  # a DaemonSet's pod -> its node
        self.changes: list[Change] = []
        self._restore: list[tuple[Actor, Identity]] = []
        self.gone = set(state.gone)

    # -- reading the cast ------------------------------------------------------------------
    def pick(self, *kinds: str, untouched: bool = True) -> Actor | None:
        """A random actor of ``kinds`` present all day (and not yet changed today)."""
        pool = [a for a in self.actors if a.kind in kinds and (a.whole_day or not untouched)]
        return pool[int(self.rng.integers(len(pool)))] if pool else None

    def who(self, username: str) -> Identity:
        for a in self.actors:
            if a.identity.username == username:
                return a.identity
        raise KeyError(username)

    def at(self, lo: float, hi: float, tz: int = 0) -> float:
        """A random second of the day between local hours ``lo`` and ``hi`` (kept before 23:00 UTC)."""
        hour = float(self.rng.uniform(lo, hi)) - tz
        return float(min(max(hour % 24, 0.0), 22.5) * 3600.0)

    # -- changing the cast -----------------------------------------------------------------
    def join(self, actor: Actor, since: float, scenario: str, novel_for: float = 3600.0) -> Actor:
        actor = replace(actor, active=(since, DAY_S), novel=Novelty(scenario, since, min(since + novel_for, DAY_S)))
        self.actors.append(actor)
        return actor

    def leave(self, actor: Actor, until: float) -> None:
        actor.active = (actor.active[0], until)

    def switch(self, actor: Actor, identity: Identity, at: float, scenario: str, novel_for: float = 3600.0) -> None:
        """From ``at`` on, ``actor`` calls as ``identity`` (a new address, user agent or key)."""
        actor.was, actor.switch_at, actor.identity = actor.identity, at, identity
        actor.novel = Novelty(scenario, at, min(at + novel_for, DAY_S))

    def for_today(self, actor: Actor, identity: Identity, scenario: str) -> None:
        """``actor`` calls as ``identity`` all day and is itself again tomorrow."""
        self._restore.append((actor, actor.identity))
        actor.identity = identity
        actor.novel = Novelty(scenario, 0.0, DAY_S)

    def create_namespace(self, ns: str, at: float, app: bool = False) -> None:
        """``ns`` is created ``at`` seconds into the day (an application's namespace if ``app``)."""
        self.namespaces.append(ns)
        if app:
            self.app_namespaces.append(ns)
        self.namespace_spans[ns] = (at, DAY_S)

    def delete_namespace(self, ns: str, at: float) -> None:
        """``ns`` and its pods are deleted ``at`` seconds into the day; a team's name is never reused."""
        self.namespaces.remove(ns)
        if ns in self.app_namespaces:
            self.app_namespaces.remove(ns)
        self.gone.add(ns)
        self.pods.pop(ns, None)
        self.namespace_spans[ns] = (self.namespace_spans.get(ns, (0.0, DAY_S))[0], at)

    def exists(self, ns: str, at: float) -> bool:
        """Whether ``ns`` exists ``at`` seconds into the day (as changes made so far have it)."""
        return within_span(self.namespace_spans.get(ns, (0.0, DAY_S) if ns in self.namespaces else (0.0, 0.0)), at)

    def app_namespaces_at(self, at: float) -> list[str]:
        """The application namespaces that exist ``at`` seconds into the day."""
        return [ns for ns in self.app_namespaces if self.exists(ns, at)]

    def add_pods(self, ns: str, names: list[str], at: float, node: str | None = None) -> None:
        """Pods ``names`` of ``ns`` are created ``at`` seconds into the day (a DaemonSet's, on ``node``)."""
        self.pods.setdefault(ns, []).extend(names)
        self.pods_today.setdefault(ns, []).extend(names)
        for pod in names:
            self.pod_spans[(ns, pod)] = (at, DAY_S)
            if node is not None:
                self.pod_nodes[(ns, pod)] = node

    def drop_pods(self, ns: str, names: list[str], at: float) -> None:
        """Pods ``names`` of ``ns`` are deleted ``at`` seconds into the day."""
        self.pods[ns] = [p for p in self.pods.get(ns, []) if p not in names]
        for pod in names:
            self.pod_spans[(ns, pod)] = (self.pod_spans.get((ns, pod), (0.0, DAY_S))[0], at)

    def pods_at(self, ns: str, at: float) -> list[str]:
        """The pods of ``ns`` that exist ``at`` seconds into the day (as changes made so far have it)."""
        if not self.exists(ns, at):
            return []
        return [p for p in self.pods_today.get(ns, []) if within_span(self.pod_spans.get((ns, p), (0.0, DAY_S)), at)]

    def daemon_pods(self, node: str, at: float) -> list[tuple[str, str]]:
        """(namespace, pod) of the DaemonSets' pods on ``node`` that exist ``at`` seconds into the day."""
        here = {ns: set(self.pods_at(ns, at)) for ns, _ in self.pod_nodes}
        return [(ns, p) for (ns, p), n in self.pod_nodes.items() if n == node and p in here[ns]]

    def record(self, scenario: str, identity: str, steps: list[Step]) -> None:
        if steps:
            self.changes.append(Change(f"benign_{scenario}", identity, sorted(steps, key=lambda s: s[0])))

    def time(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    # -- the results -----------------------------------------------------------------------
    def view(self) -> Cluster:
        """Today's cast as it stands, with routines bound: what each actor does all day."""
        from scenarios.normal import add_routines

        nodes = [a for a in self.actors if a.kind == "node"]
        # Copies: restoring today-only identities below must not reach the view.
        view_actors = [replace(a) for a in _shard_daemons(self.actors, nodes)]
        names = [a.identity.username.removeprefix("system:node:") for a in nodes]
        ips = [a.identity.ips[0] for a in nodes]
        namespaces = list(dict.fromkeys(self.namespaces + [ns for ns in self.pods_today if ns]))
        apps = list(dict.fromkeys(self.app_namespaces + [a.namespace for a in view_actors if a.kind == "app"]))
        view = Cluster(self.spec, view_actors, namespaces, [a for a in apps if a], names, ips, self.pods_today)
        # Routines pick among the namespaces that exist when they act, not all of today's.
        view.namespace_spans = dict(self.namespace_spans)
        view.pod_spans = dict(self.pod_spans)
        view.pod_nodes = dict(self.pod_nodes)
        view.day_start = self.start
        add_routines(view, self.rng)  # draws nothing from rng: binding routines is deterministic
        return view

    def finish(self) -> tuple[DayPlan, Cluster]:
        """Today's view (routines bound) and the state tomorrow starts from."""
        view = self.view()
        for actor, identity in self._restore:
            actor.identity = identity
        tomorrow = [
            replace(a, active=(0.0, DAY_S), was=None, switch_at=0.0, novel=None, share=1.0, routines=[])
            for a in self.actors
            if a.active[1] == DAY_S
        ]
        live = [a for a in tomorrow if a.kind == "node"]
        state = Cluster(
            self.spec,
            tomorrow,
            self.namespaces,
            self.app_namespaces,
            [a.identity.username.removeprefix("system:node:") for a in live],
            [a.identity.ips[0] for a in live],
            self.pods,
            gone=frozenset(self.gone),
            pod_nodes={k: n for k, n in self.pod_nodes.items() if k[1] in self.pods.get(k[0], [])},
        )
        for a in state.actors_of("node-daemon"):
            a.identity = replace(a.identity, ips=tuple(state.node_ips))
        return DayPlan(view, self.changes), state


def _shard_daemons(actors: list[Actor], nodes: list[Actor]) -> list[Actor]:
    """Node daemons call from every node's address; a node that joins or leaves mid-day gets
    its own share of them, active only while the node is."""
    steady = [n for n in nodes if n.active == (0.0, DAY_S)]
    moving = [n for n in nodes if n.active != (0.0, DAY_S)]
    out = []
    for a in actors:
        if a.kind != "node-daemon" or not moving:
            out.append(a)
            continue
        if steady:
            ips = tuple(n.identity.ips[0] for n in steady)
            out.append(replace(a, identity=replace(a.identity, ips=ips), share=len(steady) / len(nodes)))
        for n in moving:
            ident = replace(a.identity, ips=n.identity.ips)
            out.append(replace(a, identity=ident, active=n.active, share=1 / len(nodes), novel=n.novel))
    return out


Handler = Callable[[Day], None]
#: scenario -> (handler, happens at weekends too). Filled by the change_* modules.
HANDLERS: dict[str, tuple[Handler, bool]] = {}


def handlers() -> dict[str, tuple[Handler, bool]]:
    """Every change's handler and whether it happens at weekends too."""
    # The handlers register themselves when their modules are imported.
    for module in ("change_ci", "change_nodes", "change_operators", "change_people"):
        importlib.import_module(f"scenarios.{module}")
    return HANDLERS


def handler(name: str, weekends: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = (fn, weekends)
        return fn

    return register


@dataclass
class World:
    """The days of one cluster, planned in order and kept (a day's plan needs the day before)."""

    cluster: Cluster
    states: list[Cluster] = field(default_factory=list)
    plans: list[DayPlan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.states.append(self.cluster)

    def plan(self, day: int) -> DayPlan:
        if day < 0:
            raise ValueError(f"day must be 0 or later, not {day}")

        while len(self.plans) <= day:
            d = len(self.plans)
            plan, state = plan_day(self.states[d], d, self.cluster.seed)
            self.plans.append(plan)
            self.states.append(state)
        return self.plans[day]


def plan_day(state: Cluster, index: int, seed: int) -> tuple[DayPlan, Cluster]:
    """Draw and apply the benign changes of day ``index`` to ``state`` (the cast at its start)."""
    registry = handlers()
    day = Day(state, index, np.random.default_rng([seed, 4, index]), np.random.default_rng([seed, 4, index, 1]))
    weekend = day.start.weekday() >= 5
    rates = state.spec.change.per_day(state.spec)
    # In the order of ChangeRates' fields, whatever order the handler modules were imported in.
    for name in rates:
        fn, weekends = registry[name]
        # Work changes happen on the five working days: the weekly rate spread over them.
        rate = rates[name] if weekends else (0.0 if weekend else rates[name] * 7 / 5)
        for _ in range(int(day.rng.poisson(rate))):
            fn(day)
    return day.finish()
