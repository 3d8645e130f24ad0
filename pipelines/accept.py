"""``kaad accept``: learn an alerting identity-day (and its open finding's earlier days) as normal.

Until a person accepts it, what an alerted identity-day introduced stays held in the model's day
state (models/day_state.py), so an attacker does not become usual by waiting a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from errors import KaadError
from models.day_state import Held, model_key
from models.persistence import signing_key
from models.registry import resolve_bundle
from models.state_store import load_state, save_state, state_path


@dataclass(frozen=True)
class AcceptJob:
    """``kaad accept``: which finding (identity and day), of which model and cluster."""

    identity: str
    day: date
    model: str | None = None
    run: str | None = None
    bundle: Path | None = None
    cluster: str = "default"
    state_dir: Path = Path("out/state")
    tracking_uri: str | None = None
    signing_key_file: Path | None = None


def accept_finding(job: AcceptJob) -> tuple[Held, Path, list[date]]:
    """Learn an alerting identity-day as normal in the model's day state, with the earlier held
    days of its open finding; return what was learned, the state file and the days learned.

    The state keeps every alerting identity-day it held back (window features and the values
    they introduced), so accepting needs no report and no logs.
    """
    state, path, key = _saved_state(job)
    days = state.finding_days(job.identity, job.day)
    held = state.accept(job.identity, job.day)
    save_state(state, path, key=key)
    return held, path, days


def open_finding_lines(held: list[tuple[str, date, Held]]) -> list[str]:
    """One line per open finding (an identity's held days): first and last seen, and how to close it."""
    days: dict[str, list[date]] = {}
    for who, day, _ in held:
        days.setdefault(who, []).append(day)
    return [
        f"open finding of {who}: first seen {min(d)}, last seen {max(d)}, {len(d)} alerting day(s); "
        f"kaad accept {who} --day {max(d)} closes it"
        for who, d in sorted(days.items(), key=lambda item: min(item[1]))
    ]


def held_findings(job: AcceptJob) -> tuple[list[tuple[str, date, Held]], Path]:
    """The identity-days the state holds back (alerted, not accepted), oldest first; and the state file.

    ``job.identity`` and ``job.day`` are ignored: every held identity-day is listed.
    """
    state, path, _ = _saved_state(job)
    return [(who, day, state.held[(who, day)]) for who, day in sorted(state.held, key=lambda k: (k[1], k[0]))], path


def _saved_state(job: AcceptJob):
    if sum(x is not None for x in (job.model, job.run, job.bundle)) > 1:
        raise KaadError("give at most one of --model, --run, --bundle")
    loaded, label = resolve_bundle(
        bundle=job.bundle, run=job.run, model=job.model, tracking_uri=job.tracking_uri, key_file=job.signing_key_file
    )
    key = signing_key(job.signing_key_file)
    path = state_path(job.state_dir, model_key(loaded), job.cluster)
    if not path.exists():
        raise KaadError(
            f"no day state of {label} for cluster {job.cluster!r} in {str(job.state_dir)!r}: "
            "kaad score keeps them in out/state, or in <--out>/state"
        )
    return load_state(path, key=key), path, key
