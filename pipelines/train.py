"""Train a baseline on history: ingest, featurise causally, fit, evaluate (MLflow is separate)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from errors import KaadError
from events.time_range import RangeCounts, in_time_range
from features.featurise import DEFAULT_WINDOW, featurise, featurise_history
from features.profiles import ProfileBuilder
from models.detector import (
    DetectorParams,
    anomaly_scores,
    build_detector,
    fit_threshold,
    robust_z_scores,
    sensitive_count_scores,
)
from models.persistence import ModelBundle
from pipelines.evaluate import EvalReport, eval_set_hash, evaluate, read_labels
from pipelines.ingest import Ingestor, IngestStats, ingest
from reports.progress import step


@dataclass(frozen=True)
class TrainConfig:
    """What to train on and how."""

    window: str = DEFAULT_WINDOW
    params: DetectorParams = field(default_factory=DetectorParams)
    since: datetime | None = None
    until: datetime | None = None
    #: Networks whose X-Forwarded-For entries are believed (None: loopback only).
    trusted_proxies: tuple | None = None


@dataclass
class TrainResult:
    """A trained bundle, its training windows and scores, and the evaluation if labels came."""

    bundle: ModelBundle
    windows: pd.DataFrame
    scores: pd.Series
    stats: IngestStats
    fit_seconds: float
    evaluation: EvalReport | None = None
    baselines: dict[str, EvalReport] = field(default_factory=dict)
    eval_scores: pd.Series | None = None
    eval_set_hash: str | None = None  # what the evaluation was measured on (events and labels)
    #: Of the events read, those trained on and those outside --since/--until.
    in_range: RangeCounts = field(default_factory=RangeCounts)

    def metrics(self) -> dict[str, float]:
        s = self.scores.to_numpy()
        q = np.quantile(s, [0.5, 0.9, 0.99, 0.999]) if len(s) else [np.nan] * 4
        out = {
            "events": float(self.stats.n_events),
            "events_used": float(self.in_range.kept),
            "events_before_since": float(self.in_range.before),
            "events_after_until": float(self.in_range.after),
            "rejects": float(self.stats.n_rejected),
            "merged": float(self.stats.n_merged),
            "identities": float(self.windows.index.get_level_values("identity").nunique()),
            "windows": float(len(self.windows)),
            "threshold": self.bundle.threshold,
            "score_p50": q[0],
            "score_p90": q[1],
            "score_p99": q[2],
            "score_p999": q[3],
            "fit_seconds": self.fit_seconds,
            "training_alert_windows": float((s > self.bundle.threshold).sum()),
        }
        if self.evaluation is not None:
            out |= self.evaluation.metrics()
        return out


def train(
    inputs: list[str],
    config: TrainConfig,
    *,
    eval_inputs: list[str] | None = None,
    labels: Path | None = None,
    on_progress: Callable[[int, str], None] | None = None,
    aws=None,
) -> TrainResult:
    """Fit the detector on the history in ``inputs``; evaluate on ``eval_inputs`` + ``labels``.

    Examples
    --------
    >>> result = train(["tests/data/audit/normal_3days.jsonl"], TrainConfig(params=DetectorParams(seed=0)))
    >>> result.bundle.n_windows   # 3 days x (24 + 24 + 3) windows of cart, a kubelet, alice
    153
    """
    ingestor = Ingestor(on_progress=on_progress, aws=aws, trusted_proxies=config.trusted_proxies)
    in_range = RangeCounts()
    batches = in_time_range(ingestor.iter_batches(inputs), config.since, config.until, in_range)
    profiles = ProfileBuilder()
    windows, encoder = featurise_history(batches, freq=config.window, observe=profiles.observe)
    if windows.empty:
        raise KaadError("no events to train on in the given inputs and time range")
    detector = build_detector(config.params)
    start = time.perf_counter()
    detector.fit(windows)
    fit_seconds = time.perf_counter() - start
    scores = anomaly_scores(detector, windows)
    starts = windows.index.get_level_values("window_start")
    bundle = ModelBundle(
        detector=detector,
        encoder=encoder,
        feature_names=list(windows.columns),
        window=config.window,
        threshold=fit_threshold(scores, config.params),
        train_scores=np.sort(scores.to_numpy()),
        params=config.params.as_dict(),
        training_start=str(starts.min()),
        training_end=str(starts.max()),
        sources=[str(i) for i in inputs],
        n_windows=len(windows),
        n_events=in_range.kept,  # trained on, not merely read
        profiles=profiles.profiles(),
    )
    result = TrainResult(bundle, windows, scores, ingestor.stats, fit_seconds, in_range=in_range)
    if eval_inputs:
        if labels is None:
            raise KaadError("evaluation data needs labels (a labels.csv beside it, or --labels)")
        with step("train: evaluate on the held-out data"):
            _evaluate_into(result, detector, encoder, eval_inputs, labels, config, aws)
    return result


def _evaluate_into(
    result: TrainResult, detector, encoder, eval_inputs: list[str], labels: Path, config: TrainConfig, aws
) -> None:
    """Score the held-out data and record the evaluation and the baselines' in ``result``."""
    events = ingest(eval_inputs, aws=aws, trusted_proxies=config.trusted_proxies).events
    assert events is not None  # ingest collects the table unless told not to
    eval_windows = featurise(events, encoder, freq=config.window)
    try:
        raw_labels = Path(labels).read_bytes()
    except OSError as exc:
        raise KaadError(f"cannot read labels {str(labels)!r}: {exc.strerror}") from None
    truth = read_labels(labels, events, freq=config.window, data=raw_labels)
    result.eval_set_hash = eval_set_hash(events, raw_labels)
    result.eval_scores = anomaly_scores(detector, eval_windows)
    result.evaluation = evaluate(result.eval_scores, truth)
    result.baselines = {
        "robust_z": evaluate(robust_z_scores(detector[0], eval_windows), truth),
        "sensitive_count": evaluate(sensitive_count_scores(eval_windows), truth),
    }
