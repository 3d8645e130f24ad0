"""Write a simulated cluster's audit log, day by day, with labelled attacks injected.

Output: one ``audit-YYYY-MM-DD.jsonl.gz`` per day (events in the order the API server
writes them: by stage time) and ``labels.csv`` with one row per injected event and one per
event of a benign change (scenario ``benign_*``, variant ``benign``, no technique).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from scenarios.attacks import ATTACKS, Context, in_life, schedule
from scenarios.cluster import DAY_S, Actor, Cluster, ClusterSpec, Routine, build_cluster, day_start
from scenarios.eks import Call, build_events
from scenarios.flowlogs import FlowPlan, write_day
from scenarios.normal import hourly_weights

LABEL_FIELDS = ("auditID", "stage", "scenario", "technique", "variant", "identity", "day", "timestamp", "start", "end")
#: Routines at or above this rate (per hour) are the periodic machine traffic that
#: ``ClusterSpec.rate_scale`` thins; people, CI and applications are never thinned.
PERIODIC_RATE = 30.0


@dataclass
class SimulationResult:
    """What a simulation wrote."""

    files: list[Path] = field(default_factory=list)
    labels: Path | None = None
    n_events: int = 0
    injected: list[dict] = field(default_factory=list)  # one summary row per attack
    changes: dict[str, int] = field(default_factory=dict)  # benign change scenario -> times made
    flow_files: list[Path] = field(default_factory=list)  # VPC flow logs (--flow-logs)


def normal_day(cluster: Cluster, day: int, seed: int) -> list[tuple[datetime, dict]]:
    """The events of one ordinary day, unsorted, as (write time, event).

    Ordinary includes the day's benign change (see :func:`simulate_day`, which also
    returns its labels).
    """
    return simulate_day(cluster, day, seed)[0]


def simulate_day(cluster: Cluster, day: int, seed: int) -> tuple[list[tuple[datetime, dict]], list[dict]]:
    """One day of the cluster's life: every actor's routines and the day's benign changes.

    Returns the events, unsorted, as (write time, event), and one label row per event of a
    benign change (the change's own calls, and the routine calls of an actor it created or
    altered while they are new). Deterministic for the cluster and ``seed``.
    """
    view = cluster.on(day)
    start = day_start(cluster.spec, day)
    # Timers draw from their own stream: adding one (an informer) leaves every other routine's day as it was.
    events, labels = _routines(
        view, start, np.random.default_rng([seed, 2, day]), np.random.default_rng([seed, 6, day])
    )
    rng = np.random.default_rng([seed, 5, day])
    for change in cluster.changes_on(day):
        first, last = (start + timedelta(seconds=s) for s in change.span)
        for s, call, who in change.steps:
            built = build_events(call, who, start + timedelta(seconds=s), rng)
            events += built
            labels += [_benign_label(e, change.scenario, who.username, start, first, last) for _, e in built]
    return events, labels


def _routines(
    view: Cluster, start: datetime, rng: np.random.Generator, timers: np.random.Generator
) -> tuple[list[tuple[datetime, dict]], list[dict]]:
    out: list[tuple[datetime, dict]] = []
    labels: list[dict] = []
    for actor in view.actors:
        novel = actor.novel
        for routine in actor.routines:
            scale = view.spec.rate_scale if routine.rate >= PERIODIC_RATE else 1.0
            draw = timers if routine.timer else rng
            for s, episode in (_on_timer if routine.timer else _at_random)(actor, routine, scale, start, draw):
                who = actor.was if actor.was is not None and s < actor.switch_at else actor.identity
                t = start + timedelta(seconds=s)
                for dt, call in episode:
                    built = build_events(call, who, t + timedelta(seconds=dt), draw)
                    out.extend(built)
                    if novel is not None and novel.since <= s < novel.until and who is actor.identity:
                        first = start + timedelta(seconds=novel.since)
                        last = start + timedelta(seconds=novel.until)
                        labels += [_benign_label(e, novel.scenario, who.username, start, first, last) for _, e in built]
    return out, labels


Episodes = Iterator[tuple[float, list[tuple[float, Call]]]]


def _at_random(actor: Actor, routine: Routine, scale: float, start: datetime, rng: np.random.Generator) -> Episodes:
    """A routine's episodes at random times: a Poisson count each hour, spread evenly in it."""
    lo, hi = actor.active
    counts = rng.poisson(routine.rate * scale * actor.share * hourly_weights(actor, routine, start))
    for hour in np.flatnonzero(counts):
        for offset in np.sort(rng.uniform(0, 3600, counts[hour])):
            s = float(hour * 3600 + offset)
            if lo <= s < hi:  # else the actor does not exist yet, or any more
                yield s, routine.episode(rng, start + timedelta(seconds=s))


def _on_timer(actor: Actor, routine: Routine, scale: float, start: datetime, rng: np.random.Generator) -> Episodes:
    """A timer routine's episodes, each as soon as the last one ends (thinned as ``_at_random``)."""
    lo, hi = actor.active
    s = float(rng.uniform(0, 3600 / routine.rate))
    while s < DAY_S:
        episode = routine.episode(rng, start + timedelta(seconds=s))
        if lo <= s < hi:
            yield s, episode
        lasts = max(dt + call.duration_s for dt, call in episode)
        if lasts <= 0:
            raise ValueError(f"a timer routine's episode must last (a watch does): {episode}")
        s += lasts / (scale * actor.share)


