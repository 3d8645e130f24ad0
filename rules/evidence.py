"""Rule hits as evidence in the identity-day ranking (the hook of models/evidence.py).

Each rule that fired for an identity on the day adds one term, ``rule:<name>``: the evidence
of its firing for that identity (rules/history.py), added up over the rules it fired and
ranked among the training identity-days' (:func:`models.evidence.calibrated_nats`), shared
among its rules in proportion; the hits themselves stay available (``last``) for the reports.
An allowlist entry that names ``rule:<name>`` in its ``covers`` mutes that rule for its
identities: the term is kept at 0 and its reason says which entry muted it, so nothing
disappears silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.evidence import DayEvidence, calibrated_nats, utc_day
from rules.history import RuleHistory, Weight
from rules.loading import RuleSet
from rules.run import RuleRun, empty_hits, run_rules

if TYPE_CHECKING:  # the allowlist is read by pipelines/; rules only ask its entries
    from pipelines.allowlist import Allowlist, Entry

SOURCE = "rule"


@dataclass
class RuleFinding:
    """One rule that fired for one identity on the day: its hits, weight, and any muting entry."""

    rule: str
    title: str
    level: str
    attack: tuple[str, ...]
    identity: str
    day: pd.Timestamp
    hits: pd.DataFrame
    weight: Weight
    muted_by: Entry | None = None
    #: Its share of the identity-day's rule evidence ranked among normal identity-days, and that
    #: evidence (None: the history kept no normal days, and the weight's own nats count).
    share: float | None = None
    day_nats: float | None = None

    @property
    def evidence(self) -> float:
        if self.muted_by is not None:
            return 0.0
        return self.weight.evidence if self.share is None else self.share

    def reason(self) -> str:
        """Plain words (attacker text raw: every renderer escapes)."""
        first = self.hits.iloc[0]
        target = "/".join(str(v) for v in (first["target_resource"], first["target_subresource"]) if pd.notna(v))
        where = f" in {first['target_namespace']}" if pd.notna(first["target_namespace"]) else ""
        attack = f", {', '.join(self.attack)}" if self.attack else ""
        text = (
            f'rule "{self.title}" ({self.level}{attack}): {len(self.hits)} event(s), first {first["verb"]} '
            f"{target or first['request_uri']}{where}; {self.weight.describe()}"
        )
        if self.day_nats is not None:
            text += f"; the identity-day's rules, ranked among normal identity-days: {self.day_nats:.2f} nats"
        if self.muted_by is not None:
            text += (
                f"; muted by allowlist {self.muted_by.label} ({self.muted_by.reason}, until {self.muted_by.expires})"
            )
        return text


def _muting(allowlist: Allowlist | None, term: str, identity: str, hits: pd.DataFrame) -> Entry | None:
    if allowlist is None:
        return None
    agents = sorted({str(u) for u in hits["user_agent"].dropna()})
    namespaces = sorted({str(n) for n in hits["target_namespace"].dropna() if str(n)})
    for entry in allowlist.entries:
        if term in entry.covers and entry.matches(identity, agents, namespaces):
            return entry
    return None


@dataclass
class RuleEvidence:
    """An evidence source: run the rules on the day's events and weigh each hit (callable).

    Examples
    --------
    >>> from rules import load_rules
    >>> source = RuleEvidence(load_rules([]), None)
    >>> source(None, date(2026, 3, 2)).contributions.empty
    True
    """

    rules: RuleSet
    history: RuleHistory | None
    allowlist: Allowlist | None = None
    last: RuleRun = field(default_factory=lambda: RuleRun(empty_hits()))
    findings: list[RuleFinding] = field(default_factory=list)
    _reference: list[float] | None = field(default=None, init=False, repr=False)

    def reference(self) -> list[float] | None:
        """The training identity-days' rule evidence (:meth:`RuleHistory.reference`), once."""
        if self._reference is None and self.history is not None:
            self._reference = self.history.reference(self.rules.get)
        return self._reference

    def __call__(self, events: Path | None, day: date) -> DayEvidence:
        run = run_rules(self.rules, events, day)
        self.last = run
        history = self.history or RuleHistory(0, {}, {})
        midnight = utc_day(day)
        findings = []
        hits = run.hits.dropna(subset=["identity"])
        for (name, identity), own in hits.groupby(["rule", "identity"], sort=True):
            rule = self.rules.get(str(name))
            assert rule is not None  # run_rules only runs rules of the set
            own = own.reset_index(drop=True)
            findings.append(
                RuleFinding(
                    rule.name,
                    rule.title,
                    rule.level,
                    rule.attack,
                    str(identity),
                    midnight,
                    own,
                    history.weight(rule, str(identity)),
                    _muting(self.allowlist, rule.term, str(identity), own),
                )
            )
        _calibrate(findings, self.reference())
        self.findings = sorted(findings, key=lambda f: (-f.evidence, f.identity, f.rule))
        rows: dict[tuple[str, pd.Timestamp], dict[str, float]] = {(f.identity, f.day): {} for f in self.findings}
        reasons = {}
        for f in self.findings:
            term = f"{SOURCE}:{f.rule}"
            rows[(f.identity, f.day)][term] = f.evidence
            reasons[(f.identity, f.day, term)] = f.reason()
        keys = list(rows)
        index = pd.MultiIndex.from_arrays(
            [[k[0] for k in keys], pd.DatetimeIndex([k[1] for k in keys], tz="UTC")], names=["identity", "day"]
        )
        contributions = pd.DataFrame(list(rows.values()), index=index, dtype=float).fillna(0.0)
        details = {"findings": self.findings, "failed": dict(run.failed), "rules": self.rules}
        return DayEvidence(SOURCE, contributions, reasons, details)


def _calibrate(findings: list[RuleFinding], reference: list[float] | None) -> None:
    """Rank each identity's rule evidence among normal identity-days' and share it among its rules."""
    if reference is None:
        return
    totals: dict[str, float] = {}
    for f in findings:
        totals[f.identity] = totals.get(f.identity, 0.0) + f.evidence
    who = sorted(totals)
    nats = dict(zip(who, calibrated_nats([totals[w] for w in who], reference), strict=True))
    for f in findings:
        raw, total = f.evidence, totals[f.identity]
        f.share, f.day_nats = (raw / total * nats[f.identity] if total > 0 else 0.0), float(nats[f.identity])


def rule_evidence(directories, bundle, allowlist: Allowlist | None = None) -> RuleEvidence:
    """kaad's own rules and those under ``directories``, weighed by the bundle's rule history."""
    from rules.learn import resolve_rule_dirs
    from rules.loading import load_rules

    history = None if bundle.rule_history is None else RuleHistory.from_dict(bundle.rule_history)
    return RuleEvidence(load_rules(resolve_rule_dirs(directories)), history, allowlist)
