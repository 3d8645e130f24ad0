"""Conformal tail p-values: how rare a score is among reference scores, and Fisher's combination.

The building blocks of :mod:`models.calibration`: a rank among the reference with an
exponential tail beyond its largest value, computed as a log so that it stays finite, optionally
weighted, and each reference member judged against the others as a new score would be.
"""

from __future__ import annotations

import math

import numpy as np

# The tail is fitted on a reference's top tenth (DuMouchel's rule for peaks over a threshold),
# never fewer than MIN_TAIL values (the scale's standard error is scale / sqrt(k): about a third at
# 10) and never more than ``tail_size``. A fixed count of 50 was the top half of a peer group's
# ~100 held-out windows: their bulk, more than half of them at 0 nats, set a scale of ~2 nats
# where its top tenth decays by ~0.7, and capped a window 28 nats beyond them at ~11 nats.
TAIL_FRACTION = 0.1
MIN_TAIL = 10
# A top tenth of one value repeated (a monitor doing the same every hour) says nothing about how
# fast the tail falls: a mean excess of 0 left no tail at all and held a cluster-admin binding
# beyond it at 1 / (n + 1) (real harness: rank 2 -> 8). Measuring from the next value down
# instead (the tie rule) made the scale that step, however small: exp(-100) for a CI deployer
# 3 nats beyond its one held-out day. One unit, a nat of evidence, is the decay of a reference
# with no spread to measure.
UNIT_SCALE = 1.0
# A Fisher statistic (a sum of -log p terms) has a tail of e^-t times a polynomial under its own
# null: a nat more is at most a nat more evidence, and its fitted tail is never steeper. Fitted
# on a clump of near-equal held-out values (3 days of history: 53 windows, the top ten within
# 0.2 nats), a statistic's scale of 0.016 put one held-out window 3.9 nats beyond at ~240 nats
# and raised the threshold 53 -> 79. (Surprisal columns may be bounded the same way,
# TailCalibrator(surprisal_min_scale=...); by default they keep their fitted tails.)
NATS_MIN_SCALE = 1.0


def tail_count(n: int, tail_size: int | None) -> int:
    """How many of ``n`` references the exponential tail is fitted on (0: no tail).

    The top tenth, at least :data:`MIN_TAIL` and at most ``tail_size``; one value always stays
    below them, as the threshold the excesses are measured from.

    Examples
    --------
    >>> [tail_count(n, 50) for n in (5, 48, 98, 400, 10_000)]
    [4, 10, 10, 40, 50]
    """
    if not tail_size or n < 2:
        return 0
    return max(0, min(tail_size, max(MIN_TAIL, math.ceil(TAIL_FRACTION * n)), n - 1))


def tail_scales(ranked, weights, k: int, min_scale: float = 0.0) -> np.ndarray:
    """Each row's exponential scale: the weighted mean excess of its top ``k`` over the value below.

    ``ranked`` holds references sorted ascending, one per row; where the top ``k`` and the value
    below them are all alike the scale is :data:`UNIT_SCALE`; it is never below ``min_scale``.

    Examples
    --------
    >>> tail_scales([[0.0, 1.0, 2.0, 3.0]], [[1.0] * 4], 2).tolist()  # the top two over 1.0
    [1.5]
    >>> tail_scales([[0.0, 0.2, 0.3, 0.3, 0.3]], [[1.0] * 5], 2).tolist()  # a top of one value
    [1.0]
    """
    ranked = np.atleast_2d(np.asarray(ranked, dtype=np.float64))
    w = np.broadcast_to(np.atleast_2d(np.asarray(weights, dtype=np.float64)), ranked.shape)
    scale = np.average(ranked[:, -k:] - ranked[:, [-k - 1]], weights=w[:, -k:], axis=1)
    return np.maximum(np.where(scale > 0, scale, UNIT_SCALE), min_scale)


def tail_p_values(reference, scores, *, tail_size: int | None = None, weights=None) -> np.ndarray:
    """Conformal p-value ``(1 + #{reference >= s}) / (n + 1)`` of each score (higher is rarer).

    With ``tail_size``, scores above the largest reference value get an exponential tail fitted
    on the top references (mean excess; :func:`tail_count` says how many), instead of all tying at ``1 / (n + 1)``:
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


def log_tail_p_values(
    reference, scores, *, tail_size: int | None = None, weights=None, min_scale: float = 0.0
) -> np.ndarray:
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
    count, beyond, log_tail = _ranked_and_tail(reference, scores, tail_size, weights, min_scale)
    return np.where(beyond, log_tail, np.log(count))


def _ranked_and_tail(
    reference, scores, tail_size: int | None, weights, min_scale: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each score's conformal p-value by rank, whether it lies in the fitted tail, and the tail's log p."""
    ref, w = sorted_weighted(reference, weights)
    s = np.asarray(scores, dtype=np.float64)
    n = len(ref)
    count = (1.0 + weight_at_or_above(ref, w, s)) / (n + 1.0)  # never below 1 / (n + 1)
    beyond, log_tail = np.zeros(len(s), dtype=bool), np.zeros(len(s))
    # A small reference (an identity's own held-out windows) still gets a tail (:func:`tail_count`):
    # without one, everything beyond its largest value ties at 1 / (n + 1).
    k = tail_count(n, tail_size)
    if k > 0:
        scale = float(tail_scales(ref, w, k, min_scale)[0])
        beyond = s > ref[-1]
        log_tail = -(s - ref[-1]) / scale - math.log(n + 1.0)
    return count, beyond, log_tail


def sorted_weighted(reference, weights) -> tuple[np.ndarray, np.ndarray]:
    """The reference sorted, with its weights in the same order, scaled to add up to its size."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    w = np.ones(len(ref)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    order = np.argsort(ref, kind="stable")
    ref, w = ref[order], w[order]
    total = w.sum()
    return ref, (w * len(ref) / total if total > 0 else np.ones(len(ref)))


def weight_at_or_above(ref: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray:
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


def left_out_log_tail_p(
    reference: np.ndarray, members: np.ndarray, tail_size: int | None, weights=None, min_scale: float = 0.0
) -> np.ndarray:
    """:func:`log_tail_p_values` of reference members, each against the *other* members.

    ``(1 + #{others >= s}) / n`` is ``#{reference >= s} / n`` (with ``weights``, the members'
    weight at or above ``s``, scaled to add up to ``n``); the largest member, beyond all the
    others, gets the exponential tail fitted on the others' top values.
    """
    ref, w = sorted_weighted(reference, weights)
    s = np.asarray(members, dtype=np.float64)
    n = len(ref)
    if n < 2:
        return np.zeros(len(s))
    # ``members`` are in the reference, so the weight at or above each is at least its own (> 0).
    log_p = np.log(weight_at_or_above(ref, w, s)) - math.log(n)
    k = tail_count(n - 1, tail_size)
    if k > 0:
        others = ref[:-1]
        scale = float(tail_scales(others, w[:-1], k, min_scale)[0])
        beyond = s > others[-1]
        if beyond.any():
            log_p = np.where(beyond, -(s - others[-1]) / scale - math.log(n), log_p)
    return log_p
