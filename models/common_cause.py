"""Common cause: what improbably many identities do in the same window is not one actor's doing.

An API server restart, an add-on upgrade or a node drain moves many identities at once; an
intruder acts through one or two. :class:`models.rarity.ActionRarity` uses this to explain such
hours before it calls an action rare.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson

from models.identity_day import FLOOR

__all__ = ["MIN_OTHERS", "shared_rates", "window_starts"]


#: Other identities that must share an action in a window before it can have a common cause.
#: An intruder acts through one identity, or two (a pod's service account and the token it
#: mints, a stolen session and the account it impersonates); a restart or an upgrade moves
#: every informer or pod of a kind. With rare actions one other identity is already improbable
#: by chance, so improbability alone would let an intruder's second identity excuse the first.
MIN_OTHERS = 2


def window_starts(X) -> np.ndarray | None:
    """Each window's start from an ``(identity, window_start)`` index, or None."""
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "window_start" in index.names and "identity" in index.names:
        return np.asarray(index.get_level_values("window_start"))
    return None


def shared_rates(rate: np.ndarray, occurred: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Raise each term's rate where improbably many *other* identities did it in the same window.

    An API server restart makes every informer relist pods cluster-wide within a minute; an add-on
    upgrade moves every pod of a DaemonSet. Each of those identities does something it never
    did, but they do it together, which one intruder's foothold does not give. Where at least
    ``MIN_OTHERS`` others did it and their count is improbable under their own rates (Poisson,
    p below ``FLOOR``, the level at which a window counts as unusual at all), the hour has a
    common cause, and the identity's
    rate becomes its own plus the share of the others the cause moved. An identity alone with a
    rare action, or doing what many do routinely, keeps its rate. The count leaves the identity
    out, so one actor cannot explain itself.

    Examples
    --------
    >>> rate = np.full((6, 1), 0.01)
    >>> starts = np.array([0, 0, 0, 0, 0, 1])
    >>> occurred = np.array([[True], [True], [True], [True], [False], [True]])
    >>> shared_rates(rate, occurred, starts).round(2).ravel().tolist()  # 4 of 5 at 0; one alone at 1
    [0.74, 0.74, 0.74, 0.74, 0.01, 0.01]
    """
    groups = pd.factorize(pd.Series(starts))[0]
    n_others = np.bincount(groups)[groups] - 1.0
    hit = occurred.astype(np.float64)
    out = rate.copy()
    for j in range(rate.shape[1]):
        seen = np.bincount(groups, hit[:, j])[groups] - hit[:, j]
        expected = np.bincount(groups, rate[:, j])[groups] - rate[:, j]
        improbable = poisson.sf(seen - 1, expected) < FLOOR  # P(X >= seen)
        excess = np.clip((seen - expected) / np.maximum(n_others, 1.0), 0.0, 1.0)
        common = occurred[:, j] & (seen >= MIN_OTHERS) & improbable
        out[:, j] = np.where(common, rate[:, j] + (1.0 - rate[:, j]) * excess, rate[:, j])
    return out
