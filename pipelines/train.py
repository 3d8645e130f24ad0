"""Train a baseline on history: ingest, featurise causally, fit, evaluate (MLflow is separate)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from engine.train import EngineConfig, lake_history
from errors import KaadError
from events.time_range import RangeCounts, in_time_range
from features.enrich import kinds_of
from features.featurise import DEFAULT_WINDOW, featurise, featurise_history
from features.profiles import ProfileBuilder
from models.calibration import TailCalibrator, alert_threshold, left_out_log_p_values
from models.detector import (
    DetectorParams,
    anomaly_scores,
    build_detector,
    robust_z_scores,
    sensitive_count_scores,
    window_sources,
)
from models.identity_day import family_surprisal, identity_days
from models.persistence import ModelBundle
from models.rarity import ActionRarity
from models.recalibrate import reference_sources
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
    #: Sigma rule directories ("kaad": kaad's own) whose firing on the history is learned (rules/).
    rules: tuple[str, ...] = ()
    #: Where a lake is featurised (``--engine``, ``--scheduler``; engine/train.py).
    engine: EngineConfig = field(default_factory=EngineConfig)


#: Held-out windows a kind of identity needs to be calibrated against its own kind (as many as
#: :class:`models.calibration.TailCalibrator` asks of a local reference).
MIN_KIND_WINDOWS = TailCalibrator().min_reference


@dataclass(frozen=True)
class DaySplit:
    """History's UTC days: warm-up (in no fit), fit (forest, rarity), held out (calibration)."""

    warmup: list[pd.Timestamp]
    fit: list[pd.Timestamp]
    held_out: list[pd.Timestamp]


def split_days(days, params: DetectorParams, kind_windows: pd.DataFrame | None = None) -> DaySplit:
    """Split sorted UTC days; short histories give up warm-up first, then held-out days.

    Held out: ``calibration_days``, else a quarter of the days, at least one, always leaving a
    fit day. Warm-up: ``warmup_days``, fewer if the fit would be left without a day. Three
    days give one of each; two days give no warm-up (day 1 novelty then reaches the forest).

    ``kind_windows`` (windows per day and identity kind, days as index) lets a quarter grow:
    each kind that acts enough after warm-up must have ``MIN_KIND_WINDOWS`` held-out windows,
    so that calibration judges it against its own kind (a week's last quarter is a weekend,
    when people hardly work: their weekday windows would be judged against controllers').
    Fit days are moved to the held-out slice, latest first, while two remain.

    Examples
    --------
    >>> s = split_days(list(range(8)), DetectorParams())
    >>> s.warmup, s.fit, s.held_out
    ([0, 1], [2, 3, 4, 5], [6, 7])
    >>> s = split_days([0, 1, 2], DetectorParams())
    >>> s.warmup, s.fit, s.held_out
    ([0], [1], [2])
    """
    days = sorted(days)
    if len(days) < 2:
        raise KaadError(
            f"training needs at least two UTC days of history (one to fit, one held out to set "
            f"the threshold); got {len(days)}"
        )
    asked = params.calibration_days
    n_held = max(1, round(len(days) / 4) if asked is None else asked)
    n_held = min(n_held, len(days) - 1)
    n_warm = max(0, min(params.warmup_days, len(days) - n_held - 1))
    if asked is None and kind_windows is not None:
        after = kind_windows.reindex(days[n_warm:]).fillna(0)
        kinds = after.columns[after.sum() >= MIN_KIND_WINDOWS]
        while (
            len(days) - n_held - n_warm > 2
            and (after[kinds].iloc[len(after) - n_held :].sum() < MIN_KIND_WINDOWS).any()
        ):
            n_held += 1
    return DaySplit(days[:n_warm], days[n_warm : len(days) - n_held], days[len(days) - n_held :])


