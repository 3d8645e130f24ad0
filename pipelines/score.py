"""Score a day: featurise against the model's baselines, rank windows, explain every alerting one."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Hashable, Iterable, Sequence
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
from models.detector import percentiles, window_sources
from models.evidence import DayEvidence, EvidenceSource, combined, utc_day
from models.explain import FOREST, Reason, explain, term_reasons, top_calls
from models.identity_day import family_surprisal, identity_days
from models.persistence import ModelBundle
from pipelines.allowlist import Allowlist, Entry, guarded_reasons
from pipelines.ingest import Ingestor, IngestStats


@dataclass
class WindowFinding:
    """One window of a finding, with its own reasons and the API calls behind it."""

    rank: int  # among all the day's windows
    identity: str
    kind: str
    window_start: pd.Timestamp
    anomaly_score: float  # the window's evidence, -log of its calibrated p-value
    percentile: float
    is_unusual: bool  # its p-value is below the identity-day floor: it adds to its identity-day
    is_anomaly: bool  # unusual, and its identity-day is above the threshold
    requests: int
    reasons: list[Reason]
    calls: pd.DataFrame
    suppressed_by: Entry | None = None
    is_alert: bool = False  # an unusual window of an alerting identity-day
    allowlist_note: str = ""  # an entry matched but could not hide this window, and why


@dataclass
class Finding:
    """One identity-day: its score, the terms behind it, and its windows nested below."""

    rank: int
    identity: str
    kind: str
    day: pd.Timestamp
    anomaly_score: float  # evidence summed over its unusual windows (models.identity_day)
    percentile: float  # among the held-out normal identity-days
    is_anomaly: bool  # anomaly_score above the threshold
    is_alert: bool  # is_anomaly, or at or above --fail-on
    n_windows: int
    n_unusual: int
    requests: int
    reasons: list[Reason]
    windows: list[WindowFinding]
    suppressed_by: Entry | None = None
    allowlist_note: str = ""

    @property
    def window_start(self) -> pd.Timestamp:
        """The start of its most telling window."""
        return self.windows[0].window_start if self.windows else self.day

    @property
    def calls(self) -> pd.DataFrame:
        """The API calls of its most telling window."""
        return self.windows[0].calls if self.windows else pd.DataFrame()


@dataclass
class ScoreResult:
    """Everything the daily report shows."""

    day: date | None
    # features + anomaly_score (window evidence), percentile (100 * (1 - p)), is_unusual,
    # is_anomaly and is_alert (unusual, of an anomalous / alerting identity-day), suppressed,
    # suppressed_by, suppressed_reason, allowlist_note; highest first
    windows: pd.DataFrame
    findings: list[Finding]  # every alerting identity-day and the top ones, explained, by rank
    # identity-days: identity, day, anomaly_score, percentile, is_alert, n_windows, n_unusual,
    # suppressed, reasons; highest first
    identities: pd.DataFrame
    stats: IngestStats
    threshold: float  # on identity-day scores
    activity: dict[str, pd.DataFrame] = field(default_factory=dict)  # identity -> requests per window
    expired_allowlist: list[Entry] = field(default_factory=list)
    #: Events read but not scored because they are not of ``day`` (one day is scored per run).
    n_other_days: int = 0
    #: Where ``threshold`` sits among the held-out identity-days' scores (0-100).
    threshold_percentile: float = float("nan")
    #: Evidence from outside the windows (rule hits, network flows), by source.
    evidence: dict[str, DayEvidence] = field(default_factory=dict)

    @property
    def n_suppressed(self) -> int:
        return int(self.windows["suppressed"].sum())

    @property
    def n_alerts(self) -> int:
        """Identity-days that alert and are not suppressed: what --notify publishes."""
        if self.identities.empty:
            return 0
        return int((self.identities["is_alert"] & ~self.identities["suppressed"]).sum())

    def n_at_or_above(self, percentile: float) -> int:
        """Unsuppressed identity-days at or above ``percentile`` (the CLI's --fail-on)."""
        if self.identities.empty:
            return 0
        live = self.identities[~self.identities["suppressed"]]
        return int((live["percentile"] >= percentile).sum())


#: (identity, window_start) -> (user agents, namespaces) seen in that window.
_Seen = dict[Hashable, tuple[list[str], list[str]]]


@dataclass
class DayWindows:
    """A day featurised for scoring: its windows, their values for the allowlist, and its events."""

    windows: pd.DataFrame
    values: _Seen  # for the allowlist
    spill: Path | None  # the day's events as read (event table schema), for explanations


#: How a day's events become a :class:`DayWindows`: (batches, window, spill_dir, encoder).
DayFeaturiser = Callable[[Iterable, str, Path, object], DayWindows]


def featurise_day(batches: Iterable, window: str, spill_dir: Path | None, encoder) -> DayWindows:
    """Causal novelty within the day against the model's history, chunk by chunk (bounded memory).

    The events themselves go to a temporary Parquet file in ``spill_dir`` as they came (no
    conversion; none without ``spill_dir``), so the explained identities' calls can be read
    back later without holding the day in memory.
    """
    encoder = copy.deepcopy(encoder)  # learns the day as it goes; the bundle (or state) stays as it was
    accumulator = WindowAccumulator()
    values: _Seen = {}
    writer, path = None, None if spill_dir is None else spill_dir / "events.parquet"
    for done, open_from, raw in window_chunks(batches, window):
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
        if path is None:
            continue
        table = (
            raw if isinstance(raw, pa.Table) else pa.Table.from_pandas(raw, schema=EVENT_SCHEMA, preserve_index=False)
        )
        if writer is None:
            writer = pq.ParquetWriter(str(path), EVENT_SCHEMA)
        writer.write_table(table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
    if writer is not None:
        writer.close()
    return DayWindows(accumulator.windows(), values, path if writer is not None else None)


def _explained_events(path: Path | None, identities: list[str], bundle: ModelBundle, encoder) -> pd.DataFrame:
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
    return mark_novelty(prepare_events(events, bundle.window), copy.deepcopy(encoder))


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


def window_scores(windows: pd.DataFrame, bundle: ModelBundle, rarity=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each window's p-value, evidence and percentile, and the terms it shares its evidence among.

    The terms are the forest's calibrated evidence and the rarity's, the latter split among
    the action families and contexts in proportion to their surprisal.
    """
    assert bundle.calibrator is not None  # load_bundle refuses bundles without one
    rarity = bundle.rarity if rarity is None else rarity
    surprisal = rarity.transform_shared(windows) if len(windows) else np.zeros((0, len(rarity.terms_)))
    sources = window_sources(bundle.detector, rarity, windows, surprisal)
    # As a log: p underflows to 0 far beyond every held-out window (the evidence is -log p).
    log_p = bundle.calibrator.combined_log_p_values(sources) if len(sources) else np.zeros(0)
    p = np.exp(log_p)
    evidence = bundle.calibrator.transform(sources) if len(sources) else np.zeros((0, 2))
    total = surprisal.sum(axis=1, keepdims=True)
    share = np.divide(surprisal, total, out=np.zeros_like(surprisal), where=total > 0)
    terms = pd.DataFrame(share * evidence[:, [1]], index=windows.index, columns=[f"rarity_{t}" for t in rarity.terms_])
    terms.insert(0, FOREST, evidence[:, 0])
    terms["rarity"] = np.where(total[:, 0] > 0, 0.0, evidence[:, 1])  # rarity evidence with no family to name
    scored = pd.DataFrame({"p_value": p, "anomaly_score": -log_p, "percentile": 100.0 * (1.0 - p)}, index=windows.index)
    return scored, terms


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
    state=None,
    evidence: Sequence[EvidenceSource] = (),
    featuriser: DayFeaturiser | None = None,
) -> ScoreResult:
    """Score a stream of event batches (time-ordered) against ``bundle``; rank identity-days.

    Each window gets a calibrated p-value (forest and action rarity, combined among held-out
    normal windows); an identity's windows of the day add up to its identity-day score, and
    an identity-day above the threshold (``threshold_percentile`` of the held-out identity-days'
    scores, or the model's) or at or above ``alert_percentile`` (the CLI's ``--fail-on``)
    alerts. Every alerting identity-day and the ``top`` ones are explained, with their unusual
    windows nested below. With ``state`` (a :class:`models.day_state.DayState`), novelty and
    rarity come from the state, which refuses a day out of order and learns what did not alert.
    Memory is bounded by a chunk of events plus the day's windows: events are featurised chunk
    by chunk and spilled to a temporary Parquet file, from which only the explained identities'
    events are read back. Without ``day``, the day holding most requests is scored. Either
    way the events of other days are counted (``n_other_days``), not scored. Each ``evidence``
    source (:mod:`models.evidence`) reads the spilled events; its nats add to the identity-days
    it names, as reasons of their own. ``featuriser`` turns the batches into the day's windows
    (default :func:`featurise_day`; the lake engines featurise partitions instead, engine/score.py).
    """
    encoder = bundle.encoder if state is None else state.encoder
    rarity = bundle.rarity if state is None else state.rarity
    in_day = RangeCounts()
    if day is not None:
        if state is not None:
            state.check_day(day)
        batches = one_day(batches, day, in_day)
    with tempfile.TemporaryDirectory(prefix="kaad-score-") as tmp:
        feats = (featuriser or featurise_day)(batches, bundle.window, Path(tmp), encoder)
        windows = feats.windows
        bundle.check_schema(windows)
        if day is None and state is not None and (main := _main_day(windows)) is not None:
            state.check_day(main)
        day = day or _main_day(windows)
        n_other_days = in_day.left_out
        if day is not None and not windows.empty:
            starts = pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize()
            on_day = starts == pd.Timestamp(day, tz="UTC")
            # The events of the windows left out, as their request counts say.
            n_other_days += int(np.rint(np.expm1(windows.loc[~on_day, "log_requests"]).sum()))
            windows = windows[on_day]
        scored, terms = window_scores(windows, bundle, rarity)
        found_evidence = {} if day is None else {e.source: e for e in (source(feats.spill, day) for source in evidence)}
        found = identity_days(
            -scored["anomaly_score"],  # log p: p itself underflows far out
            terms,
            extra=_on_day(combined(found_evidence.values()), day),
            surprisal=family_surprisal(rarity, windows),
            log=True,
        )
        out = windows.join(scored[["anomaly_score", "percentile"]])
        out["is_unusual"] = found.windows["contribution"].reindex(out.index).fillna(0.0) > 0
        out = out.sort_values("anomaly_score", ascending=False, kind="stable")
        decisions = _apply_allowlist(out, feats.values, allowlist, bundle)
        cut = (
            bundle.threshold
            if threshold_percentile is None
            else float(np.quantile(bundle.train_scores, threshold_percentile / 100.0))
        )
        days = _day_table(found.days, out, bundle, cut, alert_percentile)
        # Outside evidence (a rule hit) is not hidden by entries that hide windows: an
        # allowlist entry mutes a rule by its name (rules/evidence.py), and says so.
        named = _on_day(combined(found_evidence.values()), day)
        days.loc[days.index.isin(named.index[named.sum(axis=1) > 0]), "suppressed"] = False
        alerted_days = days.index[days["is_alert"] & ~days["suppressed"]]
        key = pd.MultiIndex.from_arrays(
            [
                out.index.get_level_values("identity"),
                pd.DatetimeIndex(out.index.get_level_values("window_start")).normalize(),
            ]
        )
        unusual = out["is_unusual"].to_numpy(dtype=bool)
        out["is_anomaly"] = key.isin(days.index[days["is_anomaly"]]) & unusual
        out["is_alert"] = key.isin(days.index[days["is_alert"]]) & unusual
        positions = np.flatnonzero((np.arange(len(days)) < top) | days["is_alert"].to_numpy(dtype=bool))
        head = days.iloc[positions]
        marked = _explained_events(
            feats.spill, sorted(set(head.index.get_level_values("identity"))) if len(head) else [], bundle, encoder
        )
    if state is not None and day is not None:
        alerted = pd.Series(key.isin(alerted_days), index=out.index, name="alerted")
        state.advance(day, out[bundle.feature_names], alerted)
    texts = {k: v for e in found_evidence.values() for k, v in e.reasons.items()}
    findings = _findings(head, positions, out, found, terms, marked, decisions, bundle, rarity, texts)
    activity: dict[str, pd.DataFrame] = {}
    scored_identities = set(out.index.get_level_values("identity"))
    for finding in findings:
        if finding.identity in activity or finding.identity not in scored_identities:
            continue
        own = cast(pd.DataFrame, out.xs(finding.identity, level="identity"))  # rows of a frame: a frame
        per = own[["log_requests", "anomaly_score"]].copy()
        per["requests"] = np.expm1(per.pop("log_requests")).round().astype(int)
        activity[finding.identity] = per.sort_index()
    explained = {(f.identity, f.day): " | ".join(r.line() for r in f.reasons) for f in findings}
    table = days.reset_index()
    table["reasons"] = [explained.get((i, d), "") for i, d in zip(table["identity"], table["day"], strict=True)]
    return ScoreResult(
        day,
        out,
        findings,
        table,
        stats or IngestStats(),
        cut,
        activity,
        [] if allowlist is None else allowlist.expired,
        n_other_days,
        float(percentiles(bundle.train_scores, np.array([cut]), side="left")[0]),
        found_evidence,
    )


def _on_day(extra: pd.DataFrame, day: date | None) -> pd.DataFrame:
    """The evidence about ``day`` only: one day is scored per run."""
    if extra.empty or day is None:
        return extra
    return extra[extra.index.get_level_values("day") == utc_day(day)]


def _day_table(
    days: pd.DataFrame, out: pd.DataFrame, bundle: ModelBundle, cut: float, alert_percentile: float | None
) -> pd.DataFrame:
    """Identity-days with percentile, alert and suppression; an identity-day is suppressed when
    every window that made it unusual (all of them, if none did) is."""
    days = days.copy()
    # Strictly below: most held-out identity-days score 0 (nothing unusual), and a day with
    # nothing unusual is not at the 100th percentile of them.
    days["percentile"] = percentiles(bundle.train_scores, days["anomaly_score"].to_numpy(), side="left")
    frame = out[["is_unusual", "suppressed", "suppressed_by", "log_requests"]].reset_index()
    frame["day"] = pd.DatetimeIndex(frame["window_start"]).normalize()
    some_unusual = frame.groupby(["identity", "day"], sort=False)["is_unusual"].transform("any")
    counted = frame[frame["is_unusual"] | ~some_unusual].groupby(["identity", "day"], sort=False)
    days["suppressed"] = counted["suppressed"].all().reindex(days.index, fill_value=False).astype(bool)
    requests = np.expm1(frame["log_requests"]).groupby([frame["identity"], frame["day"]], sort=False).sum()
    days["requests"] = requests.reindex(days.index, fill_value=0.0).round().astype(int)
    days["is_anomaly"] = days["anomaly_score"] > cut
    alert = days["is_anomaly"].copy()
    if alert_percentile is not None:
        alert |= days["percentile"] >= alert_percentile
    days["is_alert"] = alert
    columns = ["anomaly_score", "percentile", "is_anomaly", "is_alert", "n_windows", "n_unusual", "suppressed"]
    return days[[*columns, "requests"]]


def _findings(head, positions, out, found, terms, marked, decisions, bundle, rarity, texts=None) -> list[Finding]:
    """Explain each identity-day of ``head`` and its unusual windows (its top one at least)."""
    if not len(head):
        return []
    rank_of = {key: i + 1 for i, key in enumerate(out.index)}
    by_window = marked.groupby(["identity", "window_start"], sort=False, observed=True).indices if len(marked) else {}
    baseline = bundle.detector[0]
    findings = []
    for position, ((identity, day), row) in zip(positions, head.iterrows(), strict=True):
        kind = identity_kind(pd.DataFrame({"identity": [identity]})).iloc[0]
        nested = found.windows_of(identity, day)
        keep = nested[nested["contribution"] > 0]
        keys = list((keep if len(keep) else nested.head(1)).index)
        windows = []
        if keys:  # an identity-day that only outside evidence names has no windows
            feat = out.loc[keys, bundle.feature_names]
            dev = pd.DataFrame(baseline.transform(feat), index=feat.index, columns=bundle.feature_names)
            usual = pd.DataFrame(baseline.usual(feat), index=feat.index, columns=bundle.feature_names)
        for key in keys:
            events = marked.iloc[by_window.get(key, [])]
            w = out.loc[key]
            forest = explain(
                w[bundle.feature_names],
                dev.loc[key],
                usual.loc[key],
                events,
                bundle.profiles.get(identity, {}),
                identity,
            )
            decision = decisions.get(key)
            windows.append(
                WindowFinding(
                    rank_of[key],
                    identity,
                    kind,
                    key[1],
                    float(w["anomaly_score"]),
                    float(w["percentile"]),
                    bool(w["is_unusual"]),
                    bool(w["is_anomaly"]),
                    len(events),
                    term_reasons(list(terms.loc[key].items()), rarity, identity, forest),
                    top_calls(events),
                    None if decision is None else decision.entry,
                    is_alert=bool(w["is_alert"]),
                    allowlist_note=str(w["allowlist_note"]),
                )
            )
        # The day's reasons: its terms, largest first; the forest's part said by its top window.
        day_terms = found.reasons(identity, day, top=8)
        forest = [r for r in windows[0].reasons if r.family not in ("rarity", "behaviour")] if windows else []
        said = {term: text for (who, when, term), text in (texts or {}).items() if who == identity and when == day}
        reasons = term_reasons(day_terms, rarity, identity, forest, texts=said)
        suppressed = next((w.suppressed_by for w in windows if w.suppressed_by is not None), None)
        findings.append(
            Finding(
                int(position) + 1,
                identity,
                kind,
                pd.Timestamp(day),
                float(row["anomaly_score"]),
                float(row["percentile"]),
                bool(row["is_anomaly"]),
                bool(row["is_alert"]),
                int(row["n_windows"]),
                int(row["n_unusual"]),
                int(row["requests"]),
                reasons,
                windows,
                suppressed if bool(row["suppressed"]) else None,
                allowlist_note=next((w.allowlist_note for w in windows if w.allowlist_note), ""),
            )
        )
    return findings


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
    state=None,
    evidence: Sequence[EvidenceSource] = (),
    engine=None,
) -> ScoreResult:
    """Read a day of audit logs (anything ingest reads, remote sources with ``aws``) and score it,
    streaming: memory does not grow with the size of the day. ``trusted_proxies`` as in
    :func:`pipelines.ingest.ingest`; ``state`` as in :func:`score_batches`. A lake (``kaad
    ingest --out DIR``, on disk or s3://) is scored a (cluster, day) partition a task, on
    ``engine`` (an :class:`engine.train.EngineConfig`; default local), its last day by default."""
    from engine.score import lake_scoring

    options = {
        "top": top,
        "threshold_percentile": threshold_percentile,
        "alert_percentile": alert_percentile,
        "allowlist": allowlist,
        "state": state,
        "evidence": evidence,
    }
    with lake_scoring(inputs, day, engine) as lake:
        if lake is None:
            ingestor = Ingestor(on_progress=on_progress, aws=aws, trusted_proxies=trusted_proxies)
            result = score_batches(ingestor.iter_batches(inputs), bundle, day=day, stats=ingestor.stats, **options)
        else:
            lake.check_evidence(evidence)
            result = score_batches(
                [], bundle, day=lake.lake.day, stats=lake.stats, featuriser=lake.featuriser(), **options
            )
    if result.stats.n_events == 0:
        raise KaadError("no events to score in the given inputs")
    if result.windows.empty:
        raise KaadError(f"no events on {result.day} in the given inputs")
    return result
