"""Known noise, suppressed visibly: identities, user agents or namespaces with a reason and an expiry.

The allowlist is a TOML file::

    [[suppress]]
    identity = "system:serviceaccount:monitoring:prometheus-k8s"
    reason = "scrapes every namespace by design"
    expires = 2026-12-31

    [[suppress]]
    user_agent = "Prometheus/*"       # shell-style patterns
    namespace = "monitoring"
    reason = "..."
    expires = 2027-01-31

An entry matches a window when every field it gives matches: the identity, and all of the
window's user agents or namespaces. Suppressed windows are counted and listed, never dropped.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from errors import KaadError


@dataclass(frozen=True)
class Entry:
    """One allowlist entry."""

    reason: str
    expires: date
    identity: str | None = None
    user_agent: str | None = None
    namespace: str | None = None

    def matches(self, identity: str, user_agents: list[str], namespaces: list[str]) -> bool:
        if self.identity is not None and not fnmatch.fnmatchcase(identity, self.identity):
            return False
        if self.user_agent is not None and not (user_agents and all(
                fnmatch.fnmatchcase(u, self.user_agent) for u in user_agents)):
            return False
        if self.namespace is not None and not (namespaces and all(
                fnmatch.fnmatchcase(n, self.namespace) for n in namespaces)):
            return False
        return True


@dataclass
class Allowlist:
    """Active entries, and the expired ones (reported, not applied)."""

    entries: list[Entry]
    expired: list[Entry]

    def match(self, identity: str, events: pd.DataFrame) -> Entry | None:
        uas = events["user_agent"].dropna().astype(str).unique().tolist() if "user_agent" in events else []
        nss = events["target_namespace"].dropna().astype(str).unique().tolist() if "target_namespace" in events else []
        nss = [n for n in nss if n]
        return self.match_values(identity, uas, nss)

    def match_values(self, identity: str, uas: list[str], nss: list[str]) -> Entry | None:
        """Match a window described by its identity, user agents and namespaces."""
        for entry in self.entries:
            if entry.matches(identity, uas, nss):
                return entry
        return None


def load_allowlist(path: Path, today: date) -> Allowlist:
    """Read and check an allowlist file; entries need a reason and an expiry date."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KaadError(f"cannot read allowlist {str(path)!r}: {exc}") from None
    active, expired = [], []
    for i, raw in enumerate(data.get("suppress", [])):
        where = f"{path}: entry {i + 1}"
        if not isinstance(raw, dict) or not raw.get("reason") or "expires" not in raw:
            raise KaadError(f"{where}: every entry needs a reason and an expires date")
        if not any(k in raw for k in ("identity", "user_agent", "namespace")):
            raise KaadError(f"{where}: give at least one of identity, user_agent, namespace")
        expires = raw["expires"]
        if not isinstance(expires, date):
            raise KaadError(f"{where}: expires must be a date like 2026-12-31, not {expires!r}")
        unknown = set(raw) - {"identity", "user_agent", "namespace", "reason", "expires"}
        if unknown:
            raise KaadError(f"{where}: unknown field(s) {sorted(unknown)!r}")
        entry = Entry(str(raw["reason"]), expires, raw.get("identity"), raw.get("user_agent"), raw.get("namespace"))
        (active if expires >= today else expired).append(entry)
    return Allowlist(active, expired)
