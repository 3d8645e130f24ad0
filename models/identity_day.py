"""Identity-days: an identity's windows of one day, judged together.

Hourly judgement misses the low-and-slow: nine windows that are each only somewhat unusual
rank below one busy benign hour. Two pieces of evidence, from disjoint windows, add up:

- each window below a floor adds how far below it is (Zaykin's truncated product of
  p-values, on a log scale), so that a few very unusual windows count however few;
- in the windows at or above the floor, which add nothing on their own, each action family
  is counted: if it recurs more often than the identity's own rate for it makes likely (a
  binomial tail, corrected for the families tested), that is evidence too. One denied call an
  hour through a working day, by someone denied one hour in twenty, is a pattern no single
  hour shows (each such hour has p = 0.125 among people's).

Ordinary windows, however many, add nothing: their actions recur at the identity's own rates.
Counting the windows' p-values instead was tried and rejected: an identity's hours are alike,
so a person whose every hour sits in the lower half among people's looked like a pattern every
day (the quick evaluation's seed 2: attackers ranked first fell from 24 to 13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.action_families import RATE_OF

DAY_INDEX = ["identity", "day"]
#: Window p-values below this add log(floor / p) each; at or above it, a window adds only
#: through the action families that recur in such windows (:func:`_repetition`). One normal window in twenty is
#: below it, by construction of a calibrated p-value.
FLOOR = 0.05
UNATTRIBUTED = "unattributed"
#: A family the identity takes in at least this share of its windows is a habit: that it recurs
#: in more of a day's hours than usual says the identity was busier, not that it did something
#: it rarely does. Counted, a habit's busy day was evidence: at 50 nodes a kubelet reads secrets
#: in 74% of its hours, its held-out days ranged 11-23 hours of 24 (1 day of 263 at 23), and
#: with 50 kubelets such a day came about once a week, alerting as "secrets read" with no
#: other reason (50 nodes seed 1: 2 of its 9 attack-free alerts). Not for the families counted
#: on a new refusal target (:data:`models.action_families.RATE_OF`): their rate is how often the
#: identity is denied at all, and a habit of retried denials is no habit of new targets.
HABIT_RATE = 0.5


@dataclass(frozen=True)
class IdentityDays:
    """Findings per identity and day, with their windows and the terms behind each score."""

    days: pd.DataFrame  # (identity, day): anomaly_score, n_windows, n_unusual, max_evidence
    windows: pd.DataFrame  # (identity, window_start): day, p_value, evidence, contribution
    contributions: pd.DataFrame  # (identity, day) x term: each term's share of anomaly_score

    def reasons(self, identity: str, day, *, top: int = 5) -> list[tuple[str, float]]:
        """The terms that contributed to this identity-day's score, largest first."""
        row = self.contributions.loc[[(identity, pd.Timestamp(day))]].iloc[0]
        row = row[row > 0].sort_values(ascending=False, kind="stable")
        return [(str(term), float(value)) for term, value in row.head(top).items()]

    def windows_of(self, identity: str, day) -> pd.DataFrame:
        """The identity-day's windows, the largest contribution first."""
        rows = self.windows[
            (self.windows.index.get_level_values("identity") == identity) & (self.windows["day"] == pd.Timestamp(day))
        ]
        return rows.sort_values("contribution", ascending=False, kind="stable")


