"""Identity-days: an identity's windows of one day, judged together.

Hourly judgement misses the low-and-slow: nine windows that are each only somewhat unusual
rank below one busy benign hour. Two pieces of evidence, from disjoint windows, add up:

- each window below a floor adds how far below it is (Zaykin's truncated product of
  p-values, on a log scale), so that a few very unusual windows count however few;
- the windows at or above the floor, which add nothing on their own, are counted: if more of
  them sit low than a day of ordinary windows puts there (a binomial tail at the best level,
  corrected for choosing it), that excess is evidence too. One denied call an hour through a
  working day (p = 0.125 nine times) is a pattern no single hour shows.

Ordinary windows, however many, add nothing: their p-values are spread as a day's should be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY_INDEX = ["identity", "day"]
#: Window p-values below this add log(floor / p) each; at or above it, a window adds only
#: through the count of such windows (:func:`_repetition`). One normal window in twenty is
#: below it, by construction of a calibrated p-value.
FLOOR = 0.05
#: Windows counted for repetition are below this: more unusual than the median ordinary window,
#: i.e. unusual at all. Above it a window is as ordinary as most, and an identity's ordinary
#: windows are alike hour after hour (the same routine, the same p-value): counted, they
#: would look like a pattern when they are a habit.
UNUSUAL_AT_ALL = 0.5
UNATTRIBUTED = "unattributed"


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
) -> IdentityDays:
    """Aggregate calibrated window p-values to identity-days.

    Parameters
    ----------
    window_p : p-value of each window, indexed by (identity, window_start).
    terms : non-negative evidence terms per window (same index), e.g. each rarity term and the
        forest's evidence; a window's contribution is shared among them in proportion, so the
        reasons of a day add up to its score. Without terms, the window itself is the term.
    floor : window p-values at or above it contribute nothing.
    extra : evidence from outside the windows (:mod:`models.evidence`), indexed by (identity,
        day), one column per term in nats; it adds to the day's score as terms of their own. An
        identity-day only this names is added with no windows.

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
    p = np.clip(window_p.to_numpy(dtype=np.float64), 1e-300, 1.0)
    starts = pd.DatetimeIndex(window_p.index.get_level_values("window_start"))
    day = starts.tz_convert("UTC").normalize() if starts.tz is not None else starts.normalize()
    evidence = -np.log(p)
    keys = [window_p.index.get_level_values("identity"), day]
    group = pd.MultiIndex.from_arrays(keys).factorize()[0] if len(p) else np.zeros(0, dtype=np.int64)
    contribution = np.maximum(0.0, evidence - (-math.log(floor))) + _repetition(p, group, floor)
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
    shares = _shares(windows, terms)
    contributions = shares.mul(contribution, axis=0).groupby(keys, sort=True).sum()
    contributions.index = contributions.index.set_names(DAY_INDEX)
    windows = windows.join(shares.mul(contribution, axis=0).add_prefix("from_"))
    if extra is not None and not extra.empty:
        days, contributions = _add_extra(days, contributions, extra)
    return IdentityDays(days.sort_values("anomaly_score", ascending=False, kind="stable"), windows, contributions)


def _repetition(p: np.ndarray, group: np.ndarray, floor: float) -> np.ndarray:
    """Each window's share of the evidence its identity-day's count of low windows gives.

    Only windows at or above ``floor`` are counted (those below it have added their own
    evidence), at levels below :data:`UNUSUAL_AT_ALL`. Among an identity-day's ``m`` windows
    at or above the floor, the ``j`` lowest all sit at or below the ``j``-th lowest p-value
    ``t``; a day of ordinary windows does that with chance ``P(Bin(m, t) >= j)`` at most (a
    calibrated window is at or below ``t`` with chance ``t``, and with less given that it is
    at or above the floor: the tail errs on the side of ordinary). The best ``j`` is chosen
    after looking, among ``m``, so its tail is multiplied by ``m`` (Bonferroni). The result
    is a p-value of the day's count and is judged as a window's: it adds ``log(floor / p)``
    when below the floor, shared equally by the ``j`` windows counted, and nothing otherwise.
    An identity-day of one window therefore never gains here.
    """
    out = np.zeros(len(p))
    above = np.flatnonzero(p >= floor)
    frame = pd.DataFrame({"group": group[above], "p": p[above]})
    # Ties share the larger rank: nine windows at the same p are nine at or below it.
    frame["j"] = frame.groupby("group")["p"].rank(method="max").to_numpy()
    frame["m"] = frame.groupby("group")["p"].transform("size").to_numpy(dtype=np.float64)
    low = frame["p"].to_numpy() < UNUSUAL_AT_ALL  # the candidate levels; all above the floor count in m
    above, frame = above[low], frame[low].reset_index(drop=True)
    if len(above) == 0:
        return out
    j, m = frame["j"].to_numpy(), frame["m"].to_numpy()
    frame["log_p_count"] = _log_binomial_tail(j, m, frame["p"].to_numpy()) + np.log(m)
    best = frame.groupby("group")["log_p_count"].transform("min").to_numpy()
    level = frame["p"].where(frame["log_p_count"] == best).groupby(frame["group"]).transform("max").to_numpy()
    counted = frame["p"].to_numpy() <= level
    n_counted = pd.Series(counted).groupby(frame["group"].to_numpy()).transform("sum").to_numpy()
    gain = np.maximum(0.0, math.log(floor) - best)
    out[above] = np.where(counted, gain / np.maximum(n_counted, 1), 0.0)
    return out


def _log_binomial_tail(k: np.ndarray, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``log P(Bin(n, t) >= k)`` element-wise (``1 <= k <= n``, ``0 < t <= 1``)."""
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
