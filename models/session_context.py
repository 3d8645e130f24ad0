"""Context carried through an identity's day: a new address is the context of what follows it.

:class:`models.rarity.ActionRarity` weights each context novelty (a new source address, a new
network, a new client) by how unusual the window's most unusual action was: a new address
while doing the usual says little. But a value is new only in the window where it first
appears, and a session does not keep to the hour: an intruder on a stolen admin session from
a phone network abroad asked for ``/api`` at 10:24 and listed secrets at 11:05. The address
was new in the 10:00 window, with nothing unusual in it, and known by 11:00, so it raised
nothing (50 nodes, seed 3: the attacker ranked 6th of the day). Here each novelty counts once,
in the window of the identity's UTC day, from its own up to the next time the same context is
new, where the action it meets is most unusual.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def carried(context: np.ndarray, unusual: np.ndarray, identities: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each context novelty's surprisal, weighted and placed as the module says.

    Parameters
    ----------
    context : (windows, contexts) surprisal of each novelty where it occurred, else 0, unweighted.
    unusual : (windows,) weight of each window's most unusual action, in [0, 1].
    identities, starts : each window's identity and start (tz-aware or UTC timestamps).

    Examples
    --------
    >>> starts = pd.to_datetime(["2026-03-27 10:00", "2026-03-27 11:00", "2026-03-27 12:00"], utc=True)
    >>> carried(np.array([[4.0], [0.0], [0.0]]), np.array([0.0, 1.0, 0.5]), np.array(["a"] * 3), starts).tolist()
    [[0.0], [4.0], [0.0]]
    """
    out = np.zeros_like(context)
    if context.size == 0:
        return out
    stamps = pd.DatetimeIndex(starts)
    stamps = stamps.tz_convert("UTC") if stamps.tz is not None else stamps
    frame = pd.DataFrame(
        {
            "identity": identities,
            "day": stamps.normalize(),
            "start": stamps,
            "unusual": unusual,
            "row": np.arange(len(unusual)),
        }
    ).sort_values(["identity", "day", "start"], kind="stable")
    day = frame.groupby(["identity", "day"], sort=False).ngroup().to_numpy()
    rows = frame["row"].to_numpy()
    weight = frame["unusual"].to_numpy()
    for j in range(context.shape[1]):
        value = context[rows, j]
        new = value > 0
        if not new.any():
            continue
        # A segment: a novelty's window and the identity's later windows that day, up to the next.
        segment = pd.Series(new.astype(np.int64)).groupby(day).cumsum().to_numpy()
        live = np.flatnonzero(segment > 0)
        part = pd.DataFrame({"key": day[live] * (len(rows) + 1) + segment[live], "weight": weight[live]}, index=live)
        part["value"] = value[live]  # the segment's first window holds its one novelty
        grouped = part.groupby("key", sort=False)
        best = grouped["weight"].idxmax().to_numpy()  # the first window of the most unusual action
        novelty = grouped["value"].max().to_numpy()
        out[rows[best], j] = novelty * weight[best]
    return out
