"""One seed of the protocol: simulate, train on the first days, score the held-out days.

Everything goes through the library as a user would run it: the days are ingested to
Parquet once (``kaad ingest``), the detector is trained with the default configuration on
the first days, and the held-out days are scored in order with that model and its day state
(the daily job: what a quiet day introduced is learned for the next, what alerted is held
back, nobody accepts anything). An attack is written as an extra file beside its day and
read with the day, one attack a day, scored against the state as it was that morning.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evaluation.budgets import above, at_budgets, thresholds
from evaluation.config import EvalConfig
from evaluation.ranks import attack_ranks, benign_windows, daily_recall, name_alert, rank_of
from evaluation.rules import COLUMNS as RULE_COLUMNS
from evaluation.rules import NoveltyRule
from events.schema import EVENT_SCHEMA
from features.enrich import kinds_of
from models.day_state import DayState
from models.detector import DetectorParams, robust_z_scores
from models.persistence import ModelBundle
from pipelines.ingest import Ingestor, ingest
from pipelines.score import ScoreResult, score_batches, score_day
from pipelines.train import TrainConfig, train
from scenarios.attacks import ATTACKS
from scenarios.cluster import build_cluster
from scenarios.simulate import attack_day, simulate

METHODS = ("detector", "robust_z", "rule")
DAILY_K = (1, 5, 10, 20)
QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
TOP_SCORES = 10
BATCH_ROWS = 65_536


@dataclass
class Pooled:
    """Every attack day's window scores per method, with the attack's windows as labels.

    Identities are prefixed with the attack so that a background day reused for several
    attacks stays several days in the pool.
    """

    scores: dict[str, list[pd.Series]] = field(default_factory=lambda: {m: [] for m in METHODS})
    labels: list[pd.DataFrame] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # of each added case, in order

    def add(
        self, case: str, scores: dict[str, pd.Series], positives: pd.MultiIndex, scenario: str, variant: str = ""
    ) -> None:
        self.variants.append(variant)
        for method, series in scores.items():
            idx = series.index
            tagged = pd.MultiIndex.from_arrays(
                [case + "/" + idx.get_level_values("identity").astype(str), idx.get_level_values("window_start")],
                names=["identity", "window_start"],
            )
            self.scores[method].append(pd.Series(series.to_numpy(dtype=float), index=tagged))
        self.labels.append(
            pd.DataFrame(
                {
                    "identity": case + "/" + positives.get_level_values("identity").astype(str),
                    "window_start": positives.get_level_values("window_start"),
                    "scenario": scenario,
                }
            )
        )


def _batches(table: pa.Table) -> Iterator[pa.Table]:
    for offset in range(0, table.num_rows, BATCH_ROWS):
        yield table.slice(offset, BATCH_ROWS)


def _write_attack(path: Path, events: list[tuple]) -> None:
    events = sorted(events, key=lambda pair: pair[0])
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for _, e in events))


def _day_summary(result: ScoreResult, benign: pd.DataFrame, freq: str, floor: float) -> dict:
    """The day's alerts: new findings, or open ones made worse (models/open_findings.py); a repeat of
    an open finding pages nobody, so it is counted apart (``n_repeats``), not as an alert. The
    identity-days above ``floor`` (the lowest of the other budgets' thresholds) are kept too."""
    scores = result.windows["anomaly_score"].to_numpy(dtype=float)
    alerts: list[dict] = []
    repeats: list[dict] = []
    for f in sorted((f for f in result.findings if f.is_anomaly), key=lambda f: -f.anomaly_score):
        (repeats if f.status == "repeat" else alerts).append(
            {
                "identity": f.identity,
                "kind": f.kind,
                "window_start": f.window_start.isoformat(),
                "anomaly_score": round(f.anomaly_score, 6),
                "named_by": name_alert(f.identity, f.window_start, benign, freq),
                "reason": f.reasons[0].text if f.reasons else "",
                "finding": f.status,
                "first_seen": str(f.first_seen),
            }
        )
    return {
        "day": str(result.day),
        "events": int(result.stats.n_events),
        "windows": len(scores),
        "identities": int(result.windows.index.get_level_values("identity").nunique()),
        "n_alerts": len(alerts),
        "alerts": alerts,
        "n_repeats": len(repeats),
        "repeats": repeats,
        "score_quantiles": {
            f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, np.quantile(scores, QUANTILES), strict=True)
        },
        "top_scores": [float(v) for v in np.sort(scores)[::-1][:TOP_SCORES]],
        "identity_days": above(result, benign, freq, floor),
    }


