"""Score a day: featurise against the model's baselines, rank windows, explain every alerting one."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from errors import KaadError
from events.schema import EVENT_SCHEMA, to_pandas
from events.time_range import RangeCounts, one_day
from features.enrich import identity_kind
from features.featurise import WindowAccumulator, mark_novelty, prepare_events, window_chunks
from models.detector import anomaly_scores, percentiles
from models.explain import Reason, explain, top_calls
from models.persistence import ModelBundle
from pipelines.allowlist import Allowlist, Entry, guarded_reasons
from pipelines.ingest import Ingestor, IngestStats


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
    is_alert: bool = False  # above the threshold or at/above the alert percentile
    allowlist_note: str = ""  # an entry matched but could not hide this window, and why


@dataclass
class ScoreResult:
    """Everything the daily report shows."""

    day: date | None
    # features + anomaly_score, percentile, is_anomaly, is_alert, suppressed, suppressed_by,
    # suppressed_reason, allowlist_note; sorted by anomaly_score, highest first
    windows: pd.DataFrame
    findings: list[Finding]  # every alerting window and the top ones, explained, by rank
    identities: pd.DataFrame  # day view: one row per identity
    stats: IngestStats
    threshold: float
    activity: dict[str, pd.DataFrame] = field(default_factory=dict)  # identity -> requests per window
    expired_allowlist: list[Entry] = field(default_factory=list)
    #: Events read but not scored because they are not of ``day`` (one day is scored per run).
    n_other_days: int = 0
    #: Where ``threshold`` sits among the training windows' scores (0-100), as the table's percentiles.
    threshold_percentile: float = float("nan")

    @property
    def n_suppressed(self) -> int:
        return int(self.windows["suppressed"].sum())

    @property
    def n_alerts(self) -> int:
        """Windows that alert and are not suppressed: what --notify publishes."""
        return int((self.windows["is_alert"] & ~self.windows["suppressed"]).sum())

    def n_at_or_above(self, percentile: float) -> int:
        live = self.windows[~self.windows["suppressed"]]
        return int((live["percentile"] >= percentile).sum())


#: (identity, window_start) -> (user agents, namespaces) seen in that window.
_Seen = dict[Hashable, tuple[list[str], list[str]]]


@dataclass
class _DayFeatures:
    windows: pd.DataFrame
    values: _Seen  # for the allowlist
    spill: Path | None  # the day's events as read (event table schema), for explanations


def _featurise_day(batches: Iterable, bundle: ModelBundle, spill_dir: Path) -> _DayFeatures:
    """Causal novelty within the day against the model's history, chunk by chunk (bounded memory).

    The events themselves go to a temporary Parquet file as they came (no conversion), so the
    explained identities' calls can be read back later without holding the day in memory.
    """
    encoder = copy.deepcopy(bundle.encoder)  # learns the day as it goes; the bundle stays as trained
    accumulator = WindowAccumulator()
    values: _Seen = {}
    writer, path = None, spill_dir / "events.parquet"
    for done, open_from, raw in window_chunks(batches, bundle.window):
        marked = mark_novelty(done, encoder)
        encoder.partial_fit(done)
        accumulator.add(marked, open_from)
        grouped = marked.groupby(["identity", "window_start"], sort=False, observed=True)
        for key, uas in grouped["user_agent"].unique().items():
            old = values.get(key, ([], []))
            values[key] = (sorted(set(old[0]) | {str(u) for u in uas if pd.notna(u)}), old[1])
        for key, nss in grouped["target_namespace"].unique().items():
            values[key] = (
                values[key][0],
                sorted(set(values[key][1]) | {str(n) for n in nss if pd.notna(n) and str(n)}),
            )
        table = (
            raw if isinstance(raw, pa.Table) else pa.Table.from_pandas(raw, schema=EVENT_SCHEMA, preserve_index=False)
        )
        if writer is None:
            writer = pq.ParquetWriter(str(path), EVENT_SCHEMA)
        writer.write_table(table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
    if writer is not None:
        writer.close()
    return _DayFeatures(accumulator.windows(), values, path if writer is not None else None)


def _explained_events(path: Path | None, identities: list[str], bundle: ModelBundle) -> pd.DataFrame:
    """The explained identities' events, marked again as in the first pass.

    Novelty is per identity, so replaying only these identities' events in time order against
    the model's history gives the same flags (the cluster-wide new-network flag can differ
    when another identity used the network earlier that day; the model's input did not).
    """
    if path is None or not identities:
        return pd.DataFrame(columns=["identity", "window_start"])
    wanted = pa.array(identities, pa.string())
    parts = []
    for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=65_536):  # a batch at a time
        keep = pc.is_in(batch.column("identity"), value_set=wanted)
        if pc.any(keep).as_py():
            parts.append(pa.Table.from_batches([batch]).filter(keep))
    events = to_pandas(pa.concat_tables(parts) if parts else EVENT_SCHEMA.empty_table())
    events = events.sort_values("timestamp", kind="stable")
    return mark_novelty(prepare_events(events, bundle.window), copy.deepcopy(bundle.encoder))


def _main_day(windows: pd.DataFrame) -> date | None:
    if windows.empty:
        return None
    per_day = (
        np.expm1(windows["log_requests"])
        .groupby(pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize())
        .sum()
    )
    return per_day.idxmax().date()


def _apply_allowlist(out: pd.DataFrame, values: _Seen, allowlist: Allowlist | None, bundle: ModelBundle) -> dict:
    """Mark the windows the allowlist hides (in place); return (identity, window_start) -> Decision.

    Only windows some entry matches are looked at further: their deviations say which
    guarded reasons they carry, and an entry hides a window only if it covers all of them.
    """
    for col, empty in (("suppressed", False), ("suppressed_by", ""), ("suppressed_reason", ""), ("allowlist_note", "")):
        out[col] = empty
    if allowlist is None or out.empty:
        return {}
    keys = [key for key in out.index if any(e.matches(key[0], *values.get(key, ([], []))) for e in allowlist.entries)]
    if not keys:
        return {}
    feat = out.loc[keys, bundle.feature_names]
    dev = pd.DataFrame(bundle.detector[0].transform(feat), index=feat.index, columns=bundle.feature_names)
    flags = guarded_reasons(feat, dev)
    decisions = {}
    for key, row in zip(keys, flags.to_numpy(), strict=True):
        guarded = [name for name, on in zip(flags.columns, row, strict=True) if on]
        decisions[key] = allowlist.decide(key[0], *values.get(key, ([], [])), guarded)
    hidden = {k: d.entry for k, d in decisions.items() if d.entry is not None}
    noted = [k for k, d in decisions.items() if d.note]
    if hidden:
        out.loc[list(hidden), "suppressed"] = True
        out.loc[list(hidden), "suppressed_by"] = [e.label for e in hidden.values()]
        out.loc[list(hidden), "suppressed_reason"] = [e.reason for e in hidden.values()]
    if noted:
        out.loc[noted, "allowlist_note"] = [decisions[k].note for k in noted]
    return decisions


def score_batches(
    batches: Iterable,
    bundle: ModelBundle,
    *,
    day: date | None = None,
    top: int = 20,
    threshold_percentile: float | None = None,
    alert_percentile: float | None = None,
    allowlist: Allowlist | None = None,
    stats: IngestStats | None = None,
) -> ScoreResult:
    """Score a stream of event batches (time-ordered) against ``bundle`` and explain windows.

    Every window that alerts is explained: above the threshold (``threshold_percentile`` of
    the training scores, or the model's), or at or above ``alert_percentile`` (the CLI's
    ``--fail-on``). The ``top`` windows are explained too, alerting or not, for the terminal.
    Memory is bounded by a chunk of events plus the day's windows: events are featurised chunk
    by chunk and spilled to a temporary Parquet file, from which only the explained identities'
    events are read back. Without ``day``, the day holding most requests is scored. Either
    way the events of other days are counted (``n_other_days``), not scored.
    """
    in_day = RangeCounts()
    if day is not None:
        batches = one_day(batches, day, in_day)
    with tempfile.TemporaryDirectory(prefix="kaad-score-") as tmp:
        feats = _featurise_day(batches, bundle, Path(tmp))
        windows = feats.windows
        bundle.check_schema(windows)
        day = day or _main_day(windows)
        n_other_days = in_day.left_out
        if day is not None and not windows.empty:
            starts = pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize()
            on_day = starts == pd.Timestamp(day, tz="UTC")
            # The events of the windows left out, as their request counts say.
            n_other_days += int(np.rint(np.expm1(windows.loc[~on_day, "log_requests"]).sum()))
            windows = windows[on_day]
        if windows.empty:
            scores = pd.Series([], dtype=float, index=windows.index, name="anomaly_score")
        else:
            scores = anomaly_scores(bundle.detector, windows)
        out = windows.copy()
        out["anomaly_score"] = scores
        out["percentile"] = percentiles(bundle.train_scores, scores.to_numpy())
        cut = (
            bundle.threshold
            if threshold_percentile is None
            else float(np.quantile(bundle.train_scores, threshold_percentile / 100.0))
        )
        out["is_anomaly"] = out["anomaly_score"] > cut
        out["is_alert"] = (
            out["is_anomaly"]
            if alert_percentile is None
            else (out["is_anomaly"] | (out["percentile"] >= alert_percentile))
        )
        out = out.sort_values("anomaly_score", ascending=False, kind="stable")
        decisions = _apply_allowlist(out, feats.values, allowlist, bundle)
        positions = np.flatnonzero((np.arange(len(out)) < top) | out["is_alert"].to_numpy(dtype=bool))
        head = out.iloc[positions]
        marked = _explained_events(
            feats.spill, sorted(set(head.index.get_level_values("identity"))) if len(head) else [], bundle
        )
    baseline = bundle.detector[0]
    by_window = marked.groupby(["identity", "window_start"], sort=False, observed=True).indices if len(marked) else {}
    findings: list[Finding] = []
    if len(head):
        feat = head[bundle.feature_names]
        dev = pd.DataFrame(baseline.transform(feat), index=feat.index, columns=bundle.feature_names)
        usual = pd.DataFrame(baseline.usual(feat), index=feat.index, columns=bundle.feature_names)
    for position, key in zip(positions, head.index, strict=True):
        identity, start = key
        rows = marked.iloc[by_window.get((identity, start), [])]
        row = out.loc[key]
        decision = decisions.get(key)
        findings.append(
            Finding(
                int(position) + 1,
                identity,
                identity_kind(pd.DataFrame({"identity": [identity]})).iloc[0],
                start,
                float(row["anomaly_score"]),
                float(row["percentile"]),
                bool(row["is_anomaly"]),
                len(rows),
                explain(
                    row[bundle.feature_names],
                    dev.loc[key],
                    usual.loc[key],
                    rows,
                    bundle.profiles.get(identity, {}),
                    identity,
                ),
                top_calls(rows),
                None if decision is None else decision.entry,
                is_alert=bool(row["is_alert"]),
                allowlist_note=str(row["allowlist_note"]),
            )
        )
    activity: dict[str, pd.DataFrame] = {}
    for finding in findings:
        if finding.identity in activity:
            continue
        own = cast(pd.DataFrame, out.xs(finding.identity, level="identity"))  # rows of a frame: a frame
        per = own[["log_requests", "anomaly_score"]].copy()
        per["requests"] = np.expm1(per.pop("log_requests")).round().astype(int)
        activity[finding.identity] = per.sort_index()
    return ScoreResult(
        day,
        out,
        findings,
        _day_view(out),
        stats or IngestStats(),
        cut,
        activity,
        [] if allowlist is None else allowlist.expired,
        n_other_days,
        float(percentiles(bundle.train_scores, np.array([cut]))[0]),
    )


def _day_view(windows: pd.DataFrame) -> pd.DataFrame:
    if windows.empty:
        return pd.DataFrame(
            columns=["identity", "peak_score", "peak_percentile", "anomalous_windows", "windows", "suppressed"]
        )
    frame = windows.reset_index()
    grouped = frame.groupby("identity", sort=False)
    view = pd.DataFrame(
        {
            "peak_score": grouped["anomaly_score"].max(),
            "peak_percentile": grouped["percentile"].max(),
            "anomalous_windows": grouped["is_anomaly"].sum().astype(int),
            "windows": grouped.size(),
            "suppressed": grouped["suppressed"].all(),
        }
    )
    return view.sort_values("peak_score", ascending=False).reset_index()


def score_day(
    inputs: list[str],
    bundle: ModelBundle,
    *,
    day: date | None = None,
    top: int = 20,
    threshold_percentile: float | None = None,
    alert_percentile: float | None = None,
    allowlist: Allowlist | None = None,
    on_progress: Callable[[int, str], None] | None = None,
    aws=None,
    trusted_proxies: tuple | None = None,
) -> ScoreResult:
    """Read a day of audit logs (anything ingest reads, remote sources with ``aws``) and score it,
    streaming: memory does not grow with the size of the day. ``trusted_proxies`` as in
    :func:`pipelines.ingest.ingest`."""
    ingestor = Ingestor(on_progress=on_progress, aws=aws, trusted_proxies=trusted_proxies)
    result = score_batches(
        ingestor.iter_batches(inputs),
        bundle,
        day=day,
        top=top,
        threshold_percentile=threshold_percentile,
        alert_percentile=alert_percentile,
        allowlist=allowlist,
        stats=ingestor.stats,
    )
    if result.stats.n_events == 0:
        raise KaadError("no events to score in the given inputs")
    if result.windows.empty:
        raise KaadError(f"no events on {result.day} in the given inputs")
    return result
