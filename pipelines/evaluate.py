"""How well scores rank labelled attacks: ROC AUC, average precision, recall at k, ranks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from errors import KaadError

TOP_K = (10, 20, 50, 100)


@dataclass
class ScenarioResult:
    """Where one attack scenario landed in the ranking."""

    scenario: str
    windows: int
    best_rank: int                 # 1-based, among all scored windows
    best_rank_in_day: int          # 1-based, among the windows of the same UTC day
    false_positives_above: int     # unlabelled windows ranked above its best window


@dataclass
class EvalReport:
    """Ranking quality of a set of window scores against labelled attack windows."""

    n_windows: int
    n_positive: int
    roc_auc: float
    average_precision: float
    recall_at: dict[int, float]
    scenarios: list[ScenarioResult] = field(default_factory=list)

    def metrics(self, prefix: str = "eval_") -> dict[str, float]:
        """Flat metrics for MLflow."""
        out = {f"{prefix}roc_auc": self.roc_auc, f"{prefix}average_precision": self.average_precision,
               f"{prefix}positives": float(self.n_positive), f"{prefix}windows": float(self.n_windows)}
        out |= {f"{prefix}recall_at_{k}": v for k, v in self.recall_at.items()}
        if self.scenarios:
            out[f"{prefix}worst_best_rank_in_day"] = float(max(s.best_rank_in_day for s in self.scenarios))
            out[f"{prefix}scenarios_in_top20_of_day"] = float(sum(s.best_rank_in_day <= 20 for s in self.scenarios))
        return out

    def scenario_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(s) for s in self.scenarios])


def read_labels(path: Path, events: pd.DataFrame | None = None, *, freq: str = "1h") -> pd.DataFrame:
    """Read labels as (identity, window_start, scenario) rows.

    Accepts the simulator's ``labels.csv`` (identity and timestamp per event), a CSV of
    identity windows (``identity, window_start[, scenario]``), or a CSV of ``auditID``s
    (``[scenario]``), which needs the labelled events to find each one's identity and time.
    """
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise KaadError(f"cannot read labels {str(path)!r}: {exc}") from None
    if "scenario" not in table.columns:
        table["scenario"] = table.get("label", "labelled")
    if {"identity", "window_start"} <= set(table.columns):
        starts = pd.to_datetime(table["window_start"], utc=True)
    elif {"identity", "timestamp"} <= set(table.columns):
        starts = pd.to_datetime(table["timestamp"], utc=True).dt.floor(freq)
    elif "auditID" in table.columns:
        if events is None:
            raise KaadError(f"{str(path)!r} labels auditIDs; give the labelled events too")
        lookup = events.set_index("audit_id")[["identity", "timestamp"]]
        found = lookup.reindex(table["auditID"].astype(str))
        table["identity"] = found["identity"].to_numpy()
        starts = pd.to_datetime(found["timestamp"], utc=True).dt.floor(freq).to_numpy()
    else:
        raise KaadError(f"{str(path)!r} has neither identity/timestamp, identity/window_start "
                        "nor auditID columns")
    out = pd.DataFrame({"identity": table["identity"].astype(str), "window_start": starts,
                        "scenario": table["scenario"].astype(str)})
    return out.dropna().drop_duplicates()


def evaluate(scores: pd.Series, labels: pd.DataFrame) -> EvalReport:
    """Rank ``scores`` (index identity, window_start; higher = more anomalous) against labels."""
    frame = scores.rename("anomaly_score").reset_index()
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    keys = labels[["identity", "window_start", "scenario"]].copy()
    keys["window_start"] = pd.to_datetime(keys["window_start"], utc=True)
    positive = frame.merge(keys.drop(columns="scenario").drop_duplicates().assign(_pos=True),
                           on=["identity", "window_start"], how="left")["_pos"].fillna(False)
    y = positive.to_numpy(dtype=bool)
    s = frame["anomaly_score"].to_numpy(dtype=float)
    order = np.argsort(-s, kind="stable")
    rank = np.empty(len(s), dtype=int)
    rank[order] = np.arange(1, len(s) + 1)
    frame["rank"] = rank
    frame["day"] = frame["window_start"].dt.normalize()
    frame["rank_in_day"] = frame.groupby("day")["anomaly_score"].rank(ascending=False, method="first").astype(int)
    frame["positive"] = y
    both = len(set(y)) == 2
    report = EvalReport(
        n_windows=len(s), n_positive=int(y.sum()),
        roc_auc=float(roc_auc_score(y, s)) if both else float("nan"),
        average_precision=float(average_precision_score(y, s)) if y.any() else float("nan"),
        recall_at={k: float(y[order[:k]].sum() / max(1, y.sum())) for k in TOP_K})
    hits = frame.merge(keys, on=["identity", "window_start"], how="inner")
    negatives = np.sort(s[~y])[::-1]
    for scenario, group in hits.groupby("scenario", sort=True):
        best = group.loc[group["rank"].idxmin()]
        above = int(np.searchsorted(-negatives, -best["anomaly_score"], side="left"))
        report.scenarios.append(ScenarioResult(str(scenario), len(group), int(best["rank"]),
                                               int(best["rank_in_day"]), above))
    return report
