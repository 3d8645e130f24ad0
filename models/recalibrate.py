"""The calibration reference judged with today's action rates.

The rarity source of a window is ``-log`` of the rates its actions had when it was judged, and
the rates move a little with every day the state learns. Ranked against held-out windows
judged with older rates, an identity's routine action drifts past all of its own held-out
windows: ingress-nginx reads its secrets in 346 of 504 windows, 0.3911 nats today against at
most 0.39 held out, and its own reference put that hour at ``p = e^-15`` (50 nodes, seed 1;
cert-manager's 22% secret reads likewise, seed 2, 10 nats a day). Judging the held-out windows
again with the rates that judge today's makes the same actions tie again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from models.calibration import TailCalibrator


def recalibrated(calibrator: TailCalibrator, forest: np.ndarray, windows: pd.DataFrame, rarity) -> TailCalibrator:
    """A copy of ``calibrator`` fitted on the held-out ``windows`` with their rarity judged by ``rarity``.

    ``forest`` is the held-out windows' forest score (the forest does not move after training).
    """
    score = -rarity.score_samples_shared(windows) if len(windows) else np.zeros(0)
    sources = pd.DataFrame({"forest": np.asarray(forest, dtype=np.float64), "rarity": score}, index=windows.index)
    return clone(calibrator).fit(sources)
