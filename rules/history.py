"""How often each rule fires on normal days, per identity and peer group: a rule hit's weight.

A rule that fires on the dashboard's service account every day says nothing new when it fires
again; the same rule firing for an identity whose peers never trigger it is news. Learned in
training from the training days' events and kept in the model bundle, with the rules each
identity-day of training fired: judged as a new day would be, they are the normal days an
identity-day's rule evidence is ranked among (:meth:`RuleHistory.reference`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from features.peers import peer_groups
from models.identity_day import FLOOR

if TYPE_CHECKING:
    from rules.loading import Rule

#: The level's rate of firing on a normal identity-day, before any history: what a rule
#: author's level says (critical: about never; informational: often).
LEVEL_RATE = {"informational": 0.5, "low": 0.1, "medium": 0.02, "high": 0.005, "critical": 0.001}
#: Identity-days of weight the level's rate has against a peer group's history, and the peer
#: group's rate against an identity's own: a few days of history already outweigh the prior.
LEVEL_WEIGHT = 10.0
PEER_WEIGHT = 3.0


@dataclass
class Weight:
    """One rule's weight for one identity: its p-value on a normal day and the evidence."""

    p_value: float
    evidence: float  # nats: log(FLOOR / p), 0 when the rule fires on a normal day 1 in 20 or more
    own: tuple[int, int]  # (days fired, days active) for the identity
    peers: tuple[int, int]  # the same for its peer group
    group: str
    learned: bool  # the rule ran in training

    def describe(self) -> str:
        if not self.learned:
            return "not run in training: weighed by its level alone"
        return (
            f"fired on {self.own[0]} of {self.own[1]} training days for this identity, "
            f"{self.peers[0]} of {self.peers[1]} identity-days of its peer group ({self.group})"
        )


@dataclass
class RuleHistory:
    """Per rule, the training days on which it fired for each identity; and who wrote pods/secrets."""

    n_days: int
    active: dict[str, int]  # identity -> training days with any request
    fired: dict[str, dict[str, int]]  # rule name -> identity -> training days it fired
    writers: dict[str, dict[str, int]] = field(default_factory=dict)  # resource -> identity -> days written
    #: identity -> the rules it fired on each training day it fired any; None in older bundles.
    fired_days: dict[str, list[list[str]]] | None = None
    _groups: dict[str, tuple[int, dict[str, int]]] | None = field(default=None, init=False, repr=False)

    @property
    def rules(self) -> list[str]:
        return sorted(self.fired)

    def _group_counts(self, group: str) -> tuple[int, dict[str, int]]:
        """(identity-days active, rule -> identity-days fired) of a peer group."""
        if self._groups is None:
            identities = list(self.active)
            group_of = dict(zip(identities, peer_groups(identities), strict=True))
            active: dict[str, int] = defaultdict(int)
            fired: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for identity, days in self.active.items():
                active[group_of[identity]] += days
            for rule, per_identity in self.fired.items():
                for identity, days in per_identity.items():
                    if identity in group_of:
                        fired[group_of[identity]][rule] += days
            self._groups = {g: (n, dict(fired[g])) for g, n in active.items()}
        return self._groups.get(group, (0, {}))

    def as_dict(self) -> dict:
        """Plain values, as the model bundle keeps them (no pySigma needed to load a bundle)."""
        plain = {"n_days": self.n_days, "active": self.active, "fired": self.fired, "writers": self.writers}
        return plain if self.fired_days is None else plain | {"fired_days": self.fired_days}

    @classmethod
    def from_dict(cls, data: dict) -> RuleHistory:
        days = data.get("fired_days")
        return cls(
            int(data["n_days"]),
            dict(data["active"]),
            dict(data["fired"]),
            dict(data.get("writers", {})),
            None if days is None else {str(k): [list(map(str, d)) for d in v] for k, v in days.items()},
        )

    def weight(self, rule: Rule, identity: str, *, left_out: bool = False) -> Weight:
        """The rule's p-value of firing for ``identity`` on a normal day, shrunk from the identity
        to its peers and from the peers to the rule's level. ``left_out``: for one of the training
        days on which it fired for ``identity``, judged on the other days only."""
        group = str(peer_groups([identity])[0])
        prior = LEVEL_RATE.get(rule.level, LEVEL_RATE["medium"])
        if rule.name not in self.fired:
            return Weight(prior, _evidence(prior), (0, 0), (0, 0), group, learned=False)
        n_group, per_rule = self._group_counts(group)
        k_group = per_rule.get(rule.name, 0)
        k_own, n_own = self.fired[rule.name].get(identity, 0), self.active.get(identity, 0)
        if left_out:  # that day counted once in each
            k_group, n_group, k_own, n_own = k_group - 1, n_group - 1, k_own - 1, n_own - 1
        rate_group = (k_group + LEVEL_WEIGHT * prior) / (n_group + LEVEL_WEIGHT)
        p = (k_own + PEER_WEIGHT * rate_group) / (n_own + PEER_WEIGHT)
        return Weight(p, _evidence(p), (k_own, n_own), (k_group, n_group), group, learned=True)

    def reference(self, rule: Callable[[str], Rule | None]) -> list[float] | None:
        """The rule evidence of every training identity-day, each judged as a new day is, against
        the other days (0 for the days with no hit); None when the bundle did not keep them.

        The evidence of the rules an identity-day fired adds up rule by rule, as if they were
        independent; they are not (an operator install is a service account, a role binding and a
        webhook in one go, and three rules fire), and the model has weighed the same requests.
        Ranked among these normal identity-days, as a window's statistic is among held-out
        windows, that sum says how rare the day really is. ``rule`` looks a rule up by name.
        """
        if self.fired_days is None:
            return None
        out: list[float] = []
        for identity, days in self.fired_days.items():
            for names in days:
                found = [r for r in map(rule, names) if r is not None and r.name in self.fired]
                out.append(sum(self.weight(r, identity, left_out=True).evidence for r in found))
        return out + [0.0] * max(0, sum(self.active.values()) - len(out))


def _evidence(p: float) -> float:
    # The truncation of window evidence (models/identity_day.py): a hit as common as one
    # normal day in twenty adds nothing.
    return max(0.0, math.log(FLOOR / max(p, 1e-300)))
