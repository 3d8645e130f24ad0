"""The detector: per-identity baselines feeding an isolation forest, and its one score sign."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline

from features.baseline import IdentityBaseline
from features.summary import DeviationSummary


@dataclass(frozen=True)
class DetectorParams:
    """Hyperparameters of the detector, how history is split by UTC day, and the alert budget.

    History splits into warm-up days (prime first-seen state; in no fit), fit days (forest and
    action rarity) and the last ``calibration_days`` (held out: calibration and threshold).
    ``alerts_per_day`` is the number of identity-days that alert on a held-out normal day.
    """

    n_estimators: int = 200
    max_samples: int | float | str = "auto"
    alerts_per_day: float = 1.0
    min_history: int = 24  # windows an identity needs before its own baseline is trusted
    seed: int | None = None
    # Two days: the first day marks every identity, address and client as new.
    warmup_days: int = 2
    calibration_days: int | None = None  # None: a quarter of the days, at least one

    def as_dict(self) -> dict:
        return asdict(self)


def build_detector(params: DetectorParams) -> Pipeline:
    """An unfitted ``IdentityBaseline -> DeviationSummary -> IsolationForest`` pipeline."""
    baseline = IdentityBaseline(min_history=params.min_history)
    forest = IsolationForest(
        n_estimators=params.n_estimators, max_samples=params.max_samples, random_state=params.seed, n_jobs=1
    )
    return make_pipeline(baseline, DeviationSummary(), forest)


def anomaly_scores(detector: Pipeline, windows: pd.DataFrame) -> pd.Series:
    """Return anomaly scores; higher means more anomalous.

    scikit-learn's ``score_samples`` is higher for *normal* points; this is the one place in
    kaad where that sign is flipped.
    """
    # One thread (n_jobs=1): sklearn's threads add each tree's depths under a lock in the order
    # they finish, so the last bits of a score, and the calibrated ranks they tip, changed from
    # one run to the next (1.9x faster on two cores, but the same day scored differently).
    raw = detector.score_samples(windows)
    return pd.Series(-raw, index=windows.index, name="anomaly_score")


def window_sources(
    detector: Pipeline, rarity, windows: pd.DataFrame, surprisal: np.ndarray | None = None
) -> pd.DataFrame:
    """The two scores calibration combines, per window: the forest's and the action rarity's
    (the sum of ``surprisal``, :meth:`models.rarity.ActionRarity.transform_shared`, when the
    caller has it already)."""
    if surprisal is None:
        rarity_score = -rarity.score_samples_shared(windows) if len(windows) else np.zeros(0)
    else:
        rarity_score = surprisal.sum(axis=1)
    return pd.DataFrame(
        {
            "forest": anomaly_scores(detector, windows).to_numpy(),
            "rarity": rarity_score,
        },
        index=windows.index,
    )


def percentiles(reference: np.ndarray, scores: np.ndarray, *, side: Literal["left", "right"] = "right") -> np.ndarray:
    """Percentile (0-100) of each score among the sorted ``reference`` scores: the share at or
    below it (``side="right"``) or strictly below it (``"left"``)."""
    if len(reference) == 0:
        return np.full(len(scores), np.nan)
    return 100.0 * np.searchsorted(reference, scores, side=side) / len(reference)


def sensitive_count_scores(windows: pd.DataFrame) -> pd.Series:
    """Baseline to beat: the number of sensitive actions in a window (a rule-count heuristic)."""
    from features.windows import SENSITIVE

    cols = [c for c in SENSITIVE if c in windows.columns]
    return windows[cols].sum(axis=1).rename("anomaly_score")


def robust_z_scores(baseline: IdentityBaseline, windows: pd.DataFrame) -> pd.Series:
    """Baseline to beat: the largest absolute per-feature deviation from the identity's own."""
    dev = baseline.transform(windows)
    return pd.Series(np.abs(dev).max(axis=1), index=windows.index, name="anomaly_score")