def _method_scores(result: ScoreResult, bundle: ModelBundle, rule: NoveltyRule, events: pa.Table) -> dict:
    windows = result.windows
    return {
        "detector": windows["anomaly_score"],
        "robust_z": robust_z_scores(bundle.detector[0], windows[bundle.feature_names]),
        "rule": rule.score(events, bundle.window).reindex(windows.index, fill_value=0.0),
    }


def _identity_day_ranks(result: ScoreResult, positives: pd.MultiIndex) -> dict:
    """The detector ranks and alerts identity-days: the attacker's rank and alert are its
    identity-day's (``result.identities``), not its best window's."""
    days = result.identities.set_index("identity")  # one row per identity-day; identity and day are columns
    per = days["anomaly_score"].groupby(level="identity").max()
    attackers = per.reindex(sorted(set(positives.get_level_values("identity")))).dropna()
    # An attacker's day that only repeats an open finding would page nobody: not alerted.
    alerting = (days["is_anomaly"] & (days["finding"] != "repeat")).groupby(level="identity").any()
    return {
        "identity": str(attackers.idxmax()),
        "identity_rank": rank_of(per.to_numpy(), float(attackers.max())),
        "identity_day_score": float(attackers.max()),
        "alert": bool(alerting.reindex(attackers.index, fill_value=False).any()),
    }


def _score_attack(
    name: str,
    variant: str,
    day: date,
    table: Path,
    extra: Path,
    bundle: ModelBundle,
    rule: NoveltyRule,
    state: DayState | None = None,
) -> tuple[dict, dict | None, pd.MultiIndex]:
    """Score ``day`` with the attack's file beside it (against ``state``, the day state of that
    morning, which is not changed); the attack's record, scores and windows."""
    # The day's events as its one ingest wrote them, and the attack's file read the usual way;
    # one time-ordered stream, as the API server would have written the two together.
    parts = [pq.read_table(table).select(EVENT_SCHEMA.names), *Ingestor().iter_batches([str(extra)])]
    merged = pa.concat_tables([p.cast(EVENT_SCHEMA) for p in parts]).sort_by("timestamp")
    state = None if state is None else copy.deepcopy(state)  # the morning's state serves every attack of the day
    result = score_batches(_batches(merged), bundle, day=day, top=0, state=state)
    own = merged.filter(pc.equal(merged["source_file"], str(extra)))
    own_frame = own.select(["identity", "timestamp"]).to_pandas()
    positives = pd.MultiIndex.from_arrays(
        [own_frame["identity"].astype(str), own_frame["timestamp"].dt.floor(bundle.window)],
        names=["identity", "window_start"],
    ).unique()
    positives = positives[positives.isin(result.windows.index)]
    windows = result.windows
    record = {
        "scenario": name,
        "variant": variant,
        "day": str(day),
        "missed": None,
        "technique": ATTACKS[name].technique,
        "events": own.num_rows,
        "identities": sorted(set(positives.get_level_values("identity"))),
        "windows": len(positives),
        "day_identities": int(windows.index.get_level_values("identity").nunique()),
        "day_windows": len(windows),
        "other_alerts": int(windows["is_anomaly"].sum()) - int(windows.loc[positives, "is_anomaly"].sum()),
    }
    if len(positives) == 0:  # every event of the attack fell on another day: nothing to rank
        return (
            record | {"missed": "its events fell on another day", "kind": None} | dict.fromkeys(METHODS),
            None,
            positives,
        )
    scores = _method_scores(result, bundle, rule, merged)
    for method, series in scores.items():
        ranks = attack_ranks(series, positives, bundle.threshold if method == "detector" else None)
        if method == "detector":
            ranks |= _identity_day_ranks(result, positives)
        ranks["daily_recall_at"] = {str(k): v for k, v in daily_recall(series, positives, DAILY_K).items()}
        record[method] = ranks
    record["kind"] = str(kinds_of([record["detector"]["identity"]])[0])
    return record, scores, positives


