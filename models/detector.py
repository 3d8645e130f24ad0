"""The detector: per-identity baselines feeding an isolation forest, and its one score sign."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline

from features.baseline import IdentityBaseline
from features.summary import DeviationSummary


@dataclass(frozen=True)
class DetectorParams:
    """Hyperparameters of the detector and how its alert threshold is set.

    ``contamination`` is the share of training windows the threshold lets through; when
    ``alerts_per_day`` is given it wins, and the threshold is set so that the training days
    would have produced that many alerting windows a day on average.
    """

    n_estimators: int = 200
    max_samples: int | float | str = "auto"
    contamination: float = 0.005
    alerts_per_day: float | None = None
    min_history: int = 24  # windows an identity needs before its own baseline is trusted
    seed: int | None = None

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
    # score_samples is single-threaded; threads over tree chunks give ~1.9x on two cores.
    with joblib.parallel_config(backend="threading", n_jobs=2):
        raw = detector.score_samples(windows)
    return pd.Series(-raw, index=windows.index, name="anomaly_score")


def fit_threshold(scores: pd.Series, params: DetectorParams) -> float:
    """The score above which a window is an alert, learned on training scores."""
    values = scores.to_numpy(dtype=float)
    if len(values) == 0:
        return float("inf")
    if params.alerts_per_day is not None:
        starts = scores.index.get_level_values("window_start")
        n_days = max(1, len(pd.DatetimeIndex(starts).normalize().unique()))
        n_alerts = int(round(params.alerts_per_day * n_days))
        if n_alerts <= 0:
            return float(values.max())
        return float(np.sort(values)[::-1][min(n_alerts, len(values)) - 1]) - 1e-12
    return float(np.quantile(values, 1.0 - params.contamination))


def percentiles(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of each score among the sorted training ``reference`` scores."""
    if len(reference) == 0:
        return np.full(len(scores), np.nan)
    return 100.0 * np.searchsorted(reference, scores, side="right") / len(reference)


def sensitive_count_scores(windows: pd.DataFrame) -> pd.Series:
    """Baseline to beat: the number of sensitive actions in a window (a rule-count heuristic)."""
    from features.windows import SENSITIVE

    cols = [c for c in SENSITIVE if c in windows.columns]
    return windows[cols].sum(axis=1).rename("anomaly_score")


def robust_z_scores(baseline: IdentityBaseline, windows: pd.DataFrame) -> pd.Series:
    """Baseline to beat: the largest absolute per-feature deviation from the identity's own."""
    dev = baseline.transform(windows)
    return pd.Series(np.abs(dev).max(axis=1), index=windows.index, name="anomaly_score")
