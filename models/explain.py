"""Why a window scored high, in words, from the model's own inputs.

The isolation forest reads the baseline's deviations; the explanation ranks those same
deviations by size and says each one in plain words next to the identity's usual value (the
baseline's centre), with GuardDuty-style rarity labels. Nothing here is a separate rule set:
a reason exists only if the model's input moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import BY_NAME

UNSEEN, RARE, USUAL = "UNSEEN", "RARE", "USUAL"
#: A deviation this many scale units from the identity's usual is RARE (the summary feature
#: n_unusual counts the same).
RARE_AT = 3.0
MAX_REASONS = 6
FAMILY_ORDER = ("sensitive", "novelty", "reach", "outcomes", "resources", "verbs", "volume", "time")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Reason:
    """One feature that moved, said plainly."""

    feature: str
    family: str
    rarity: str
    value: float
    usual: float
    deviation: float
    text: str
    #: The score's share this reason stands for (nats of evidence).
    weight: float = 0.0
    #: The scored term it says (:func:`term_reasons`); reasons are ordered by their term's nats.
    term: str = ""

    def line(self) -> str:
        return f"[{self.rarity}] {self.text}"


def _values(events: pd.DataFrame, flag: str, column: str, limit: int = 3) -> list[str]:
    if flag not in events.columns or column not in events.columns:
        return []
    picked = events.loc[events[flag].to_numpy(dtype=bool), column].dropna().astype(str)
    return list(dict.fromkeys(picked))[:limit]


def _chains(events: pd.DataFrame, limit: int = 2) -> list[list]:
    if "forwarded_unverified" not in events.columns or "source_ips" not in events.columns:
        return []
    picked = events.loc[events["forwarded_unverified"].fillna(False).to_numpy(dtype=bool), "source_ips"]
    return [list(c) for c in picked.dropna().head(limit)]


def _usual(profile: dict, key: str) -> str:
    top = profile.get(key) or []
    return ", ".join(str(v) for v, _ in top[:2]) if top else "none on record"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def reason_text(feature: str, value: float, usual: float, events: pd.DataFrame, profile: dict, identity: str) -> str:
    """The plain-words sentence for one feature of one window."""
    n = len(events)
    lst = lambda flag, col: ", ".join(_values(events, flag, col)) or "?"  # noqa: E731
    if feature == "new_source_ip":
        return (
            f"new source IP {lst('is_new_source_ip', 'source_ip')}, never seen for this identity "
            f"(usual: {_usual(profile, 'source_ip')})"
        )
    if feature == "new_ip_range":
        return f"source network {lst('is_new_ip_range', 'ip_range')}.x.x never seen in this cluster before"
    if feature == "new_user_agent":
        return f"user agent {lst('is_new_user_agent', 'user_agent')} is new (usual: {_usual(profile, 'user_agent')})"
    if feature == "new_ua_family":
        return f"client family {lst('is_new_ua_family', 'ua_family')} is new (usual: {_usual(profile, 'ua_family')})"
    if feature == "new_principal":
        return f"IAM session {lst('is_new_principal', 'principal')} is new for username {identity}"
    if feature == "new_verb_resource":
        return f"does for the first time: {lst('is_new_verb_resource', 'verb_resource')}"
    if feature == "new_namespace":
        return (
            f"first access to namespace(s) {lst('is_new_namespace', 'target_namespace')} "
            f"(usual: {_usual(profile, 'namespace')})"
        )
    if feature == "new_image":
        return f"deploys image {lst('is_new_image', 'image')} for the first time"
    if feature == "new_identity":
        return "this identity has never been seen before"
    if feature == "hour_of_day":
        return f"active at {int(value):02d}:00 UTC, an hour it is rarely active in"
    if feature == "weekday":
        return f"active on a {WEEKDAYS[int(value) % 7]}, unusual for it"
    if feature == "log_requests":
        return f"{np.expm1(value):.0f} requests in the window; usual {np.expm1(usual):.0f}"
    if feature == "frac_denied":
        return f"{_pct(value)} of {n} requests denied; usual {_pct(usual)}"
    if feature.startswith("frac_"):
        what = BY_NAME[feature].definition.removeprefix("share of requests ")
        return f"{_pct(value)} of {n} requests {what}; usual {_pct(usual)}"
    if feature == "n_secret_namespaces":
        return f"read or listed secrets in {value:g} namespaces; usual {usual:g}"
    if feature == "n_foreign_namespaces":
        return f"touched {value:g} namespaces outside its own; usual {usual:g}"
    if feature == "n_audit_id_reused":
        return f"{value:g} request(s) reuse another request's audit ID (usual {usual:g})"
    if feature == "n_forwarded_unverified":
        chains = ", ".join(" > ".join(map(str, c)) for c in _chains(events))
        return f"{value:g} request(s) with an X-Forwarded-For chain no trusted proxy vouches for" + (
            f" ({chains}; the address used is the last)" if chains else ""
        )
    if feature == "n_attempted" and "flags_attempted" in events.columns:
        tried = sorted({f for flags in events["flags_attempted"].dropna() for f in flags})
        return (
            f"{value:g} refused or failed attempt(s) at flagged actions "
            f"({', '.join(tried[:4]) or '?'}); usual {usual:g}"
        )
    if feature == "n_exec" and "exec_command" in events.columns:
        cmds = ", ".join(events["exec_command"].dropna().astype(str).unique()[:2])
        return f"exec or attach into pods: {value:g}; usual {usual:g}" + (f" (command: {cmds})" if cmds else "")
    return f"{BY_NAME[feature].definition}: {value:g}; usual {usual:g}"


def explain(
    window: pd.Series,
    deviations: pd.Series,
    usual: pd.Series,
    events: pd.DataFrame,
    profile: dict,
    identity: str,
    max_reasons: int = MAX_REASONS,
) -> list[Reason]:
    """Reasons for one window: its features ordered by how far they moved for this identity.

    ``deviations`` and ``usual`` are indexed by feature name (the baseline's output and
    centre); hour and weekday deviations are rarities in [0, 1].
    """
    reasons = []
    # Ties (deviations are clipped, so the most extreme ones tie) go to the most specific
    # family: a sensitive action says more than the share of a verb.
    order = sorted(deviations.index, key=lambda f: (-abs(float(deviations[f])), FAMILY_ORDER.index(BY_NAME[f].family)))
    for feature in order:
        dev = float(deviations[feature])
        value = float(window[feature])
        spec = BY_NAME[feature]
        if spec.family == "time":
            if dev < 0.9:  # rarity: 1 = never active then
                continue
            rarity = RARE
        elif spec.family == "novelty":
            if value <= 0:
                continue
            rarity = UNSEEN
        else:
            if abs(dev) < 1.0:
                continue
            rarity = RARE if abs(dev) >= RARE_AT else USUAL
        text = reason_text(feature, value, float(usual[feature]), events, profile, identity)
        reasons.append(Reason(feature, spec.family, rarity, value, float(usual[feature]), dev, text))
        if len(reasons) >= max_reasons:
            break
    return reasons


FOREST = "forest"


def term_reasons(
    terms: list[tuple[str, float]],
    rarity,
    identity: str,
    forest: list[Reason],
    *,
    per_forest: int = 3,
    texts: dict[str, str] | None = None,
) -> list[Reason]:
    """Reasons for scored terms ``(name, nats)``, largest first, in words with the usual value.

    ``forest`` is the isolation forest's part, said by its inputs that moved the most
    (:func:`explain`), which share its weight; a rarity term ``rarity_<family>`` is said with how often this identity,
    its peers and the cluster did it before (:meth:`models.rarity.ActionRarity.usual`); a term
    of evidence from outside the windows (``<source>:<id>``, :mod:`models.evidence`) is said by
    its source's own words in ``texts``.
    """
    out: list[Reason] = []
    # Ordered by term, largest first, as the score was made: the forest's share said by three
    # inputs is still the forest's whole share (50 nodes seed 1: a kubelet's forest term of
    # 1.85 nats, said as two halves, came after its 1.43 nats of secrets read).
    for term, nats in sorted(terms, key=lambda t: -t[1]):
        if nats <= 0:
            continue
        if term == FOREST:
            # The forest gives one number; its inputs that moved most share it equally.
            said = forest[:per_forest]
            moved = [
                Reason(r.feature, r.family, r.rarity, r.value, r.usual, r.deviation, r.text, nats / len(said), term)
                for r in said
            ]
            out += moved or [
                Reason(FOREST, "behaviour", RARE, nats, 0.0, nats, "an unusual mix of its usual actions", nats, term)
            ]
        elif texts and term in texts:
            source = term.split(":", 1)[0]
            out.append(Reason(term, source, RARE, nats, 0.0, nats, texts[term], nats, term))
        elif term.startswith("rarity_") and term.removeprefix("rarity_") in getattr(rarity, "term_labels_", {}):
            family = term.removeprefix("rarity_")
            own = rarity.hits_.get(family, pd.Series(dtype=float)).get(identity, 0.0)
            label = UNSEEN if own == 0 else RARE
            out.append(Reason(term, "rarity", label, nats, 0.0, nats, rarity.usual(identity, family), nats, term))
        else:
            out.append(Reason(term, "rarity", RARE, nats, 0.0, nats, "unusual actions for this identity", nats, term))
    return out


SUSPICIOUS_FLAGS = (
    "n_privileged",
    "n_hostpath",
    "n_hostpid",
    "n_admin_bindings",
    "n_risky_roles",
    "n_token_requests_other",
    "n_csr_approvals",
    "n_impersonations",
    "n_exec",
    "n_webhook_writes",
    "n_webhook_external",
    "n_aws_auth_edits",
    "n_events_deleted",
    "n_cluster_wide_secret_lists",
    "n_audit_id_reused",
    "n_forwarded_unverified",
    "n_runs_as_root",
    "n_system_namespace_workloads",
    "n_role_grants",
    "n_system_role_changes",
    "n_configmap_credentials",
    "n_exec_credentials",
    "n_public_source",
    "n_attempted",
    "is_denied",
    "is_new_verb_resource",
    "is_new_source_ip",
    "is_new_user_agent",
    "is_new_namespace",
    "is_secret_read",
)
CALL_COLUMNS = (
    "timestamp",
    "verb",
    "target_resource",
    "target_subresource",
    "target_namespace",
    "target_name",
    "response_code",
    "source_ip",
    "user_agent",
    "exec_command",
    "impersonated_user",
    "audit_id",
)


def top_calls(events: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """The window's API calls, most suspicious first (sensitive, denied and novel ones)."""
    if events.empty:
        return pd.DataFrame(columns=list(CALL_COLUMNS))
    flags = [f for f in SUSPICIOUS_FLAGS if f in events.columns]
    weight = events[flags].astype(float).sum(axis=1) if flags else pd.Series(0.0, index=events.index)
    order = pd.DataFrame({"w": -weight, "t": events["timestamp"]}).sort_values(["w", "t"], kind="stable").index
    cols = [c for c in CALL_COLUMNS if c in events.columns]
    return events.loc[order[:limit], cols].reset_index(drop=True)
