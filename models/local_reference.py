"""Local references: where an identity's window is judged besides the cluster.

Its own held-out windows, else its peer group's, its kind's, or its pool's (people and
pipelines), the first with enough windows (:class:`models.calibration.TailCalibrator`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.enrich import kinds_of
from features.peers import peer_groups, pools
from models.tail import left_out_log_tail_p


def identities_of(X) -> np.ndarray | None:
    """The ``identity`` level of a frame's index, or None when it has none (no local references)."""
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "identity" in index.names:
        return np.asarray(index.get_level_values("identity").astype("string").fillna(""), dtype=object)
    return None


def local_keys(identity: str) -> list[str]:
    """Where an identity's own reference is looked for: itself, its peer group, its kind, its pool
    (people and pipelines, :func:`features.peers.pools`)."""
    keys = [f"identity {identity}", f"group {peer_groups([identity])[0]}", f"kind {kinds_of([identity])[0]}"]
    pool = pools([identity])[0]
    return [*keys, f"pool {pool}"] if pool else keys


def levels(identities: np.ndarray) -> dict[str, np.ndarray]:
    """Each window's key at each level of :func:`local_keys` (``""``: in no pool)."""
    return {
        "identity": identities,
        "group": np.asarray(peer_groups(identities), dtype=object),
        "kind": np.asarray(kinds_of(identities.tolist()), dtype=object),
        "pool": pools(identities),
    }


def member_weights(identities: np.ndarray) -> np.ndarray:
    """1 / (the identity's windows): in a peer group's or kind's reference each member counts once.

    The reference stands for a typical member. Counted by windows, one busy member who does a
    bit of everything (a developer at work all day) sets the tail for every other member, and a
    platform admin's first webhook write is judged no rarer than the developer's ordinary hours.
    """
    counts = pd.Series(identities).map(pd.Series(identities).value_counts()).to_numpy(dtype=np.float64)
    return 1.0 / counts


def left_out_statistic(
    values: np.ndarray,
    weights: np.ndarray,
    tail_size: int | None,
    floors: np.ndarray | None = None,
    min_scales: np.ndarray | None = None,
) -> np.ndarray:
    """Fisher's statistic of each row's sources, each judged against the *other* rows."""
    least = np.zeros(values.shape[1]) if min_scales is None else min_scales
    log_p = [
        left_out_log_tail_p(values[:, j], values[:, j], tail_size, weights, least[j]) for j in range(values.shape[1])
    ]
    if not log_p:
        return np.zeros(len(values))
    return -floored(np.column_stack(log_p), values, floors).sum(axis=1)


# The floor holds for routine windows only: a window's rarity (its surprisal summed over its
# actions and contexts) below 3 nats, as if all it did happened in more than 5% of its windows.
# There the rates are measured on many windows and are the better judge. A rare action's
# surprisal is mostly its smoothing prior (a person's first-ever permission check: 6.7 nats,
# whatever the history), so there the floor is a cap: floored, a stolen token's can-i fell 13.4
# -> 6.7 nats and ranked below a benign operator install (real harness, rank 2 -> 4). At 3 nats
# the evidence jumps from the floor to the reference's judgement (never down: the floor only
# ever raises a p-value), as it was everywhere before the floor.
ROUTINE_NATS = 3.0


def floored(log_p: np.ndarray, values: np.ndarray, floors: np.ndarray | None) -> np.ndarray:
    """Each surprisal column's log p-value, never below ``-value`` where the value is routine
    (below :data:`ROUTINE_NATS`): a window whose actions the identity takes at rate ``r`` is at
    least that common, however many windows of the reference lie below it. Ranked alone, a young
    node reading secrets at 61% (0.43 nats) lay beyond the established nodes' 74% (0.30 nats) and
    read as rarer than thousands of their windows.

    Examples
    --------
    >>> floored(np.array([[-9.0, -9.0]]), np.array([[0.4, 6.7]]), np.array([True, True])).tolist()
    [[-0.4, -9.0]]
    """
    if floors is None or not floors.any():
        return log_p
    out = log_p.copy()
    out[:, floors] = np.maximum(log_p[:, floors], floor_of(values[:, floors]))
    return out


def floor_of(values: np.ndarray) -> np.ndarray:
    """The least log p-value a surprisal ``values`` can have: ``-value`` if routine, else none."""
    return np.where(values < ROUTINE_NATS, -values, -np.inf)
