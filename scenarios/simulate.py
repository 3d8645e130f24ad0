"""Write a simulated cluster's audit log, day by day, with labelled attacks injected.

Output: one ``audit-YYYY-MM-DD.jsonl.gz`` per day (events in the order the API server
writes them: by stage time) and ``labels.csv`` with one row per injected event.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from scenarios.attacks import ATTACKS, Context, schedule
from scenarios.cluster import Cluster, ClusterSpec, build_cluster, day_start
from scenarios.eks import build_events
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


def normal_day(cluster: Cluster, day: int, seed: int) -> list[tuple[datetime, dict]]:
    """The events of one ordinary day, unsorted, as (write time, event)."""
    rng = np.random.default_rng([seed, 2, day])
    start = day_start(cluster.spec, day)
    out: list[tuple[datetime, dict]] = []
    for actor in cluster.actors:
        for routine in actor.routines:
            scale = cluster.spec.rate_scale if routine.rate >= PERIODIC_RATE else 1.0
            counts = rng.poisson(routine.rate * scale * hourly_weights(actor, routine, start))
            for hour in np.flatnonzero(counts):
                for offset in np.sort(rng.uniform(0, 3600, counts[hour])):
                    t = start + timedelta(seconds=float(hour * 3600 + offset))
                    for dt, call in routine.episode(rng, t):
                        out.extend(build_events(call, actor.identity, t + timedelta(seconds=dt), rng))
    return out


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
        ctx = Context(cluster, rng, loud=(variant == "loud"))
        steps = attack.build(ctx)
        tz = _victim_tz(cluster, steps[0][1].username)
        timed = schedule(attack, steps, ctx, start, tz)
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
) -> SimulationResult:
    """Simulate ``days`` days of a cluster and write them to ``out_dir``.

    Parameters
    ----------
    attacks : names from :data:`scenarios.attacks.ATTACKS` to inject.
    attack_day_index : 0-based day to inject them on (default: the last day).
    on_day : progress callback ``(days_done, days_total)``.

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
    for day in range(days):
        events = normal_day(cluster, day, seed)
        if names and day == target_day:
            injected, labels, summary = attack_day(cluster, names, day, variant, seed)
            events += injected
            all_labels += labels
            result.injected += summary
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