def _benign_label(event: dict, scenario: str, identity: str, day: datetime, first: datetime, last: datetime) -> dict:
    return {
        "auditID": event["auditID"],
        "stage": event["stage"],
        "scenario": scenario,
        "technique": "",
        "variant": "benign",
        "identity": identity,
        "day": day.date().isoformat(),
        "timestamp": event["requestReceivedTimestamp"],
        "start": first.isoformat() + "Z",
        "end": last.isoformat() + "Z",
    }


def attack_day(
    cluster: Cluster, names: Iterable[str], day: int, variant: str, seed: int
) -> tuple[list[tuple[datetime, dict]], list[dict], list[dict]]:
    """Events and label rows for the named attacks injected on ``day``."""
    events: list[tuple[datetime, dict]] = []
    labels: list[dict] = []
    summary: list[dict] = []
    start = day_start(cluster.spec, day)
    for i, name in enumerate(names):
        attack = ATTACKS[name]
        rng = np.random.default_rng([seed, 3, day, i])
        # Victims are picked among the actors that exist all that day (benign change moves the cast).
        ctx = Context(cluster.as_of(day), rng, loud=(variant == "loud"))
        steps = attack.build(ctx)
        tz = _victim_tz(ctx.cluster, steps[0][1].username)
        timed = in_life(ctx.cluster, schedule(attack, steps, ctx, start, tz))
        first, last = timed[0][0], timed[-1][0]
        ids = set()
        for t, call, who in timed:
            for wt, event in build_events(call, who, t, rng):
                events.append((wt, event))
                ids.add(event["auditID"])
                labels.append(
                    {
                        "auditID": event["auditID"],
                        "stage": event["stage"],
                        "scenario": name,
                        "technique": attack.technique,
                        "variant": variant,
                        "identity": who.username,
                        "day": start.date().isoformat(),
                        "timestamp": event["requestReceivedTimestamp"],
                        "start": first.isoformat() + "Z",
                        "end": last.isoformat() + "Z",
                    }
                )
        summary.append(
            {
                "scenario": name,
                "technique": attack.technique,
                "variant": variant,
                "identities": sorted({w.username for _, _, w in timed}),
                "requests": len(ids),
                "start": first,
                "end": last,
            }
        )
    return events, labels, summary


def _victim_tz(cluster: Cluster, username: str) -> int:
    for actor in cluster.actors:
        if actor.identity.username == username:
            return actor.tz_offset
    return 0


def simulate(
    out_dir: Path,
    *,
    days: int = 21,
    attacks: Iterable[str] = (),
    attack_day_index: int | None = None,
    variant: str = "loud",
    seed: int = 0,
    spec: ClusterSpec | None = None,
    on_day: Callable[[int, int], None] | None = None,
    flow_logs: Path | None = None,
) -> SimulationResult:
    """Simulate ``days`` days of a cluster and write them to ``out_dir``.

    Parameters
    ----------
    attacks : names from :data:`scenarios.attacks.ATTACKS` to inject.
    attack_day_index : 0-based day to inject them on (default: the last day).
    on_day : progress callback ``(days_done, days_total)``.
    flow_logs : a directory for VPC flow logs of the pods (:mod:`scenarios.flowlogs`); the
        audit log then also holds the kubelet's status patches that give pods their addresses.

    Examples
    --------
    >>> import tempfile
    >>> result = simulate(Path(tempfile.mkdtemp()), days=1, attacks=["anonymous_probing"])
    >>> result.injected[0]["scenario"]
    'anonymous_probing'
    """
    spec = spec or ClusterSpec()
    names = list(attacks)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {unknown!r}; known: {', '.join(ATTACKS)}")
    if variant not in {"loud", "quiet"}:
        raise ValueError(f"variant must be 'loud' or 'quiet', not {variant!r}")
    target_day = days - 1 if attack_day_index is None else attack_day_index
    if names and not 0 <= target_day < days:
        raise ValueError(f"attack day {target_day} is outside the {days} simulated days")
    cluster = build_cluster(spec, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = SimulationResult()
    all_labels: list[dict] = []
    network = FlowPlan(cluster, seed) if flow_logs is not None else None
    for day in range(days):
        events, benign = simulate_day(cluster, day, seed)
        all_labels += benign
        for change in cluster.changes_on(day):
            result.changes[change.scenario] = result.changes.get(change.scenario, 0) + 1
        injected: list = []
        if names and day == target_day:
            injected, labels, summary = attack_day(cluster, names, day, variant, seed)
            events += injected
            all_labels += labels
            result.injected += summary
        if network is not None and flow_logs is not None:
            added, records = network.day(day, events, injected)
            events += added
            result.flow_files += write_day(flow_logs, day_start(spec, day), records)
        events.sort(key=lambda pair: pair[0])
        path = out_dir / f"audit-{day_start(spec, day):%Y-%m-%d}.jsonl.gz"
        # mtime=0 and a fixed level: the same seed gives the same bytes.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
            gz.write(b"".join(orjson.dumps(e) + b"\n" for _, e in events))
        result.files.append(path)
        result.n_events += len(events)
        if on_day is not None:
            on_day(day + 1, days)
    result.labels = out_dir / "labels.csv"
    with open(result.labels, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LABEL_FIELDS)
        writer.writeheader()
        writer.writerows(all_labels)
    return result