@dataclass
class TrainResult:
    """A trained bundle, its windows, the held-out identity-days' scores, and the evaluation.

    ``scores`` are the held-out identity-days' scores (index identity, day): what the threshold
    was set on. ``held_out`` are the held-out windows' sources, p-values and evidence.
    """

    bundle: ModelBundle
    windows: pd.DataFrame
    scores: pd.Series
    stats: IngestStats
    fit_seconds: float
    split: DaySplit | None = None
    held_out: pd.DataFrame | None = None
    constant_features: list[str] = field(default_factory=list)
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
            "held_out_alerts": float((s > self.bundle.threshold).sum()),
            "constant_features": float(len(self.constant_features)),
        }
        if self.bundle.alert is not None:
            out |= {
                "alerts_per_day": float(self.bundle.alert.alerts_per_day),
                "expected_alerts_per_day": float(self.bundle.alert.expected_alerts_per_day),
                "held_out_days": float(self.bundle.alert.n_days),
                # What the held-out sample can say about the threshold (models/threshold.py).
                "held_out_id_days": float(self.bundle.alert.n_identity_days),
                "id_days_needed": float(self.bundle.alert.identity_days_needed),
                "held_out_too_small": float(self.bundle.alert.too_small),
            }
            low, high = self.bundle.alert.alerts_per_day_range
            if math.isfinite(low) and math.isfinite(high):  # none without held-out identity-days
                out |= {"alerts_per_day_low": float(low), "alerts_per_day_high": float(high)}
            if math.isfinite(self.bundle.alert.bound_threshold):  # none where the sample is too small
                out["threshold_95"] = float(self.bundle.alert.bound_threshold)
        if self.split is not None:
            out |= {"warmup_days": float(len(self.split.warmup)), "fit_days": float(len(self.split.fit))}
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
    >>> len(result.split.warmup), len(result.split.fit), len(result.split.held_out)
    (1, 1, 1)
    """
    lake = lake_history(inputs, config, config.engine)  # None: not a lake, streamed here
    spill = None
    if lake is None:
        ingestor = Ingestor(on_progress=on_progress, aws=aws, trusted_proxies=config.trusted_proxies)
        in_range = RangeCounts()
        batches = in_time_range(ingestor.iter_batches(inputs), config.since, config.until, in_range)
        if config.rules:
            from rules.learn import RuleSpill  # pySigma is imported only when rules are asked for

            spill = RuleSpill(config.rules)
            batches = spill.tee(batches)
        profiles = ProfileBuilder()
        # A controller's copies of its known owners' pods are counted here, as they happened: the
        # rates and the calibration's reference stand on the cluster routinely creating host
        # workloads; only a scored day excuses the controller's own copies (features/precedent.py).
        # Excused here too, the rarity reference lost its top and its tail (quick seed 3: max 40.9
        # -> 8.2 nats, scale 2.07 -> 0.93), and a CI deployer's first role write went from 7.1 to
        # 37.7 nats of rarity evidence, an add-on's DaemonSet patch from 7.1 to 30.6.
        windows, encoder = featurise_history(batches, freq=config.window, observe=profiles.observe, excuse_copies=False)
        stats = ingestor.stats
    else:
        if config.rules:  # the rules run here, over the lake's events read once more
            from engine.train import lake_rule_spill

            spill = lake_rule_spill(lake, config.rules)
        windows, encoder, profiles = lake.windows, lake.encoder, lake.profiles
        in_range, stats = lake.in_range, lake.stats()
    if windows.empty:
        raise KaadError("no events to train on in the given inputs and time range")
    params = config.params
    day_of = pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize()
    kinds = pd.Series(kinds_of(windows.index.get_level_values("identity").tolist()), index=day_of)
    split = split_days(day_of.unique(), params, pd.crosstab(kinds.index, kinds.to_numpy()))
    fit_windows = windows[day_of.isin(split.fit)]
    detector = build_detector(params)
    start = time.perf_counter()
    detector.fit(fit_windows)
    rarity = ActionRarity(min_history=params.min_history).fit(fit_windows)
    fit_seconds = time.perf_counter() - start
    # Held-out days are judged as the daily job judges a new day: each against the rarity
    # counts of every other day learned (models/recalibrate.py), so the reference and a scored
    # day see the same rates; the day state judges them again as it learns.
    held_frames = [windows[day_of == day] for day in split.held_out]
    held_windows = pd.concat(held_frames)
    rarity.partial_fit(held_windows)
    sources = reference_sources(anomaly_scores(detector, held_windows).to_numpy(), held_windows, rarity)
    # Recurring actions add to identity-days, judged with the same counts.
    families = [family_surprisal(rarity.without(held), held) for held in held_frames]
    calibrator = TailCalibrator().fit(sources)
    # The threshold and the percentiles are set on held-out windows judged as scoring will
    # judge a new one: against the other held-out windows, not a reference holding itself.
    log_p = pd.Series(left_out_log_p_values(calibrator, sources), index=sources.index)
    days = identity_days(log_p, surprisal=pd.concat(families), log=True).days
    alert = alert_threshold(days["anomaly_score"], len(split.held_out), alerts_per_day=params.alerts_per_day)
    held_out = sources.assign(p_value=np.exp(log_p), evidence=-log_p)
    starts = windows.index.get_level_values("window_start")
    bundle = ModelBundle(
        detector=detector,
        encoder=encoder,
        feature_names=list(windows.columns),
        window=config.window,
        threshold=alert.threshold,
        train_scores=np.sort(days["anomaly_score"].to_numpy()),
        params=params.as_dict(),
        rarity=rarity,
        calibrator=calibrator,
        alert=alert,
        training_start=str(starts.min()),
        training_end=str(starts[day_of.isin(split.held_out)].max()),
        sources=[str(i) for i in inputs],
        n_windows=len(windows),
        n_events=in_range.kept,  # trained on, not merely read
        profiles=profiles.profiles(),
        rule_history=spill.learn().as_dict() if spill is not None else None,
        held_out_windows=held_windows,
        held_out_forest=sources["forest"].to_numpy(),
    )
    constant = [str(c) for c in fit_windows.columns[fit_windows.nunique() <= 1]]
    result = TrainResult(
        bundle,
        windows,
        days["anomaly_score"],
        stats,
        fit_seconds,
        split=split,
        held_out=held_out,
        constant_features=constant,
        in_range=in_range,
    )
    if eval_inputs:
        if labels is None:
            raise KaadError("evaluation data needs labels (a labels.csv beside it, or --labels)")
        with step("train: evaluate on the held-out data"):
            _evaluate_into(result, eval_inputs, labels, config, aws)
    return result


def window_evidence(bundle: ModelBundle, windows: pd.DataFrame, rarity: ActionRarity | None = None) -> pd.Series:
    """Each window's calibrated evidence, ``-log p`` of its combined p-value (higher is rarer)."""
    assert bundle.rarity is not None and bundle.calibrator is not None  # load_bundle refuses older bundles
    sources = window_sources(bundle.detector, rarity or bundle.rarity, windows)
    # As a log: p underflows to 0 far beyond every held-out window.
    log_p = bundle.calibrator.combined_log_p_values(sources) if len(sources) else np.zeros(0)
    return pd.Series(-log_p, index=windows.index, name="anomaly_score")


def _evaluate_into(result: TrainResult, eval_inputs: list[str], labels: Path, config: TrainConfig, aws) -> None:
    """Score the evaluation data and record the evaluation and the baselines' in ``result``."""
    detector = result.bundle.detector
    events = ingest(eval_inputs, aws=aws, trusted_proxies=config.trusted_proxies).events
    assert events is not None  # ingest collects the table unless told not to
    eval_windows = featurise(events, result.bundle.encoder, freq=config.window)
    try:
        raw_labels = Path(labels).read_bytes()
    except OSError as exc:
        raise KaadError(f"cannot read labels {str(labels)!r}: {exc.strerror}") from None
    truth = read_labels(labels, events, freq=config.window, data=raw_labels)
    result.eval_set_hash = eval_set_hash(events, raw_labels)
    result.eval_scores = window_evidence(result.bundle, eval_windows)
    result.evaluation = evaluate(result.eval_scores, truth)
    result.baselines = {
        "robust_z": evaluate(robust_z_scores(detector[0], eval_windows), truth),
        "sensitive_count": evaluate(sensitive_count_scores(eval_windows), truth),
    }
