"""Known noise, suppressed visibly: an identity with a reason and an expiry.

The allowlist is a TOML file::

    [[suppress]]
    identity = "system:serviceaccount:monitoring:prometheus-k8s"   # required; shell-style pattern
    user_agent = "Prometheus/*"      # optional: also every user agent of the window must match
    namespace = "monitoring"         # optional: also every namespace of the window must match
    covers = ["n_exec"]              # optional: guarded reasons this entry may hide, or
                                     # rule:<name>, a rule it mutes for the identity (rules/)
    reason = "scrapes every namespace by design"
    expires = 2026-12-31

Every entry names an identity: user agents and namespaces are chosen by whoever sends the
request, so they only narrow an entry, never make one. An entry does not hide a window whose
reasons include a guarded one (a sensitive action, or a new network origin: see
:data:`GUARDED`) unless its ``covers`` names that reason; such a window stays live and says
which entry matched and what it does not cover. Suppressed windows are marked, never dropped.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from errors import KaadError
from features.catalog import FEATURES

#: Reasons an entry hides only when it names them in ``covers``: every sensitive action, and
#: a source IP new for the identity or a network new for the cluster (a stolen token in use).
GUARDED: tuple[str, ...] = tuple(f.name for f in FEATURES if f.family == "sensitive") + (
    "new_source_ip",
    "new_ip_range",
)
#: explain() lists a count feature as a reason from one scale unit of deviation on.
_MOVED = 1.0
_FIELDS = {"identity", "user_agent", "namespace", "covers", "reason", "expires"}
_HEADER = re.compile(r"^\s*\[\[\s*suppress\s*\]\]\s*(#.*)?$")


@dataclass(frozen=True)
class Entry:
    """One allowlist entry; ``label`` says where it is written (``allow.toml:7``)."""

    identity: str
    reason: str
    expires: date
    user_agent: str | None = None
    namespace: str | None = None
    covers: frozenset[str] = frozenset()
    label: str = ""

    def describe(self) -> str:
        """One line: where, which identity (and narrowing), why, until when, what it covers."""
        narrow = "".join(
            f" {name} {value}"
            for name, value in (("user_agent", self.user_agent), ("namespace", self.namespace))
            if value
        )
        covers = ", ".join(sorted(self.covers)) or "-"
        return (
            f"{self.label}: identity {self.identity}{narrow}; reason: {self.reason}; "
            f"expires {self.expires}; covers {covers}"
        )

    def matches(self, identity: str, user_agents: list[str], namespaces: list[str]) -> bool:
        if not fnmatch.fnmatchcase(identity, self.identity):
            return False
        if self.user_agent is not None and not (
            user_agents and all(fnmatch.fnmatchcase(u, self.user_agent) for u in user_agents)
        ):
            return False
        if self.namespace is not None and not (
            namespaces and all(fnmatch.fnmatchcase(n, self.namespace) for n in namespaces)
        ):
            return False
        return True


@dataclass(frozen=True)
class Decision:
    """What the allowlist did with one window: hid it (``entry``), or could not (``note``)."""

    entry: Entry | None = None
    note: str = ""


@dataclass
class Allowlist:
    """Active entries, and the expired ones (reported, not applied)."""

    entries: list[Entry]
    expired: list[Entry] = field(default_factory=list)

    def decide(self, identity: str, user_agents: list[str], namespaces: list[str], guarded: list[str]) -> Decision:
        """The first matching entry that covers all of the window's ``guarded`` reasons hides it."""
        matched = [e for e in self.entries if e.matches(identity, user_agents, namespaces)]
        for entry in matched:
            if entry.covers.issuperset(guarded):
                return Decision(entry)
        if not matched:
            return Decision()
        first = matched[0]
        missing = ", ".join(g for g in guarded if g not in first.covers)
        return Decision(note=f"allowlist entry {first.label} matched but does not cover: {missing}")


def guarded_reasons(windows: pd.DataFrame, deviations: pd.DataFrame) -> pd.DataFrame:
    """Which guarded features are among each window's reasons (one boolean column each).

    The rule is explain()'s, without its cap on how many reasons it shows: a sensitive count
    that happened and moved at least one scale unit from the identity's usual, a novelty that
    is not zero. A count an identity always has (a scraper's daily exec) is not a reason.
    """
    cols = [c for c in GUARDED if c in windows.columns]
    values = windows[cols].to_numpy(dtype=float)
    moved = np.abs(deviations[cols].to_numpy(dtype=float)) >= _MOVED
    novelty = np.array([c.startswith("new_") for c in cols])
    flags = (values > 0) & (moved | novelty)
    return pd.DataFrame(flags, index=windows.index, columns=cols)


