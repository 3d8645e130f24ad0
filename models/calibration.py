"""Calibrated evidence: scores as tail probabilities among held-out normal windows, combined, thresholded.

Every detector speaks its own units (a forest's path length, nats of rarity); a p-value against
normal windows the detectors did not learn from is a common unit, and a threshold set on
held-out days means "alerts per normal day", not a share of the training data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from models.local_reference import (
    floor_of,
    floored,
    identities_of,
    left_out_statistic,
    levels,
    local_keys,
    member_weights,
)
from models.tail import (
    NATS_MIN_SCALE,
    fisher_combine,
    left_out_log_tail_p,
    log_tail_p_values,
    sorted_weighted,
    tail_count,
    tail_p_values,
    tail_scales,
    weight_at_or_above,
)

# Saved bundles unpickle ``models.calibration.AlertThreshold``: it stays importable from here.
from models.threshold import AlertThreshold, alert_threshold

__all__ = [
    "AlertThreshold",
    "TailCalibrator",
    "alert_threshold",
    "fisher_combine",
    "left_out_log_p_values",
    "left_out_p_values",
    "log_tail_p_values",
    "tail_p_values",
]


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

    Columns named in ``surprisals`` are nats under a model (``-log`` of a rate): below 3 nats
    their p-value is never below ``e^-value`` (:func:`models.local_reference.floored`). The
    Fisher statistics' tails fall by at most a nat of evidence per nat (``nats_min_scale``);
    the surprisals' by at most ``1 / surprisal_min_scale`` (0: as fitted).

    Examples
    --------
    >>> import numpy as np
    >>> held_out = np.random.default_rng(0).normal(size=(999, 2))
    >>> cal = TailCalibrator().fit(held_out)
    >>> cal.combined_p_values([[0.0, 0.0], [2.5, 0.0], [2.5, 2.5]]).round(4).tolist()
    [0.579, 0.01, 0.0009]
    """

    def __init__(
        self,
        *,
        tail_size: int | None = 50,
        min_reference: int = 48,
        surprisals: tuple[str, ...] = ("rarity",),
        nats_min_scale: float = NATS_MIN_SCALE,
        surprisal_min_scale: float = 0.0,
    ):
        self.tail_size = tail_size
        self.min_reference = min_reference
        self.surprisals = surprisals
        self.nats_min_scale = nats_min_scale
        self.surprisal_min_scale = surprisal_min_scale

    def __setstate__(self, state: dict) -> None:
        # Calibrators pickled before the floor and the least scale judged every column as a plain
        # score with any tail, and their bundle's threshold was set that way: they keep doing so.
        # Those pickled before the surprisals' scale had a parameter of its own bounded them as
        # the statistics.
        state = {"surprisals": (), "nats_min_scale": 0.0, **state}
        state.setdefault("surprisal_min_scale", state["nats_min_scale"])
        super().__setstate__(state)

    def _floors(self, n_columns: int) -> np.ndarray:
        """Which columns are surprisals (nats under a model: their p-value is at least ``e^-value``)."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return np.zeros(n_columns, dtype=bool)
        return np.isin(np.asarray(names, dtype=object), list(self.surprisals))

    def _min_scales(self, n_columns: int) -> np.ndarray:
        """Each column's least tail scale (``surprisal_min_scale`` for the surprisals)."""
        return np.where(self._floors(n_columns), self.surprisal_min_scale, 0.0)

    def fit(self, X, y=None) -> TailCalibrator:
        values = validate_data(self, X, dtype=np.float64)
        self.reference_ = np.sort(values, axis=0)
        statistic = self._statistic(values)
        self.combined_reference_ = np.sort(statistic)
        self.local_reference_: dict[str, np.ndarray] = {}
        self.local_weights_: dict[str, np.ndarray] = {}
        self.local_sources_: dict[str, np.ndarray] = {}
        identities = identities_of(X)
        if identities is not None and len(identities):
            weights = member_weights(identities)
            for level, keys in levels(identities).items():
                for key in pd.unique(keys[keys != ""]):  # "": in no pool
                    rows = keys == key
                    if rows.sum() >= self.min_reference:
                        name = f"{level} {key}"
                        self.local_sources_[name] = values[rows]
                        self.local_weights_[name] = weights[rows]
                        # Each member as a new window would be: against the *other* members.
                        self.local_reference_[name] = left_out_statistic(
                            values[rows],
                            weights[rows],
                            self.tail_size,
                            self._floors(values.shape[1]),
                            self._min_scales(values.shape[1]),
                        )
        return self

    def _local_statistic(self, key: str, values: np.ndarray) -> np.ndarray:
        """Fisher's statistic of each source's p-value among the windows of ``key`` (an identity, a
        peer group or a kind), not among the cluster's: against the cluster, a source's p-value
        cannot go below one in as many held-out windows, so a first admission-webhook write by an
        admin (far beyond every admin window) would tie with an admin's busy, moderately unusual
        hour, which is unusual to the cluster on both sources."""
        sources, weights = self.local_sources_[key], self.local_weights_[key]
        min_scales = self._min_scales(values.shape[1])
        log_p = [
            log_tail_p_values(
                sources[:, j], values[:, j], tail_size=self.tail_size, weights=weights, min_scale=min_scales[j]
            )
            for j in range(values.shape[1])
        ]
        if not log_p:
            return np.zeros(len(values))
        return -floored(np.column_stack(log_p), values, self._floors(values.shape[1])).sum(axis=1)

    def _local_log_p(self, key: str, values: np.ndarray) -> np.ndarray:
        """Each new window's local statistic ranked among the members' (full conformal), as a log.

        A member's statistic is its sources judged against the other members *and the new
        window*, as :func:`left_out_p_values` judges each held-out window against all the others:
        a member that lay beyond all the others (one person's one-off) is not beyond a new window
        that goes further, and no longer hides it behind its extrapolated tail.
        """
        sources, weights = self.local_sources_[key], self.local_weights_[key]
        n = len(sources)
        floors, min_scales = self._floors(values.shape[1]), self._min_scales(values.shape[1])
        new = self._local_statistic(key, values)
        members = np.zeros((len(values), n))
        for j in range(values.shape[1]):
            s = sources[:, j]
            alone = left_out_log_tail_p(s, s, self.tail_size, weights, min_scales[j])  # against the others only
            ref, w = sorted_weighted(s, weights)
            at_or_above = weight_at_or_above(ref, w, s)  # the member's own weight included
            top = np.sort(s)[-2:]
            beyond = (s == top[-1]) & (top[-1] > top[0]) if n > 1 else np.zeros(n, dtype=bool)
            ge = values[:, j][:, None] >= s[None, :]
            log_p = np.where(
                beyond[None, :] & ~ge,
                alone[None, :] + math.log(n / (n + 1.0)),
                np.log(at_or_above[None, :] + ge) - math.log(n + 1.0),
            )
            if floors[j]:  # a member's routine action is as common as its own rate says
                log_p = np.maximum(log_p, floor_of(s)[None, :])
            members -= log_p
        scaled = weights * n / weights.sum()
        out = np.log1p(((members >= new[:, None]) * scaled[None, :]).sum(axis=1)) - math.log(n + 1.0)
        k = tail_count(n, self.tail_size)
        if k > 0:
            order = np.argsort(members, axis=1)
            ranked, w = np.take_along_axis(members, order, axis=1), scaled[order]
            scale = tail_scales(ranked, w, k, self.nats_min_scale)
            beyond = new > ranked[:, -1]
            tail = -(new - ranked[:, -1]) / scale - math.log(n + 1.0)
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
        min_scales = self._min_scales(values.shape[1])
        cols = [
            log_tail_p_values(self.reference_[:, j], values[:, j], tail_size=self.tail_size, min_scale=min_scales[j])
            for j in range(values.shape[1])
        ]
        if not cols:
            return np.zeros((len(values), 0))
        return floored(np.column_stack(cols), values, self._floors(values.shape[1]))

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
        log_p = log_tail_p_values(
            self.combined_reference_, statistic, tail_size=self.tail_size, min_scale=self.nats_min_scale
        )
        identities = identities_of(X)
        if identities is None or not self.local_reference_:
            return log_p
        codes, uniques = pd.factorize(pd.Series(identities, dtype=object))
        for code, identity in enumerate(uniques):
            key = next((k for k in local_keys(identity) if k in self.local_reference_), None)
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
    min_scales = calibrator._min_scales(values.shape[1])
    own = np.column_stack(
        [
            left_out_log_tail_p(calibrator.reference_[:, j], values[:, j], tail, min_scale=min_scales[j])
            for j in range(values.shape[1])
        ]
    )
    own = floored(own, values, calibrator._floors(values.shape[1]))
    statistic = -own.sum(axis=1)
    log_p = left_out_log_tail_p(statistic, statistic, tail, min_scale=calibrator.nats_min_scale)
    identities = identities_of(X)
    if identities is None or not calibrator.local_reference_:
        return log_p
    members = levels(identities)
    weights = member_weights(identities)
    chosen = np.full(len(identities), "", dtype=object)
    for identity in pd.unique(identities):
        key = next((k for k in local_keys(identity) if k in calibrator.local_reference_), "")
        chosen[identities == identity] = key
    for key in pd.unique(chosen[chosen != ""]):
        level, name = key.split(" ", 1)
        mine = members[level] == name  # the key's windows, as fitted
        rows = chosen == key
        reference = calibrator.local_reference_[key]  # in the members' order, left out as fitted
        local = reference[rows[mine]]  # the windows that chose this key are among its members
        log_p[rows] = np.maximum(
            log_p[rows], left_out_log_tail_p(reference, local, tail, weights[mine], calibrator.nats_min_scale)
        )
    return log_p
