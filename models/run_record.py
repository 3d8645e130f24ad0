"""What a training run records in MLflow: one parameter set, a name, short metric names, datasets.

Every entry point (``kaad train``, ``make demo``, any other engine) logs through
:func:`models.tracking.log_training`, which takes all of this from the training result and its
config here, so two runs differ in the MLflow UI only where their training differed.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Sequence

import pandas as pd

#: Logged metric name of each name ``TrainResult.metrics()`` uses, short enough for a narrow
#: column (README "Comparing runs in MLflow" explains each). None: not logged (the asked
#: ``alerts_per_day`` is a parameter; the measured one is logged under that name). Names not
#: listed are logged as they are.
METRIC_NAMES: dict[str, str | None] = {
    "eval_average_precision": "ap",
    "eval_roc_auc": "roc_auc",
    "eval_recall_at_10": "recall_at_10",
    "eval_recall_at_20": "recall_at_20",
    "eval_recall_at_50": "recall_at_50",
    "eval_recall_at_100": "recall_at_100",
    "eval_positives": "eval_attack_windows",
    "eval_windows": "eval_windows",
    "eval_labels": "eval_labels",
    "eval_unmatched_labels": "eval_unmatched_labels",
    "eval_worst_best_rank_in_day": "worst_attack_rank",
    "eval_scenarios_in_top20_of_day": "attacks_in_top20",
    "events": "events_read",
    "events_used": "train_events",
    "merged": "merged_events",
    "identities": "train_identities",
    "windows": "train_windows",
    "alerts_per_day": None,
    "expected_alerts_per_day": "alerts_per_day",
    "held_out_days": "days_held_out",
    "warmup_days": "days_warmup",
    "fit_days": "days_fit",
}
#: The metric promotion compares (and its name in runs logged before the short names).
PROMOTION_METRIC = "ap"
OLD_PROMOTION_METRIC = "eval_average_precision"
#: Decimals kept: differences beyond the fourth are noise for every metric logged, and a
#: rounded value reads in a narrow column.
DECIMALS = 4


def logged_metrics(metrics: dict[str, float], prefix: str = "") -> dict[str, float]:
    """Rename ``metrics`` to their logged names and round them; NaN (not measured) is left out."""
    out = {}
    for name, value in metrics.items():
        short = METRIC_NAMES.get(name, name)
        if short is None or value is None or not math.isfinite(float(value)):
            continue
        out[prefix + short] = round(float(value), DECIMALS)
    return out


def _text(value) -> str:
    """One spelling per value: 1 and 1.0 are both "1", so no entry point differs by a type."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def _when(value: pd.Timestamp) -> str:
    """A UTC time as a date when it is midnight, else to the minute."""
    value = pd.Timestamp(value).tz_convert("UTC") if pd.Timestamp(value).tzinfo else pd.Timestamp(value)
    return f"{value:%Y-%m-%d}" if value == value.normalize() else f"{value:%Y-%m-%d %H:%M}"


def data_range(bundle) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The training data's first window start and the end (exclusive) of its last window."""
    step = pd.tseries.frequencies.to_offset(bundle.window)
    return pd.Timestamp(bundle.training_start), pd.Timestamp(bundle.training_end) + step


def eval_range(result) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The evaluated windows' first start and last end (exclusive), if the run was evaluated."""
    scores = getattr(result, "eval_scores", None)
    if scores is None or not len(scores):
        return None
    starts = pd.DatetimeIndex(scores.index.get_level_values("window_start"))
    return starts.min(), starts.max() + pd.tseries.frequencies.to_offset(result.bundle.window)


def _proxies(proxies) -> list[str] | None:
    """The trusted proxies when they are not the default (None and loopback say the same)."""
    from events.source_address import parse_proxies

    nets = parse_proxies(None if proxies is None else [str(p) for p in proxies])
    return None if nets == parse_proxies(None) else [str(n) for n in nets]


def training_params(result, config=None) -> dict[str, str]:
    """The parameters of a training run: the detector's, the window, the data range.

    Values that were not set (None, or the default proxies) are left out rather than logged as
    "None"; ``since``, ``until``, the proxies and the rule sets come from ``config`` (a
    :class:`pipelines.train.TrainConfig`) when given.
    """
    bundle = result.bundle
    params: dict[str, object] = {**bundle.params, "window": bundle.window}
    if config is not None:
        params["since"] = None if config.since is None else _when(pd.Timestamp(config.since))
        params["until"] = None if config.until is None else _when(pd.Timestamp(config.until))
        params["trusted_proxies"] = _proxies(getattr(config, "trusted_proxies", None))
        # The rule sets whose firing the bundle learned (train --rules); absent when none.
        params["rules"] = ",".join(getattr(config, "rules", ())) or None
    start, end = data_range(bundle)
    params["data_start"], params["data_end"] = _when(start), _when(end)
    evaluated = eval_range(result)
    if evaluated is not None:
        params["eval_start"], params["eval_end"] = _when(evaluated[0]), _when(evaluated[1])
    return {key: _text(value) for key, value in sorted(params.items()) if value is not None}