def run_seed(config: EvalConfig, seed: int, work: Path, advance: Callable[[int], None] = lambda n: None) -> dict:
    """Run the protocol for one cluster seed in ``work``; return its part of detection.json."""
    started = time.perf_counter()
    n_days = config.train_days + config.heldout_days
    logs = work / "logs"
    sim = simulate(logs, days=n_days, seed=seed, spec=config.spec, on_day=lambda done, total: advance(1))
    history = work / "history.parquet"
    ingest([str(f) for f in sim.files[: config.train_days]], out=history, collect=False)
    trained = train([str(history)], TrainConfig(params=DetectorParams(seed=seed)))
    bundle = trained.bundle
    rule = NoveltyRule().fit(pq.read_table(history, columns=RULE_COLUMNS))
    advance(1)
    labels = pd.read_csv(sim.labels, dtype=str) if sim.labels is not None else pd.DataFrame()
    benign = benign_windows(labels, bundle.window)
    cuts = thresholds(bundle)

    days: list[tuple[date, Path, Path]] = []  # (day, raw file, its event table)
    quiet_days = []
    state = DayState.from_bundle(bundle, f"seed-{seed}")
    mornings: list[DayState] = []  # the state before each held-out day, for its attacks
    for path in sim.files[config.train_days :]:
        day = date.fromisoformat(path.name.removeprefix("audit-")[:10])
        table = work / "days" / f"{day}.parquet"
        ingest([str(path)], out=table, collect=False)
        days.append((day, path, table))
        mornings.append(copy.deepcopy(state))
        result = score_day([str(table)], bundle, day=day, top=0, state=state)
        quiet_days.append(_day_summary(result, benign, bundle.window, min(cuts.values())))
        advance(1)

    cluster = build_cluster(config.spec, seed)
    pooled = Pooled()
    attacks = []
    cases = [(name, variant) for variant in config.variants for name in (config.attacks or tuple(ATTACKS))]
    for i, (name, variant) in enumerate(cases):
        day, raw, table = days[i % len(days)]
        events, _, _ = attack_day(cluster, [name], config.train_days + i % len(days), variant, seed)
        extra = raw.with_name(f"{raw.name.split('.')[0]}.attack-{name}-{variant}.jsonl")
        _write_attack(extra, events)
        morning = mornings[i % len(days)]
        record, scores, positives = _score_attack(name, variant, day, table, extra, bundle, rule, morning)
        attacks.append(record)
        if scores is not None:
            pooled.add(f"{name}-{variant}", scores, positives, name, variant)
        advance(1)

    return {
        "seed": seed,
        "training": {
            "days": config.train_days,
            "first_day": str(days[0][0] - pd.Timedelta(days=config.train_days)),
            "events": int(bundle.n_events),
            "windows": int(bundle.n_windows),
            "threshold": float(bundle.threshold),
            "window": bundle.window,
            "params": dict(bundle.params),
        },
        "attack_free_days": quiet_days,
        "alerts_per_attack_free_day": [d["n_alerts"] for d in quiet_days],
        "repeats_per_attack_free_day": [d["n_repeats"] for d in quiet_days],
        "attacks": attacks,
        "budgets": at_budgets(cuts, quiet_days, attacks),
        "metrics": pooled_metrics(pooled, attacks),
        "seconds": round(time.perf_counter() - started, 1),
    }


def pooled_metrics(pooled: Pooled, attacks: list[dict]) -> dict:
    """AP, ROC AUC and recall@k over every attack day's windows, per method."""
    from pipelines.evaluate import evaluate

    labels = pd.concat(pooled.labels, ignore_index=True)
    quiet = [i for i, v in enumerate(pooled.variants) if v == "quiet"]
    ranked = [a for a in attacks if not a["missed"]]
    out = {}
    for method in METHODS:
        report = evaluate(pd.concat(pooled.scores[method]), labels)
        # The quiet attacks' days alone: the issue's "AP over quiet windows".
        quiet_ap = (
            evaluate(
                pd.concat([pooled.scores[method][i] for i in quiet]),
                pd.concat([pooled.labels[i] for i in quiet], ignore_index=True),
            ).average_precision
            if quiet
            else float("nan")
        )
        out[method] = {
            "average_precision": report.average_precision,
            "average_precision_quiet": quiet_ap,
            "roc_auc": report.roc_auc,
            "recall_at": {str(k): v for k, v in report.recall_at.items()},
            "daily_recall_at": {
                str(k): float(np.mean([a[method]["daily_recall_at"][str(k)] for a in ranked])) for k in DAILY_K
            },
            "positives": report.n_positive,
            "windows": report.n_windows,
            "median_identity_rank": float(np.median([a[method]["identity_rank"] for a in ranked])),
            "attacks_top1_identity": int(sum(a[method]["identity_rank"] == 1 for a in ranked)),
            "attacks_top10_identity": int(sum(a[method]["identity_rank"] <= 10 for a in ranked)),
        }
    out["detector"]["attacks_alerted"] = int(sum(a["detector"]["alert"] for a in ranked))
    return out
