"""Open findings: a held, unaccepted identity-day that alerts again is the same finding, not a new one.

What an alerting identity-day introduced stays new until ``kaad accept`` (:mod:`models.day_state`),
so the next morning the same identity alerts on the same values again. As GuardDuty does with a
repeated finding, that updates the open finding (last seen, days) instead of raising another:

- an identity's **open finding** is its held identity-days, first seen on the oldest;
- an alerting identity-day is **new** when its identity has no open finding;
- it is **worse** when it shows something its held days did not: a value flagged new that none
  of them introduced, evidence in a term (an action family, a context, a rule, a network term)
  that none of them had, or a score above their highest by more than the threshold (the extra
  evidence alone would alert). Held days are scored again with today's model and state when
  they can be (``rescore``): the reference the evidence is judged against moves as the state
  learns, and the same behaviour judged anew is the same finding, not a worse one;
- otherwise it is a **repeat**.

New and worse identity-days page (``--fail-on``, SNS); a repeat is reported, not paged. Whatever
an attacker does beyond what is held is worse, so an open finding hides nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from models.explain import FOREST
from models.identity_day import UNATTRIBUTED

NEW, WORSE, REPEAT = "new", "worse", "repeat"
#: Terms that name no action (the forest's mix, rarity with no family): their growth shows in
#: the score, not as a new action.
UNNAMED = frozenset({FOREST, "rarity", UNATTRIBUTED})


@dataclass(frozen=True)
class OpenFinding:
    """An identity's held identity-days seen as one finding."""

    identity: str
    first_seen: date
    last_seen: date
    days: int  # alerting days held
    top_score: float  # the highest identity-day score held
    terms: frozenset[str]  # terms with evidence on any held day
    values: frozenset[tuple[int, int]]  # (column, key) of every value the held days introduced


@dataclass(frozen=True)
class Verdict:
    """How an alerting identity-day stands against its identity's open finding."""

    status: str  # NEW, WORSE or REPEAT
    first_seen: date
    days: int  # the finding's alerting days, this one included
    score: float  # the identity-day's, and its terms with evidence (kept with it when held)
    terms: frozenset[str]
    new_terms: tuple[str, ...] = ()  # terms with evidence that no held day had
    new_values: int = 0  # values flagged new that no held day introduced
    score_rise: float = 0.0  # nats above the finding's highest held score


def open_findings(held: dict) -> dict[str, OpenFinding]:
    """The open finding of each identity with held identity-days (``DayState.held``)."""
    by_identity: dict[str, list] = {}
    for (identity, day), h in held.items():
        by_identity.setdefault(identity, []).append((day, h))
    out = {}
    for identity, days in by_identity.items():
        values = pd.concat([h.novelty for _, h in days]) if days else pd.DataFrame()
        out[identity] = OpenFinding(
            identity,
            min(d for d, _ in days),
            max(d for d, _ in days),
            len(days),
            max(float(getattr(h, "score", 0.0)) for _, h in days),
            frozenset(t for _, h in days for t in getattr(h, "terms", ())),
            _value_pairs(values),
        )
    return out


def judge(
    finding: OpenFinding | None,
    day: date,
    score: float,
    terms: frozenset[str],
    values: pd.DataFrame,
    threshold: float,
    *,
    against: tuple[float, float] | None = None,
) -> Verdict:
    """Whether an alerting identity-day is new, worse than its open ``finding``, or a repeat.

    ``terms``: the day's terms with evidence; ``values``: the NoveltyLog rows of its windows.
    ``against``: (the day's own score, the held days' highest scored again today), to judge
    the rise on one yardstick; else the day's score against the held scores as they were.
    """
    if finding is None:
        return Verdict(NEW, day, 1, score, terms)
    new_terms = tuple(sorted(t for t in terms - finding.terms if t not in UNNAMED))
    new_values = len(_value_pairs(values) - finding.values)
    now, then = against if against is not None else (score, finding.top_score)
    rise = max(0.0, now - then)
    worse = bool(new_terms) or new_values > 0 or rise > threshold
    status = WORSE if worse else REPEAT
    return Verdict(status, finding.first_seen, finding.days + 1, score, terms, new_terms, new_values, rise)