def _days(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``2026-03-01..03-20``: the first and the last day touched (end is exclusive)."""
    last = end - pd.Timedelta(microseconds=1)
    tail = f"{last:%m-%d}" if last.year == start.year else f"{last:%Y-%m-%d}"
    return f"{start:%Y-%m-%d}..{tail}"


#: Parameters a run name leaves out: the range is said once as days, and the seed (every
#: `kaad train` sets one) would make every name longer without telling runs apart.
_NOT_IN_NAME = {"data_start", "data_end", "eval_start", "eval_end", "since", "until", "seed", "trusted_proxies"}


def run_name(params: dict[str, str], default=None) -> str:
    """A name that says what ran: ``iforest n=200 1/day 2026-03-01..03-20`` plus what is not default.

    ``default`` is the default :class:`models.detector.DetectorParams`; its values are left out
    of the name (but for the trees and the alert budget, which every name shows).

    Examples
    --------
    >>> run_name({"n_estimators": "100", "alerts_per_day": "2", "window": "30min", "seed": "0",
    ...           "data_start": "2026-03-01", "data_end": "2026-03-21"})
    'iforest n=100 2/day window=30min 2026-03-01..03-20'
    """
    from models.detector import DetectorParams

    defaults = {k: _text(v) for k, v in (default or DetectorParams()).as_dict().items() if v is not None}
    defaults["window"] = "1h"
    shown = _NOT_IN_NAME | {"n_estimators", "alerts_per_day"}
    parts = [f"iforest n={params.get('n_estimators', '?')}", f"{params.get('alerts_per_day', '?')}/day"]
    parts += [f"{key}={value}" for key, value in params.items() if key not in shown and defaults.get(key) != value]
    start, end = pd.Timestamp(params["data_start"]), pd.Timestamp(params["data_end"])
    return " ".join([*parts, _days(start, end)])


def windows_digest(windows: pd.DataFrame) -> str:
    """A digest of the feature windows, index included: equal for runs trained on the same data."""
    digest = hashlib.sha256(",".join(map(str, windows.columns)).encode())
    digest.update(pd.util.hash_pandas_object(windows, index=True).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _source(inputs: Sequence[str]):
    """An MLflow dataset source naming where ``inputs`` came from (their common directory)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.exceptions import MlflowException

    names = [str(i) for i in inputs]
    if len(names) == 1:
        uri = names[0]
    elif all("://" not in n for n in names):
        uri = os.path.commonpath([os.path.abspath(n) for n in names])
    else:
        uri = f"{names[0]} (+{len(names) - 1} more)"
    with warnings.catch_warnings():
        # "can be interpreted in multiple ways": MLflow's two local sources, either is right.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return resolve_dataset_source(uri)
        except MlflowException:  # eks://, cloudwatch://: no MLflow source type; the URI is what counts
            return HTTPDatasetSource(uri)


def log_datasets(result, *, inputs: Sequence[str], eval_inputs: Sequence[str] | None) -> None:
    """Log the training windows and the evaluation set as the active run's dataset inputs.

    The training digest is that of the feature windows; the evaluation digest is the start of
    ``eval_set_hash`` (events and labels), the hash promotion compares.
    """
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    start, end = data_range(result.bundle)
    train = from_pandas(
        result.windows,
        source=_source(inputs),
        name=f"history {_days(start, end)} ({result.bundle.window} windows)",
        digest=windows_digest(result.windows),
    )
    mlflow.log_input(train, context="training")
    evaluated = eval_range(result)
    if evaluated is None or not eval_inputs:
        return
    windows = result.eval_scores.index.to_frame(index=False)
    # Naive UTC: MLflow's schema inference reads a tz-aware column through a deprecated path.
    windows["window_start"] = pd.DatetimeIndex(windows["window_start"]).tz_convert(None)
    digest = result.eval_set_hash[:16] if result.eval_set_hash else None
    held = from_pandas(windows, source=_source(eval_inputs), name=f"evaluation {_days(*evaluated)}", digest=digest)
    mlflow.log_input(held, context="evaluation")
