"""How well scores rank labelled attacks: ROC AUC, average precision, recall at k, ranks."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from errors import KaadError

TOP_K = (10, 20, 50, 100)
#: Scenario names of labelled benign change (labels.csv), which are not attacks.
BENIGN_PREFIX = "benign_"
# What identifies an event for the evaluation-set hash; the request URI carries the resource,
# namespace and name. Stable columns only, so the hash survives new derived columns.
_EVAL_SET_COLUMNS = ("audit_id", "timestamp", "identity", "verb", "request_uri", "response_code")


@dataclass
class ScenarioResult:
    """Where one attack scenario landed in the ranking."""

    scenario: str
    windows: int
    best_rank: int  # 1-based, among all scored windows
    best_rank_in_day: int  # 1-based, among the windows of the same UTC day
    false_positives_above: int  # unlabelled windows ranked above its best window


@dataclass
class EvalReport:
    """Ranking quality of a set of window scores against labelled attack windows."""

    n_windows: int
    n_positive: int
    roc_auc: float
    average_precision: float
    recall_at: dict[int, float]
    scenarios: list[ScenarioResult] = field(default_factory=list)
    n_labels: int = 0  # rows of the labels
    n_unmatched_labels: int = 0  # of which name no evaluated window (an unknown auditID, another day)
    #: Precision and recall at each score cut (columns precision, recall), for the run's chart.
    curve: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def metrics(self, prefix: str = "eval_") -> dict[str, float]:
        """Flat metrics for MLflow."""
        out = {
            f"{prefix}roc_auc": self.roc_auc,
            f"{prefix}average_precision": self.average_precision,
            f"{prefix}positives": float(self.n_positive),
            f"{prefix}windows": float(self.n_windows),
            f"{prefix}labels": float(self.n_labels),
            f"{prefix}unmatched_labels": float(self.n_unmatched_labels),
        }
        out |= {f"{prefix}recall_at_{k}": v for k, v in self.recall_at.items()}
        if self.scenarios:
            out[f"{prefix}worst_best_rank_in_day"] = float(max(s.best_rank_in_day for s in self.scenarios))
            out[f"{prefix}scenarios_in_top20_of_day"] = float(sum(s.best_rank_in_day <= 20 for s in self.scenarios))
        return out

    def scenario_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(s) for s in self.scenarios])


def read_labels(
    path: Path, events: pd.DataFrame | None = None, *, freq: str = "1h", data: bytes | None = None
) -> pd.DataFrame:
    """Read labels as (identity, window_start, scenario) rows, one per row of the file.

    Accepts the simulator's ``labels.csv`` (identity and timestamp per event), a CSV of
    identity windows (``identity, window_start[, scenario]``), or a CSV of ``auditID``s
    (``[scenario]``), which needs the labelled events to find each one's identity and time.
    An auditID that names no event keeps its row with no identity and no window, so that
    :func:`evaluate` counts it as unmatched instead of it vanishing. ``data`` is the file's
    content when the caller has already read it. Rows whose scenario starts with ``benign_``
    (the simulator's benign change) are left out: they name false positives, not attacks.
    """
    try:
        table = pd.read_csv(path if data is None else io.BytesIO(data))
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise KaadError(f"cannot read labels {str(path)!r}: {exc}") from None
    if "scenario" not in table.columns:
        table["scenario"] = table.get("label", "labelled")
    starts: pd.Series | np.ndarray
    if {"identity", "window_start"} <= set(table.columns):
        starts = pd.to_datetime(table["window_start"], utc=True, format="ISO8601")
    elif {"identity", "timestamp"} <= set(table.columns):
        starts = pd.to_datetime(table["timestamp"], utc=True, format="ISO8601").dt.floor(freq)
    elif "auditID" in table.columns:
        if events is None:
            raise KaadError(f"{str(path)!r} labels auditIDs; give the labelled events too")
        lookup = events.set_index("audit_id")[["identity", "timestamp"]]
        found = lookup.reindex(table["auditID"].astype(str))
        table["identity"] = found["identity"].to_numpy(dtype=object)
        starts = pd.to_datetime(found["timestamp"], utc=True).dt.floor(freq).to_numpy()
    else:
        raise KaadError(f"{str(path)!r} has neither identity/timestamp, identity/window_start nor auditID columns")
    identity = table["identity"].astype(object)
    out = pd.DataFrame(
        {
            "identity": identity.where(identity.isna(), identity.astype(str)),
            "window_start": starts,
            "scenario": table["scenario"].astype(str),
        }
    )
    # Benign change (a node replaced, a new hire) is labelled so that false positives can be
    # named; it is not an attack, so it is not a positive.
    return out[~out["scenario"].str.startswith(BENIGN_PREFIX)].reset_index(drop=True)


def eval_set_hash(events: pd.DataFrame, labels: bytes) -> str:
    """SHA-256 naming an evaluation set: its events (in any order, any file layout) and its labels.

    Average precisions compare only between runs with the same hash.
    """
    text = [events[c].astype(str) for c in _EVAL_SET_COLUMNS if c in events.columns]
    # pandas takes a list of Series here; pandas-stubs only admits a list of str.
    rows = (
        text[0].str.cat(text[1:], sep="\x1f", na_rep="")  # type: ignore[arg-type]
        if text
        else pd.Series([], dtype=str)
    )
    digest = hashlib.sha256(b"kaad eval set v1\n")
    digest.update("\n".join(sorted(rows.tolist())).encode())
    digest.update(b"\nlabels\n")
    digest.update(labels)
    return digest.hexdigest()


def evaluate(scores: pd.Series, labels: pd.DataFrame) -> EvalReport:
    """Rank ``scores`` (index identity, window_start; higher = more anomalous) against labels."""
    frame = scores.rename("anomaly_score").reset_index()
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    keys = labels[["identity", "window_start", "scenario"]].copy()
    keys["window_start"] = pd.to_datetime(keys["window_start"], utc=True)
    windows = frame[["identity", "window_start"]].drop_duplicates().assign(_scored=True)
    matched = keys.merge(windows, on=["identity", "window_start"], how="left")["_scored"].notna()
    keys = keys.dropna().drop_duplicates()
    positive = frame.merge(
        keys.drop(columns="scenario").drop_duplicates().assign(_pos=True), on=["identity", "window_start"], how="left"
    )["_pos"].fillna(False)
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
        n_windows=len(s),
        n_positive=int(y.sum()),
        roc_auc=float(roc_auc_score(y, s)) if both else float("nan"),
        average_precision=float(average_precision_score(y, s)) if y.any() else float("nan"),
        recall_at={k: float(y[order[:k]].sum() / max(1, y.sum())) for k in TOP_K},
        n_labels=len(labels),
        n_unmatched_labels=int((~matched).sum()),
    )
    if y.any():
        precision, recall, _ = precision_recall_curve(y, s)
        report.curve = pd.DataFrame({"precision": precision, "recall": recall})
    hits = frame.merge(keys, on=["identity", "window_start"], how="inner")
    negatives = np.sort(s[~y])[::-1]
    for scenario, group in hits.groupby("scenario", sort=True):
        best = group.iloc[int(group["rank"].to_numpy().argmin())]
        above = int(np.searchsorted(-negatives, -best["anomaly_score"], side="left"))
        report.scenarios.append(
            ScenarioResult(str(scenario), len(group), int(best["rank"]), int(best["rank_in_day"]), above)
        )
    return report