def day_terms(contributions: pd.DataFrame, identity: str, day) -> frozenset[str]:
    """The terms with evidence in an identity-day (``IdentityDays.contributions``)."""
    key = (identity, pd.Timestamp(day))
    if key not in contributions.index:
        return frozenset()
    row = contributions.loc[[key]].iloc[0]
    return frozenset(str(t) for t in row.index[row.to_numpy() > 0])


def _value_pairs(novelty: pd.DataFrame) -> frozenset[tuple[int, int]]:
    if novelty.empty:
        return frozenset()
    return frozenset(zip(novelty["column"].astype(int), novelty["key"].astype(int), strict=True))


def judge_day(
    state,
    day: date,
    alerted: pd.DataFrame,
    contributions: pd.DataFrame,
    threshold: float,
    *,
    rescore: Callable[[pd.DataFrame], pd.Series | None] | None = None,
    outside: Sequence[str] = (),
) -> dict:
    """Judge each alerting identity-day of ``day`` against the open findings of ``state``.

    ``alerted``: the alerting, unsuppressed identity-days, index (identity, day), with
    ``anomaly_score``. Held days of ``day`` itself or later (a forced rerun) are not the past.
    ``rescore``: window features -> identity-day scores from the windows' own evidence, as
    today's model and state give them; the rise is then judged between the day's own evidence
    (its score less the ``outside`` terms: rules, network) and the held days' scored again.
    When ``rescore`` returns None for a held day (one kept without the model's features, by
    a state saved before), the held scores as they were are the yardstick.
    Returns identity -> :class:`Verdict`.
    """
    past = {key: h for key, h in state.held.items() if key[1] < day}
    findings = open_findings(past)
    logged = state.day_novelty()
    verdicts = {}
    for identity, when, score in _rows(alerted):
        mine = logged[(logged["identity"] == identity).to_numpy()]
        terms = day_terms(contributions, identity, when)
        against = None
        if rescore is not None and identity in findings:
            held = [h for (who, _), h in past.items() if who == identity]
            again = _held_again(held, rescore)
            if again is not None:
                key = (identity, pd.Timestamp(when))
                found_outside = [t for t in outside if t in contributions.columns]
                has = found_outside and key in contributions.index
                extra = contributions[found_outside].loc[[key]].to_numpy().sum() if has else 0.0
                against = (score - float(extra), again)
        verdicts[identity] = judge(findings.get(identity), day, score, terms, mine, threshold, against=against)
    return verdicts


def _held_again(held: list, rescore: Callable[[pd.DataFrame], pd.Series | None]) -> float | None:
    """The highest of the held days' scores judged today, or None when one cannot be."""
    scores = []
    for h in held:
        again = rescore(h.windows)
        if again is None:
            return None
        scores.append(float(again.max()) if len(again) else 0.0)
    return max(scores, default=None)


def first_sight(alerted: pd.DataFrame, contributions: pd.DataFrame) -> dict:
    """Verdicts without a day state: every alerting identity-day is new."""
    return {
        identity: Verdict(NEW, when.date(), 1, score, day_terms(contributions, identity, when))
        for identity, when, score in _rows(alerted)
    }


def _rows(alerted: pd.DataFrame) -> list[tuple[str, pd.Timestamp, float]]:
    """(identity, day, anomaly_score) of each identity-day."""
    return [
        (str(i), pd.Timestamp(d), float(s))
        for i, d, s in zip(
            alerted.index.get_level_values("identity"),
            alerted.index.get_level_values("day"),
            alerted["anomaly_score"],
            strict=True,
        )
    ]


def note(v: Verdict, labels: dict | None = None) -> str:
    """The verdict in words for the report: since when the finding is open, and what is new."""
    if v.status == NEW:
        return ""
    said = f"open since {v.first_seen}, alerting day {v.days}"
    if v.status == REPEAT:
        return f"{said}: a repeat, nothing beyond what its held days showed (not paged)"
    names = [(labels or {}).get(t.removeprefix("rarity_"), t) for t in v.new_terms]
    new = [f"new: {', '.join(names)}"] if names else []
    new += [f"{v.new_values} value(s) no held day introduced"] if v.new_values else []
    new += [f"score {v.score_rise:.1f} nats above its highest held day"] if not new else []
    return f"{said}: worse, {'; '.join(new)}"