def _header_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), start=1) if _HEADER.match(line)]


def _first_line(text: str, name: str) -> int | None:
    """The line where a top-level table or key ``name`` is written, if it can be found."""
    pattern = re.compile(rf"^\s*(\[\[?\s*{re.escape(name)}\s*[\].]|[\"']?{re.escape(name)}[\"']?\s*=)")
    return next((i for i, line in enumerate(text.splitlines(), start=1) if pattern.match(line)), None)


def _identity_pattern(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KaadError(f"{where}: identity must be a non-empty pattern, not {value!r}")
    if not re.sub(r"\[[^\]]*\]|[*?]", "", value).strip():
        raise KaadError(
            f"{where}: identity {value!r} matches every identity; name one (e.g. system:serviceaccount:monitoring:*)"
        )
    return value


def _covers(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KaadError(f"{where}: covers must be a list of reason names, not {value!r}")
    unknown = [v for v in value if v not in GUARDED and not (v.startswith("rule:") and len(v) > 5)]
    if unknown:
        raise KaadError(
            f"{where}: covers names {unknown!r}, which are not guarded reasons; choose from {', '.join(GUARDED)}, "
            "or rule:<name> to mute a rule"
        )
    return frozenset(value)


def load_allowlist(path: Path, today: date) -> Allowlist:
    """Read and check an allowlist file; entries need an identity, a reason and an expiry date."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KaadError(f"cannot read allowlist {str(path)!r}: {exc}") from None
    for name, value in data.items():
        if name != "suppress":  # e.g. [[allow]]: read as nothing, it would suppress nothing, silently
            line = _first_line(text, name)
            kind = "table" if isinstance(value, dict | list) else "key"
            where = f"{path}:{line}" if line else str(path)
            raise KaadError(f"{where}: unknown {kind} {name!r}; entries are [[suppress]] tables")
    raws = data.get("suppress", [])
    if not isinstance(raws, list):
        raise KaadError(f"{path}: suppress must be an array of tables ([[suppress]])")
    # tomllib gives no positions; the n-th [[suppress]] header is the n-th entry when the
    # counts agree (inline tables have no header, and then there is no line to name).
    lines: Sequence[int | None] = _header_lines(text)
    lines = lines if len(lines) == len(raws) else [None] * len(raws)
    active: list[Entry] = []
    expired: list[Entry] = []
    for i, (raw, line) in enumerate(zip(raws, lines, strict=True), start=1):
        label = f"{path.name}:{line}" if line else f"{path.name} entry {i}"
        where = f"{path}:{line}: entry {i}" if line else f"{path}: entry {i}"
        if not isinstance(raw, dict):
            raise KaadError(f"{where}: not a table")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise KaadError(f"{where}: unknown field(s) {sorted(unknown)!r}")
        if "identity" not in raw:
            raise KaadError(
                f"{where}: every entry needs an identity pattern; user_agent and namespace "
                "only narrow an entry (any client can send them)"
            )
        identity = _identity_pattern(raw["identity"], where)
        if not raw.get("reason") or "expires" not in raw:
            raise KaadError(f"{where}: every entry needs a reason and an expires date")
        expires = raw["expires"]
        if isinstance(expires, datetime):  # a TOML date-time is also a date; compare days
            expires = expires.date()
        if not isinstance(expires, date):
            raise KaadError(f"{where}: expires must be a date like 2026-12-31, not {expires!r}")
        for key in ("user_agent", "namespace"):
            if key in raw and not isinstance(raw[key], str):
                raise KaadError(f"{where}: {key} must be a pattern string, not {raw[key]!r}")
        entry = Entry(
            identity,
            str(raw["reason"]),
            expires,
            raw.get("user_agent"),
            raw.get("namespace"),
            _covers(raw.get("covers", []), where),
            label,
        )
        (active if expires >= today else expired).append(entry)
    return Allowlist(active, expired)