def identity_days(
    window_p: pd.Series,
    terms: pd.DataFrame | None = None,
    *,
    floor: float = FLOOR,
    extra: pd.DataFrame | None = None,
    surprisal: pd.DataFrame | None = None,
    log: bool = False,
) -> IdentityDays:
    """Aggregate calibrated window p-values to identity-days.

    Parameters
    ----------
    window_p : p-value of each window, indexed by (identity, window_start).
    terms : non-negative evidence terms per window (same index), e.g. each rarity term and the
        forest's evidence; a window's contribution is shared among them in proportion, so the
        reasons of a day add up to its score. Without terms, the window itself is the term.
    floor : window p-values below it contribute ``log(floor / p)`` each; at or above it, only
        through the families that recur in them (``surprisal``).
    extra : evidence from outside the windows (:mod:`models.evidence`), indexed by (identity,
        day), one column per term in nats; it adds to the day's score as terms of their own. An
        identity-day only this names is added with no windows.
    surprisal : per window, each action family's surprisal in nats (``-log`` of the identity's
        rate, 0 where it did not occur; :class:`models.rarity.ActionRarity`'s family columns),
        named as the family's term. A family that recurs in the windows at or above the floor
        more often than the identity's rate makes likely adds to its term (:func:`_repetition`).
    log : ``window_p`` holds natural logs of the p-values
        (:meth:`models.calibration.TailCalibrator.combined_log_p_values`). Far beyond every
        held-out window a p-value is below the smallest float and would cap the evidence at
        690 nats (1e-300) or make it infinite; its log keeps such windows apart.

    Examples
    --------
    >>> idx = pd.MultiIndex.from_product([["dev"], pd.date_range("2026-01-05 09:00", periods=3, freq="h", tz="UTC")],
    ...                                  names=["identity", "window_start"])
    >>> found = identity_days(pd.Series([0.005, 0.5, 0.005], index=idx))
    >>> found.days[["anomaly_score", "n_windows", "n_unusual"]].round(2).to_dict("records")
    [{'anomaly_score': 4.61, 'n_windows': 3, 'n_unusual': 2}]
    """
    if not 0 < floor <= 1:
        raise ValueError(f"floor must be in (0, 1], got {floor!r}")
    given = window_p.to_numpy(dtype=np.float64)
    log_p = np.minimum(given, 0.0) if log else np.log(np.clip(given, 1e-300, 1.0))
    p = np.exp(log_p)  # for the record; the evidence is the log
    starts = pd.DatetimeIndex(window_p.index.get_level_values("window_start"))
    day = starts.tz_convert("UTC").normalize() if starts.tz is not None else starts.normalize()
    evidence = -log_p
    keys = [window_p.index.get_level_values("identity"), day]
    group = pd.MultiIndex.from_arrays(keys).factorize()[0] if len(p) else np.zeros(0, dtype=np.int64)
    base = np.maximum(0.0, evidence - (-math.log(floor)))
    if surprisal is not None:
        surprisal = surprisal.reindex(window_p.index).fillna(0.0)
    repeated = _repetition(log_p >= math.log(floor), group, floor, surprisal)
    contribution = base if repeated is None else base + repeated.sum(axis=1).to_numpy()
    windows = pd.DataFrame(
        {"day": day, "p_value": p, "evidence": evidence, "contribution": contribution}, index=window_p.index
    )
    grouped = windows.groupby(keys, sort=True)
    days = pd.DataFrame(
        {
            "anomaly_score": grouped["contribution"].sum(),
            "n_windows": grouped.size(),
            "n_unusual": grouped["contribution"].agg(lambda c: int((c > 0).sum())),
            "max_evidence": grouped["evidence"].max(),
        }
    )
    days.index = days.index.set_names(DAY_INDEX)
    per_term = _shares(windows, terms).mul(base, axis=0)
    if repeated is not None:
        per_term = per_term.add(repeated, fill_value=0.0)
    contributions = per_term.groupby(keys, sort=True).sum()
    contributions.index = contributions.index.set_names(DAY_INDEX)
    windows = windows.join(per_term.add_prefix("from_"))
    if extra is not None and not extra.empty:
        days, contributions = _add_extra(days, contributions, extra)
    return IdentityDays(days.sort_values("anomaly_score", ascending=False, kind="stable"), windows, contributions)


def family_surprisal(rarity, windows: pd.DataFrame) -> pd.DataFrame:
    """Each window's action families, as ``-log`` of the rate to count them against, named as
    scoring names the terms (``rarity_<family>``): :func:`identity_days`'s ``surprisal``.

    The rate is the larger of the rarity's estimate (:class:`models.rarity.ActionRarity`) and
    the identity's own share of windows with the family: the estimate is shrunk towards the
    peers, which makes a habit of few days look less habitual than it is (an identity listing
    pods cluster-wide every hour of two fit days is estimated at 0.67), and a count against it
    would call the habit a pattern. The larger rate errs on the side of ordinary.
    A young identity (:meth:`models.rarity.ActionRarity.young`) has only its kind's rate, and
    its habits are still forming: its repeats are not counted. Nor are its habits' (a rate of
    :data:`HABIT_RATE` or more): what it does most hours, it may do in every hour of a day.
    """
    names = [f"rarity_{t}" for t in rarity.terms_[: rarity.n_families_]]
    if not len(windows):
        return pd.DataFrame(np.zeros((0, len(names))), index=windows.index, columns=names)
    values = rarity.transform(windows)[:, : rarity.n_families_]
    families = list(rarity.terms_[: rarity.n_families_])
    identities = windows.index.get_level_values("identity")
    hits = rarity.hits_[families].reindex(identities, fill_value=0.0).to_numpy()
    trials = rarity.trials_[families].reindex(identities, fill_value=0.0).to_numpy()
    own = np.divide(hits, trials, out=np.zeros_like(hits), where=trials > 0)
    rate = np.maximum(np.exp(-values), own)
    # A new service account reading its own namespace's secrets every hour was counted as 23
    # improbable repeats against the service-account kind's rate (quick eval, seed 2: 20 nats
    # a day, held and re-alerting daily above the attackers).
    habit = (rate >= HABIT_RATE) & ~np.isin(families, list(RATE_OF))[None, :]
    counted = (values > 0) & ~habit & ~rarity.young(windows)[:, None]
    return pd.DataFrame(np.where(counted, -np.log(rate), 0.0), index=windows.index, columns=names)


