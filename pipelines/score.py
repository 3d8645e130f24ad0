"""Score a day: featurise against the model's baselines, rank windows, explain every alerting one.

The parts live in their own modules (the day's windows, the verdicts, the explanations, the
result types); their public names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from errors import KaadError, UnnamedRerunError
from events.time_range import RangeCounts, one_day
from models.detector import percentiles
from models.evidence import EvidenceSource, combined, utc_day
from models.identity_day import family_surprisal, identity_days
from models.open_findings import first_sight, judge_day
from models.persistence import ModelBundle
from pipelines.allowlist import Allowlist
from pipelines.day_windows import DayFeaturiser, DayWindows, explained_events, featurise_day, main_day
from pipelines.explain_day import explain_findings
from pipelines.ingest import Ingestor, IngestStats
from pipelines.score_result import Finding, ScoreResult, WindowFinding
from pipelines.verdicts import apply_allowlist, day_table, window_scores, with_verdicts

__all__ = [
    "DayFeaturiser",
    "DayWindows",
    "Finding",
    "ScoreResult",
    "WindowFinding",
    "featurise_day",
    "score_batches",
    "score_day",
    "window_scores",
]


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
    if day is not None and state is not None:
        state.check_day(day)  # first: a forced rerun of the last day goes back to before it
    encoder = bundle.encoder if state is None else state.encoder
    rarity = bundle.rarity if state is None else state.rarity
    in_day = RangeCounts()
    if day is not None:
        batches = one_day(batches, day, in_day)
    with tempfile.TemporaryDirectory(prefix="kaad-score-") as tmp:
        feats = (featuriser or featurise_day)(batches, bundle.window, Path(tmp), encoder)
        windows = feats.windows
        bundle.check_schema(windows)
        if day is None and state is not None and (main := main_day(windows)) is not None:
            if state.check_day(main):  # the windows were featurised with what this day taught
                raise UnnamedRerunError(
                    f"{main} is the last day this model scored for cluster {state.cluster!r}: to score it "
                    f"again against what was learned before it, name it (--day {main} --force-day)",
                    main,
                )
        day = day or main_day(windows)
        n_other_days = in_day.left_out
        if day is not None and not windows.empty:
            starts = pd.DatetimeIndex(windows.index.get_level_values("window_start")).normalize()
            on_day = starts == pd.Timestamp(day, tz="UTC")
            # The events of the windows left out, as their request counts say.
            n_other_days += int(np.rint(np.expm1(windows.loc[~on_day, "log_requests"]).sum()))
            windows = windows[on_day]
        recalibrate = getattr(state, "calibrator", None)  # a state that learns rates judges the reference anew
        calibrator = None if recalibrate is None else recalibrate(bundle)
        scored, terms = window_scores(windows, bundle, rarity, calibrator)
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
        decisions = apply_allowlist(out, feats.values, allowlist, bundle)
        cut = (
            bundle.threshold
            if threshold_percentile is None
            else float(np.quantile(bundle.train_scores, threshold_percentile / 100.0))
        )
        days = day_table(found.days, out, bundle, cut, alert_percentile)
        # Outside evidence (a rule hit) is not hidden by entries that hide windows: an
        # allowlist entry mutes a rule by its name (rules/evidence.py), and says so.
        named = _on_day(combined(found_evidence.values()), day)
        days.loc[days.index.isin(named.index[named.sum(axis=1) > 0]), "suppressed"] = False
        alerted_days = days.index[days["is_alert"] & ~days["suppressed"]]
        # A repeat of an identity's open finding is reported, not paged (models/open_findings.py).
        alerting = days.loc[alerted_days]
        if state is not None and day is not None:

            def rescore(held: pd.DataFrame) -> pd.Series | None:
                # A held day judged as today's windows are: the same model, rates and reference.
                if not set(bundle.feature_names) <= set(held.columns):
                    return None  # held by a state saved before held days kept every feature
                again = held[list(bundle.feature_names)]
                s, t = window_scores(again, bundle, rarity, calibrator)
                days = identity_days(-s["anomaly_score"], t, surprisal=family_surprisal(rarity, again), log=True).days
                return days["anomaly_score"]

            verdicts = judge_day(
                state, day, alerting, found.contributions, cut, rescore=rescore, outside=list(named.columns)
            )
        else:
            verdicts = first_sight(alerting, found.contributions)
        days = with_verdicts(days, verdicts, getattr(rarity, "term_labels_", None))
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
        marked = explained_events(
            feats.spill, sorted(set(head.index.get_level_values("identity"))) if len(head) else [], bundle, encoder
        )
    texts = {k: v for e in found_evidence.values() for k, v in e.reasons.items()}
    # Explained before the state learns the day: reasons count what was known that morning.
    findings = explain_findings(head, positions, out, found, terms, marked, decisions, bundle, rarity, texts)
    if state is not None and day is not None:
        alerted = pd.Series(key.isin(alerted_days), index=out.index, name="alerted")
        state.advance(day, out[bundle.feature_names], alerted, verdicts)
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
