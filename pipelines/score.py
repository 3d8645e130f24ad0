"""Score a day: featurise against the model's baselines, rank windows, explain the top ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from errors import KaadError
from features.enrich import identity_kind
from features.featurise import mark_novelty, prepare_events
from features.windows import aggregate_windows
from models.detector import anomaly_scores, percentiles
from models.explain import Reason, explain, top_calls
from models.persistence import ModelBundle
from pipelines.allowlist import Allowlist, Entry
from pipelines.ingest import IngestStats, ingest


@dataclass
class Finding:
    """One ranked window with its reasons and the API calls behind it."""

    rank: int
    identity: str
    kind: str
    window_start: pd.Timestamp
    anomaly_score: float
    percentile: float
    is_anomaly: bool
    requests: int
    reasons: list[Reason]
    calls: pd.DataFrame
    suppressed_by: Entry | None = None


@dataclass
class ScoreResult:
    """Everything the daily report shows."""

    day: date | None
    windows: pd.DataFrame            # features + anomaly_score, percentile, is_anomaly, suppressed
    findings: list[Finding]          # the top windows, explained (suppressed ones included)
    identities: pd.DataFrame         # day view: one row per identity
    stats: IngestStats
    threshold: float
    activity: dict[str, pd.DataFrame] = field(default_factory=dict)  # identity -> requests per window
    expired_allowlist: list[Entry] = field(default_factory=list)

    @property
    def n_suppressed(self) -> int:
        return int(self.windows["suppressed"].sum())

    def n_at_or_above(self, percentile: float) -> int:
        live = self.windows[~self.windows["suppressed"]]
        return int((live["percentile"] >= percentile).sum())


def _day_filter(events: pd.DataFrame, day: date | None) -> pd.DataFrame:
    if day is None:
        return events
    start = pd.Timestamp(day, tz="UTC")
    keep = (events["timestamp"] >= start) & (events["timestamp"] < start + pd.Timedelta(days=1))
    return events[keep.to_numpy()]


def score_events(events: pd.DataFrame, bundle: ModelBundle, *, day: date | None = None, top: int = 20,
                 threshold_percentile: float | None = None, allowlist: Allowlist | None = None,
                 stats: IngestStats | None = None) -> ScoreResult:
    """Score the events of a day against ``bundle``; explain the ``top`` windows."""
    events = _day_filter(events, day)
    marked = mark_novelty(prepare_events(events, bundle.window), bundle.encoder)
    windows = aggregate_windows(marked)
    bundle.check_schema(windows)
    if windows.empty:
        scores = pd.Series([], dtype=float, index=windows.index, name="anomaly_score")
    else:
        scores = anomaly_scores(bundle.detector, windows)
    out = windows.copy()
    out["anomaly_score"] = scores
    out["percentile"] = percentiles(bundle.train_scores, scores.to_numpy())
    cut = bundle.threshold if threshold_percentile is None else float(
        np.quantile(bundle.train_scores, threshold_percentile / 100.0))
    out["is_anomaly"] = out["anomaly_score"] > cut
    out["suppressed"] = False
    out["suppressed_reason"] = ""
    out = out.sort_values("anomaly_score", ascending=False, kind="stable")

    baseline = bundle.detector[0]
    by_window = marked.groupby(["identity", "window_start"], sort=False, observed=True).indices
    profiles = bundle.profiles
    findings: list[Finding] = []
    head = out.head(top) if top > 0 else out.iloc[:0]
    if len(head):
        feats = head[bundle.feature_names]
        dev = pd.DataFrame(baseline.transform(feats), index=feats.index, columns=bundle.feature_names)
        usual = pd.DataFrame(baseline.usual(feats), index=feats.index, columns=bundle.feature_names)
    for rank, key in enumerate(head.index, start=1):
        identity, start = key
        rows = marked.iloc[by_window.get((identity, start), [])]
        entry = allowlist.match(identity, rows) if allowlist is not None else None
        if entry is not None:
            out.loc[key, ["suppressed", "suppressed_reason"]] = [True, entry.reason]
        row = out.loc[key]
        findings.append(Finding(
            rank, identity, identity_kind(pd.DataFrame({"identity": [identity]})).iloc[0], start,
            float(row["anomaly_score"]), float(row["percentile"]), bool(row["is_anomaly"]), len(rows),
            explain(row[bundle.feature_names], dev.loc[key], usual.loc[key], rows, profiles.get(identity, {}), identity),
            top_calls(rows), entry))
    if allowlist is not None:  # beyond the top too: suppressed windows are all counted
        for key in out.index[top:]:
            rows = marked.iloc[by_window.get(key, [])]
            entry = allowlist.match(key[0], rows)
            if entry is not None:
                out.loc[key, ["suppressed", "suppressed_reason"]] = [True, entry.reason]
    activity = {}
    for finding in findings:
        identity = finding.identity
        per = out.xs(identity, level="identity")[["log_requests", "anomaly_score"]].copy()
        per["requests"] = np.expm1(per.pop("log_requests")).round().astype(int)
        activity[identity] = per.sort_index()
    return ScoreResult(day, out, findings, _day_view(out), stats or IngestStats(), cut, activity,
                       [] if allowlist is None else allowlist.expired)


def _day_view(windows: pd.DataFrame) -> pd.DataFrame:
    if windows.empty:
        return pd.DataFrame(columns=["identity", "peak_score", "peak_percentile", "anomalous_windows",
                                     "windows", "suppressed"])
    frame = windows.reset_index()
    grouped = frame.groupby("identity", sort=False)
    view = pd.DataFrame({
        "peak_score": grouped["anomaly_score"].max(),
        "peak_percentile": grouped["percentile"].max(),
        "anomalous_windows": grouped["is_anomaly"].sum().astype(int),
        "windows": grouped.size(),
        "suppressed": grouped["suppressed"].all()})
    return view.sort_values("peak_score", ascending=False).reset_index()


def score_day(inputs: list[str], bundle: ModelBundle, *, day: date | None = None, top: int = 20,
              threshold_percentile: float | None = None, allowlist: Allowlist | None = None,
              on_progress: Callable[[int, str], None] | None = None, aws=None) -> ScoreResult:
    """Read a day of audit logs (anything ingest reads, remote sources with ``aws``) and score it."""
    result = ingest(inputs, on_progress=on_progress, aws=aws)
    events = result.events
    if day is None and not events.empty:
        days = events["timestamp"].dt.normalize().value_counts()
        day = days.index[0].date()  # the day most events belong to
    if events.empty:
        raise KaadError("no events to score in the given inputs")
    return score_events(events, bundle, day=day, top=top, threshold_percentile=threshold_percentile,
                        allowlist=allowlist, stats=result.stats)
