"""Calibrated evidence: scores as tail probabilities among held-out normal windows, combined, thresholded.

Every detector speaks its own units (a forest's path length, nats of rarity); a p-value against
normal windows the detectors did not learn from is a common unit, and a threshold set on
held-out days means "alerts per normal day", not a share of the training data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from features.enrich import kinds_of
from features.peers import peer_groups, pools


def tail_p_values(reference, scores, *, tail_size: int | None = None, weights=None) -> np.ndarray:
    """Conformal p-value ``(1 + #{reference >= s}) / (n + 1)`` of each score (higher is rarer).

    With ``tail_size``, scores above the largest reference value get an exponential tail fitted
    on the top ``tail_size`` references (mean excess), instead of all tying at ``1 / (n + 1)``:
    two attacks beyond everything normal still rank by how far beyond. ``weights`` (one per
    reference value, in its order) count some references more than others; their total is
    scaled to ``n``, so the resolution stays that of ``n`` windows. Far in the tail the p-value
    underflows to 0: :func:`log_tail_p_values` is what to use for evidence.

    Examples
    --------
    >>> tail_p_values([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 4.0, 9.0]).tolist()
    [1.0, 0.8, 0.4, 0.2]
    >>> tail_p_values([1.0, 2.0, 3.0, 4.0], [4.0], weights=[1.0, 1.0, 1.0, 3.0]).round(2).tolist()
    [0.6]
    """
    count, beyond, log_tail = _ranked_and_tail(reference, scores, tail_size, weights)
    return np.where(beyond, np.exp(log_tail), count)


def log_tail_p_values(reference, scores, *, tail_size: int | None = None, weights=None) -> np.ndarray:
    """The natural log of :func:`tail_p_values`, computed as a log: the exponential tail stays
    finite however far beyond the reference a score lies.

    A tail fitted on closely spaced references (a scale of 0.12 nats) puts a window 100 nats
    beyond them at ``exp(-833)``, which is 0 in floating point: its evidence would be infinite
    and tie with every other window that far out.

    Examples
    --------
    >>> log_tail_p_values([0.0, 0.1, 0.2, 0.3], [0.3, 200.0], tail_size=2).round(1).tolist()
    [-0.9, -1332.9]
    >>> tail_p_values([0.0, 0.1, 0.2, 0.3], [0.3, 200.0], tail_size=2).tolist()  # exp(-1333) is 0
    [0.4, 0.0]
    """
    count, beyond, log_tail = _ranked_and_tail(reference, scores, tail_size, weights)
    return np.where(beyond, log_tail, np.log(count))


def _ranked_and_tail(reference, scores, tail_size: int | None, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each score's conformal p-value by rank, whether it lies in the fitted tail, and the tail's log p."""
    ref, w = _sorted_weighted(reference, weights)
    s = np.asarray(scores, dtype=np.float64)
    n = len(ref)
    count = (1.0 + _weight_at_or_above(ref, w, s)) / (n + 1.0)  # never below 1 / (n + 1)
    beyond, log_tail = np.zeros(len(s), dtype=bool), np.zeros(len(s))
    # A reference smaller than ``tail_size`` (an identity's own held-out windows) fits its
    # tail on all it has: without one, everything beyond its largest value ties at 1 / (n + 1).
    k = min(tail_size, n - 1) if tail_size else 0
    if k > 0:
        scale = float(np.average(ref[-k:] - ref[-k - 1], weights=w[-k:]))
        if scale > 0:
            beyond = s > ref[-1]
            log_tail = -(s - ref[-1]) / scale - math.log(n + 1.0)
    return count, beyond, log_tail


def _sorted_weighted(reference, weights) -> tuple[np.ndarray, np.ndarray]:
    """The reference sorted, with its weights in the same order, scaled to add up to its size."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    w = np.ones(len(ref)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    order = np.argsort(ref, kind="stable")
    ref, w = ref[order], w[order]
    total = w.sum()
    return ref, (w * len(ref) / total if total > 0 else np.ones(len(ref)))


def _weight_at_or_above(ref: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray:
    above = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])  # above[i]: weight of ref[i:]
    return above[np.searchsorted(ref, s, side="left")]


def fisher_combine(p_values) -> np.ndarray:
    """Fisher's combined p-value of each row: ``-2 sum(log p)`` against chi-squared with 2k dof.

    Fisher, not Stouffer or the minimum: one source that is very sure (a first-ever
    cluster-admin binding the forest finds ordinary) must be able to carry a window, which
    Stouffer dilutes by sqrt(k); two moderately sure sources must add up, which the minimum
    ignores. Its statistic is a sum of ``-log p`` terms, so each source's share is its term.

    Examples
    --------
    >>> fisher_combine([[1.0, 1.0], [0.01, 1.0]]).round(3).tolist()
    [1.0, 0.056]
    """
    p = np.clip(np.atleast_2d(np.asarray(p_values, dtype=np.float64)), 1e-300, 1.0)
    half = -np.log(p).sum(axis=1)  # chi2 / 2
    k = p.shape[1]
    # Survival function of chi-squared with even dof 2k, in closed form: exp(-x) sum x^j / j!.
    terms = np.stack([half**j / math.factorial(j) for j in range(k)], axis=1)
    return np.minimum(1.0, np.exp(-half) * terms.sum(axis=1))


def _identities(X) -> np.ndarray | None:
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "identity" in index.names:
        return np.asarray(index.get_level_values("identity").astype("string").fillna(""), dtype=object)
    return None


def _local_keys(identity: str) -> list[str]:
    """Where an identity's own reference is looked for: itself, its peer group, its kind, its pool
    (people and pipelines, :func:`features.peers.pools`)."""
    keys = [f"identity {identity}", f"group {peer_groups([identity])[0]}", f"kind {kinds_of([identity])[0]}"]
    pool = pools([identity])[0]
    return [*keys, f"pool {pool}"] if pool else keys


def _levels(identities: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "identity": identities,
        "group": np.asarray(peer_groups(identities), dtype=object),
        "kind": np.asarray(kinds_of(identities.tolist()), dtype=object),
        "pool": pools(identities),
    }


def _member_weights(identities: np.ndarray) -> np.ndarray:
    """1 / (the identity's windows): in a peer group's or kind's reference each member counts once.

    The reference stands for a typical member. Counted by windows, one busy member who does a
    bit of everything (a developer at work all day) sets the tail for every other member, and a
    platform admin's first webhook write is judged no rarer than the developer's ordinary hours.
    """
    counts = pd.Series(identities).map(pd.Series(identities).value_counts()).to_numpy(dtype=np.float64)
    return 1.0 / counts


class TailCalibrator(TransformerMixin, BaseEstimator):
    """Turn score columns (higher = more anomalous) into evidence against held-out normal windows.

    ``fit`` keeps each column's held-out scores, and the Fisher statistic of their own
    p-values. ``transform`` gives each source's evidence ``-log p`` (nats; they add up);
    ``combined_p_values`` ranks a window's Fisher statistic among the held-out ones. Fisher
    chooses how to combine; the held-out windows, not the chi-squared law, say how rare the
    result is, because the sources are not independent (forest and rarity both see a binding).

    With identities in the index (level ``"identity"``), the combined p-value is the larger of
    the cluster's and the identity's own (Mondrian conformal): the held-out windows of the
    identity, else of its peer group, its kind or its pool (people and pipelines together), the
    first with ``min_reference`` windows. A
    window must be unusual for the cluster *and* for whoever made it, so an identity whose
    ordinary windows all sit in the cluster's tail (a developer who does a bit of everything)
    does not pile up evidence every day.

    Examples
    --------
    >>> import numpy as np
    >>> held_out = np.random.default_rng(0).normal(size=(999, 2))
    >>> cal = TailCalibrator().fit(held_out)
    >>> cal.combined_p_values([[0.0, 0.0], [2.5, 0.0], [2.5, 2.5]]).round(4).tolist()
    [0.579, 0.01, 0.0009]
    """

    def __init__(self, *, tail_size: int | None = 50, min_reference: int = 48):
        self.tail_size = tail_size
        self.min_reference = min_reference

    def fit(self, X, y=None) -> TailCalibrator:
        values = validate_data(self, X, dtype=np.float64)
        self.reference_ = np.sort(values, axis=0)
        statistic = self._statistic(values)
        self.combined_reference_ = np.sort(statistic)
        self.local_reference_: dict[str, np.ndarray] = {}
        self.local_weights_: dict[str, np.ndarray] = {}
        self.local_sources_: dict[str, np.ndarray] = {}
        identities = _identities(X)
        if identities is not None and len(identities):
            weights = _member_weights(identities)
            for level, keys in _levels(identities).items():
                for key in pd.unique(keys[keys != ""]):  # "": in no pool
                    rows = keys == key
                    if rows.sum() >= self.min_reference:
                        name = f"{level} {key}"
                        self.local_sources_[name] = values[rows]
                        self.local_weights_[name] = weights[rows]
                        # Each member as a new window would be: against the *other* members.
                        self.local_reference_[name] = _left_out_statistic(values[rows], weights[rows], self.tail_size)
        return self

    def _local_statistic(self, key: str, values: np.ndarray) -> np.ndarray:
        """Fisher's statistic of each source's p-value among the windows of ``key`` (an identity, a
        peer group or a kind), not among the cluster's: against the cluster, a source's p-value
        cannot go below one in as many held-out windows, so a first admission-webhook write by an
        admin (far beyond every admin window) would tie with an admin's busy, moderately unusual
        hour, which is unusual to the cluster on both sources."""
        sources, weights = self.local_sources_[key], self.local_weights_[key]
        log_p = [
            log_tail_p_values(sources[:, j], values[:, j], tail_size=self.tail_size, weights=weights)
            for j in range(values.shape[1])
        ]
        return -np.column_stack(log_p).sum(axis=1) if log_p else np.zeros(len(values))

    def _local_log_p(self, key: str, values: np.ndarray) -> np.ndarray:
        """Each new window's local statistic ranked among the members' (full conformal), as a log.

        A member's statistic is its sources judged against the other members *and the new
        window*, as :func:`left_out_p_values` judges each held-out window against all the others:
        a member that lay beyond all the others (one person's one-off) is not beyond a new window
        that goes further, and no longer hides it behind its extrapolated tail.
        """
        sources, weights = self.local_sources_[key], self.local_weights_[key]
        n = len(sources)
        new = self._local_statistic(key, values)
        members = np.zeros((len(values), n))
        for j in range(values.shape[1]):
            s = sources[:, j]
            alone = _left_out_log_tail_p(s, s, self.tail_size, weights)  # against the others only
            ref, w = _sorted_weighted(s, weights)
            at_or_above = _weight_at_or_above(ref, w, s)  # the member's own weight included
            top = np.sort(s)[-2:]
            beyond = (s == top[-1]) & (top[-1] > top[0]) if n > 1 else np.zeros(n, dtype=bool)
            ge = values[:, j][:, None] >= s[None, :]
            log_p = np.where(
                beyond[None, :] & ~ge,
                alone[None, :] + math.log(n / (n + 1.0)),
                np.log(at_or_above[None, :] + ge) - math.log(n + 1.0),
            )
            members -= log_p
        scaled = weights * n / weights.sum()
        out = np.log1p(((members >= new[:, None]) * scaled[None, :]).sum(axis=1)) - math.log(n + 1.0)
        k = min(self.tail_size, n - 1) if self.tail_size else 0
        if k > 0:
            order = np.argsort(members, axis=1)
            ranked, w = np.take_along_axis(members, order, axis=1), scaled[order]
            scale = np.average(ranked[:, -k:] - ranked[:, [-k - 1]], weights=w[:, -k:], axis=1)
            beyond = (new > ranked[:, -1]) & (scale > 0)
            tail = -(new - ranked[:, -1]) / np.where(scale > 0, scale, 1.0) - math.log(n + 1.0)
            out = np.where(beyond, tail, out)
        return out

    def p_values(self, X) -> np.ndarray:
        """Each source's tail p-value among the held-out windows (rows kept; 0 where it underflows)."""
        return np.exp(self.log_p_values(X))

    def log_p_values(self, X) -> np.ndarray:
        """The natural log of :meth:`p_values`, finite however far in the tail."""
        check_is_fitted(self, "reference_")
        values = validate_data(self, X, dtype=np.float64, reset=False)
        return self._log_p(values)

    def _log_p(self, values: np.ndarray) -> np.ndarray:
        cols = [
            log_tail_p_values(self.reference_[:, j], values[:, j], tail_size=self.tail_size)
            for j in range(values.shape[1])
        ]
        return np.column_stack(cols) if cols else np.zeros((len(values), 0))

    def _statistic(self, values: np.ndarray) -> np.ndarray:
        return -self._log_p(values).sum(axis=1)

    def transform(self, X) -> np.ndarray:
        """Each source's evidence, ``-log p`` in nats."""
        return -self.log_p_values(X)

    def combined_p_values(self, X) -> np.ndarray:
        """The window's p-value: its Fisher statistic's tail among the held-out windows' (0 where it
        underflows: :meth:`combined_log_p_values` is what to turn into evidence)."""
        return np.exp(self.combined_log_p_values(X))

    def combined_log_p_values(self, X) -> np.ndarray:
        """The natural log of :meth:`combined_p_values`, finite however far in the tail."""
        check_is_fitted(self, "reference_")
        values = validate_data(self, X, dtype=np.float64, reset=False)
        statistic = self._statistic(values)
        log_p = log_tail_p_values(self.combined_reference_, statistic, tail_size=self.tail_size)
        identities = _identities(X)
        if identities is None or not self.local_reference_:
            return log_p
        codes, uniques = pd.factorize(pd.Series(identities, dtype=object))
        for code, identity in enumerate(uniques):
            key = next((k for k in _local_keys(identity) if k in self.local_reference_), None)
            if key is not None:
                rows = codes == code
                log_p[rows] = np.maximum(log_p[rows], self._local_log_p(key, values[rows]))
        return log_p

    def score_samples(self, X) -> np.ndarray:
        """Log of the combined p-value (higher is more usual, as in scikit-learn)."""
        return self.combined_log_p_values(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "reference_")
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray([f"{n}_evidence" for n in names], dtype=object)


def _left_out_log_tail_p(reference: np.ndarray, members: np.ndarray, tail_size: int | None, weights=None) -> np.ndarray:
    """:func:`log_tail_p_values` of reference members, each against the *other* members.

    ``(1 + #{others >= s}) / n`` is ``#{reference >= s} / n`` (with ``weights``, the members'
    weight at or above ``s``, scaled to add up to ``n``); the largest member, beyond all the
    others, gets the exponential tail fitted on the others' top values.
    """
    ref, w = _sorted_weighted(reference, weights)
    s = np.asarray(members, dtype=np.float64)
    n = len(ref)
    if n < 2:
        return np.zeros(len(s))
    # ``members`` are in the reference, so the weight at or above each is at least its own (> 0).
    log_p = np.log(_weight_at_or_above(ref, w, s)) - math.log(n)
    k = min(tail_size, n - 2) if tail_size else 0
    if k > 0:
        others = ref[:-1]
        scale = float(np.average(others[-k:] - others[-k - 1], weights=w[:-1][-k:]))
        beyond = s > others[-1]
        if scale > 0 and beyond.any():
            log_p = np.where(beyond, -(s - others[-1]) / scale - math.log(n), log_p)
    return log_p


def _left_out_statistic(values: np.ndarray, weights: np.ndarray, tail_size: int | None) -> np.ndarray:
    """Fisher's statistic of each row's sources, each judged against the *other* rows."""
    log_p = [_left_out_log_tail_p(values[:, j], values[:, j], tail_size, weights) for j in range(values.shape[1])]
    return -np.column_stack(log_p).sum(axis=1) if log_p else np.zeros(len(values))


def left_out_p_values(calibrator: TailCalibrator, X) -> np.ndarray:
    """:func:`left_out_log_p_values`' p-values (0 where they underflow)."""
    return np.exp(left_out_log_p_values(calibrator, X))


def left_out_log_p_values(calibrator: TailCalibrator, X) -> np.ndarray:
    """The log of the combined p-value of each window ``calibrator`` was fitted on, as if it were new.

    A window in its own reference can never be rarer than ``1 / (n + 1)`` of it, while a new
    day's window can lie beyond all of it: scores of the calibration windows against a
    reference that holds them are milder than scoring will see, and a threshold set on them
    alerts more than asked. Here each window is judged against the others (each source, the
    cluster's combined reference and its identity's, group's or kind's), as scoring judges a
    new one; the references keep their size and their mix of days. (Leaving out whole days
    instead leaves a reference of the other days only: with a few held-out days of different
    weekdays that overstates every day-of-week habit, and the threshold then alerts far less
    than asked.)

    Examples
    --------
    >>> idx = pd.MultiIndex.from_product([["a"], range(4)], names=["identity", "window_start"])
    >>> X = pd.DataFrame({"s": [1.0, 2.0, 3.0, 4.0]}, index=idx)
    >>> cal = TailCalibrator(tail_size=None, min_reference=1).fit(X)
    >>> cal.combined_p_values(X).round(2).tolist()  # the largest is 1 in 5: itself is counted
    [1.0, 0.8, 0.6, 0.4]
    >>> np.exp(left_out_log_p_values(cal, X)).round(2).tolist()  # the largest is beyond the other three
    [1.0, 0.75, 0.5, 0.25]
    """
    check_is_fitted(calibrator, "reference_")
    values = validate_data(calibrator, X, dtype=np.float64, reset=False)
    tail = calibrator.tail_size
    own = np.column_stack(
        [_left_out_log_tail_p(calibrator.reference_[:, j], values[:, j], tail) for j in range(values.shape[1])]
    )
    statistic = -own.sum(axis=1)
    log_p = _left_out_log_tail_p(statistic, statistic, tail)
    identities = _identities(X)
    if identities is None or not calibrator.local_reference_:
        return log_p
    members = _levels(identities)
    weights = _member_weights(identities)
    chosen = np.full(len(identities), "", dtype=object)
    for identity in pd.unique(identities):
        key = next((k for k in _local_keys(identity) if k in calibrator.local_reference_), "")
        chosen[identities == identity] = key
    for key in pd.unique(chosen[chosen != ""]):
        level, name = key.split(" ", 1)
        mine = members[level] == name  # the key's windows, as fitted
        rows = chosen == key
        reference = calibrator.local_reference_[key]  # in the members' order, left out as fitted
        local = reference[rows[mine]]  # the windows that chose this key are among its members
        log_p[rows] = np.maximum(log_p[rows], _left_out_log_tail_p(reference, local, tail, weights[mine]))
    return log_p


@dataclass(frozen=True)
class AlertThreshold:
    """A score threshold and the alert rate it gave on held-out normal days."""

    threshold: float
    alerts_per_day: float  # asked for
    expected_alerts_per_day: float  # measured on the held-out days at ``threshold``
    n_days: int


def alert_threshold(scores, days, *, alerts_per_day: float) -> AlertThreshold:
    """The score above which a finding alerts, so that held-out normal days give ``alerts_per_day``.

    ``days`` labels each score's day (or is the number of days, for days without any score).
    The threshold sits halfway between the last score that alerts and the first that does
    not, so it does not hinge on one held-out value.

    Examples
    --------
    >>> alert_threshold([5.0, 1.0, 4.0, 2.0, 0.5, 0.1], [1, 1, 1, 2, 2, 2], alerts_per_day=1)
    AlertThreshold(threshold=3.0, alerts_per_day=1, expected_alerts_per_day=1.0, n_days=2)
    """
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())[::-1]
    n_days = max(1, int(days) if isinstance(days, int | np.integer) else int(pd.Series(np.asarray(days)).nunique()))
    n_alerts = min(int(round(alerts_per_day * n_days)), len(values))
    if len(values) == 0:
        threshold = math.inf
    elif n_alerts == 0:
        threshold = float(values[0])
    elif n_alerts == len(values):
        threshold = float(values[-1]) - 1.0
    else:
        threshold = float(values[n_alerts - 1] + values[n_alerts]) / 2.0
    measured = float((values > threshold).sum()) / n_days
    return AlertThreshold(threshold, alerts_per_day, measured, n_days)