def _repetition(
    above: np.ndarray, group: np.ndarray, floor: float, surprisal: pd.DataFrame | None
) -> pd.DataFrame | None:
    """Each window's share of the evidence its identity-day's recurring actions give, per family.

    Only windows at or above ``floor`` (``above``) are counted (those below it have added their own
    evidence). An action family the identity does at rate ``r`` per window (``surprisal`` is
    ``-log r`` where it occurred) recurs in ``k`` of its ``m`` such windows with chance
    ``P(Bin(m, r) >= k)``: for its habits that is ordinary, for a family it rarely does,
    nine times in a day is not. Each family tested (those occurring at least twice: once is
    the window's own business, judged there) multiplies the tail (Bonferroni). The result is
    a p-value and is judged as a window's: below the floor it adds ``log(floor / p)`` to the
    family's term, shared equally by the ``k`` windows; otherwise nothing.
    """
    if surprisal is None or surprisal.shape[1] == 0 or len(above) == 0:
        return None
    values = surprisal.to_numpy(dtype=np.float64)
    occurred = (values > 0) & above[:, None]
    frame = pd.DataFrame(occurred.astype(float), columns=surprisal.columns)
    k = frame.groupby(group).transform("sum").to_numpy()
    m = pd.Series(above.astype(float)).groupby(group).transform("sum").to_numpy()
    # The identity's rate, from the most usual of its occurrences (the same rate in each of them
    # unless the state moved between windows): the tail errs on the side of ordinary.
    rate = pd.DataFrame(np.where(occurred, np.exp(-values), 0.0)).groupby(group).transform("max").to_numpy()
    tested = k >= 2
    n_tested = pd.DataFrame((tested & occurred).astype(float)).groupby(group).transform("max").sum(axis=1)
    rows, cols = np.nonzero(occurred & tested)
    out = np.zeros_like(values)
    if len(rows):
        log_tail = _log_binomial_tail(k[rows, cols], m[rows], np.clip(rate[rows, cols], 1e-300, 1.0))
        log_p = log_tail + np.log(n_tested.to_numpy()[rows])
        out[rows, cols] = np.maximum(0.0, math.log(floor) - log_p) / k[rows, cols]
    return pd.DataFrame(out, index=surprisal.index, columns=surprisal.columns)


def _log_binomial_tail(k: np.ndarray, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``log P(Bin(n, t) >= k)`` element-wise (``1 <= k <= n``, ``0 < t <= 1``)."""
    # Summed in log space: scipy's binom.logsf is log(sf), which is -inf once the tail is below
    # 1e-308 (500 of 500 at t = 0.01), and an infinite term would swamp every identity-day.
    top = int(n.max())
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1)))])
    i = np.arange(top + 1)[None, :]
    n_, k_ = n[:, None].astype(int), k[:, None].astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):  # t = 1 (log 0 times 0), masked below
        log_t, log_s = np.log(t)[:, None], np.log1p(-t)[:, None]
        terms = (
            log_factorial[n_]
            - log_factorial[np.minimum(i, n_)]
            - log_factorial[np.maximum(n_ - i, 0)]
            + i * log_t
            + np.where(n_ - i > 0, (n_ - i) * log_s, 0.0)
        )
    terms = np.where((i >= k_) & (i <= n_), terms, -np.inf)
    return np.logaddexp.reduce(terms, axis=1)


def _add_extra(days: pd.DataFrame, contributions: pd.DataFrame, extra: pd.DataFrame):
    keys = days.index.union(extra.index)
    days = days.reindex(keys)
    days[["n_windows", "n_unusual"]] = days[["n_windows", "n_unusual"]].fillna(0).astype(int)
    days["max_evidence"] = days["max_evidence"].fillna(0.0)
    added = extra.reindex(keys).fillna(0.0)
    days["anomaly_score"] = days["anomaly_score"].fillna(0.0) + added.sum(axis=1)
    contributions = contributions.reindex(keys).fillna(0.0)
    for term in added.columns:
        # A name shared with a window term (never by the sources' naming) adds to it.
        contributions[term] = contributions.get(term, 0.0) + added[term]
    return days, contributions


def _shares(windows: pd.DataFrame, terms: pd.DataFrame | None) -> pd.DataFrame:
    """Each term's share of its window's evidence (rows sum to 1)."""
    if terms is None:
        return pd.DataFrame({"window": np.ones(len(windows))}, index=windows.index)
    values = terms.reindex(windows.index).fillna(0.0).to_numpy(dtype=np.float64)
    if (values < 0).any():
        raise ValueError("evidence terms must be non-negative")
    total = values.sum(axis=1, keepdims=True)
    # A window with evidence but no term to name keeps it visible rather than dropping it.
    rest = (total[:, 0] <= 0).astype(float)
    out = np.where(total > 0, values / np.where(total > 0, total, 1.0), 0.0)
    return pd.DataFrame(
        np.column_stack([out, rest]), index=windows.index, columns=[*map(str, terms.columns), UNATTRIBUTED]
    )
