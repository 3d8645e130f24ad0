"""The daily ranking as CSV, JSON and Parquet files (the terminal's table: reports/score_table.py).

Every attacker-controlled string goes through :mod:`safe_text` for its format.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from safe_text import csv_cell, printable

if TYPE_CHECKING:  # result types only: reports sit below the pipelines that make them
    from pipelines.score import Finding, ScoreResult, WindowFinding

ROW_FIELDS = (
    "level",  # "identity-day", then its windows ("window")
    "rank",
    "identity",
    "kind",
    "day",
    "window_start",
    "anomaly_score",
    "percentile",
    "is_unusual",
    "is_anomaly",
    "is_alert",
    "requests",
    "n_windows",
    "n_unusual",
    "suppressed",
    "suppressed_by",
    "suppressed_reason",
    "allowlist_note",
    "finding",  # new, worse, or a repeat of an open finding (models/open_findings.py); "" unless alerting
    "first_seen",
    "days_open",
    "reasons",
)


def _reasons_line(f: Finding | WindowFinding | None) -> str:
    return "" if f is None else " | ".join(r.line() for r in f.reasons)


def finding_rows(result: ScoreResult) -> list[dict]:
    """Identity-days in rank order, each followed by its windows; explained ones carry reasons."""
    rows: list[dict[str, Any]] = []
    explained = {(f.identity, f.day): f for f in result.findings}
    frame = result.windows.reset_index()
    frame["rank"] = range(1, len(frame) + 1)  # result.windows is in rank order
    frame["day"] = pd.DatetimeIndex(frame["window_start"]).normalize()
    of_day = frame.groupby(["identity", "day"], sort=False).indices if len(frame) else {}
    kinds = {}
    if len(frame):
        from features.enrich import identity_kind

        names = pd.Series(frame["identity"].unique())
        kinds = dict(zip(names, identity_kind(pd.DataFrame({"identity": names})), strict=True))
    days = cast(list[dict[str, Any]], result.identities.to_dict("records"))
    for rank, d in enumerate(days, start=1):
        identity, day = str(d["identity"]), pd.Timestamp(d["day"])
        f = explained.get((identity, day))
        entry = None if f is None else f.suppressed_by
        rows.append(
            {
                "level": "identity-day",
                "rank": rank,
                "identity": identity,
                "kind": kinds.get(identity, ""),
                "day": day,
                "window_start": "",
                "anomaly_score": float(d["anomaly_score"]),
                "percentile": float(d["percentile"]),
                "is_unusual": int(d["n_unusual"]) > 0,
                "is_anomaly": bool(d["is_anomaly"]),
                "is_alert": bool(d["is_alert"]),
                "requests": int(d["requests"]),
                "n_windows": int(d["n_windows"]),
                "n_unusual": int(d["n_unusual"]),
                "suppressed": bool(d["suppressed"]),
                "suppressed_by": "" if entry is None else entry.label,
                "suppressed_reason": "" if entry is None else entry.reason,
                "allowlist_note": "" if f is None else f.allowlist_note,
                "finding": str(d.get("finding", "")),
                "first_seen": "" if d.get("first_seen") is None else str(d["first_seen"]),
                "days_open": int(d.get("days_open", 0)),
                "reasons": _reasons_line(f),
            }
        )
        nested = {} if f is None else {n.window_start: n for n in f.windows}
        windows = cast(list[dict[str, Any]], frame.iloc[of_day.get((identity, day), [])].to_dict("records"))
        for w in windows:
            rows.append(
                {
                    "level": "window",
                    "rank": int(w["rank"]),
                    "identity": identity,
                    "kind": kinds.get(identity, ""),
                    "day": day,
                    "window_start": w["window_start"],
                    "anomaly_score": float(w["anomaly_score"]),
                    "percentile": float(w["percentile"]),
                    "is_unusual": bool(w["is_unusual"]),
                    "is_anomaly": bool(w["is_anomaly"]),
                    "is_alert": bool(w["is_alert"]),
                    "requests": int(round(math.expm1(w["log_requests"]))),
                    "n_windows": 1,
                    "n_unusual": int(bool(w["is_unusual"])),
                    "suppressed": bool(w["suppressed"]),
                    "suppressed_by": str(w["suppressed_by"]),
                    "suppressed_reason": str(w["suppressed_reason"]),
                    "allowlist_note": str(w["allowlist_note"]),
                    "finding": "",
                    "first_seen": "",
                    "days_open": 0,
                    "reasons": _reasons_line(nested.get(w["window_start"])),
                }
            )
    return rows


def write_csv(result: ScoreResult, path: Path) -> None:
    """CSV for spreadsheets: text cells that could start a formula are quoted with '."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ROW_FIELDS)
        for row in finding_rows(result):
            row = row | {"day": f"{row['day']:%Y-%m-%d}"}
            writer.writerow([csv_cell(printable(row[k])) if isinstance(row[k], str) else row[k] for k in ROW_FIELDS])


def _calls_json(calls: pd.DataFrame) -> list[dict]:
    out = []
    for rec in calls.to_dict("records"):
        out.append(
            {
                k: (
                    None
                    if v is None or (isinstance(v, float) and v != v) or v is pd.NA
                    else str(v)
                    if not isinstance(v, int | float | bool)
                    else v
                )
                for k, v in rec.items()
            }
        )
    return out


def _reasons_json(f: Finding | WindowFinding) -> list[dict]:
    return [
        {
            "feature": r.feature,
            "rarity": r.rarity,
            "value": r.value,
            "usual": r.usual,
            "deviation": r.deviation,
            "weight": r.weight,
            "text": r.text,
        }
        for r in f.reasons
    ]


def _window_json(w: WindowFinding) -> dict:
    return {
        "rank": w.rank,
        "window_start": w.window_start.isoformat(),
        "anomaly_score": w.anomaly_score,
        "percentile": w.percentile,
        "is_unusual": w.is_unusual,
        "is_anomaly": w.is_anomaly,
        "is_alert": w.is_alert,
        "requests": w.requests,
        "suppressed_by": None if w.suppressed_by is None else w.suppressed_by.label,
        "allowlist_note": w.allowlist_note or None,
        "reasons": _reasons_json(w),
        "calls": _calls_json(w.calls),
    }


def write_json(result: ScoreResult, path: Path) -> None:
    """JSON: the identity-day findings with reasons and their windows, then every row of both levels."""
    doc = {
        "day": str(result.day),
        "threshold": result.threshold,
        "windows": len(result.windows),
        "identity_days": len(result.identities),
        "alerts": result.n_alerts,
        "new_findings": result.n_new_findings,  # new or worse: what pages
        "repeats": result.n_repeats,  # of open findings: reported, not paged
        "suppressed": result.n_suppressed,
        "findings": [
            {
                "rank": f.rank,
                "identity": f.identity,
                "kind": f.kind,
                "day": f"{f.day:%Y-%m-%d}",
                "anomaly_score": f.anomaly_score,
                "percentile": f.percentile,
                "is_anomaly": f.is_anomaly,
                "is_alert": f.is_alert,
                "n_windows": f.n_windows,
                "n_unusual": f.n_unusual,
                "requests": f.requests,
                "suppressed_by": None if f.suppressed_by is None else f.suppressed_by.label,
                "suppressed_reason": None if f.suppressed_by is None else f.suppressed_by.reason,
                "allowlist_note": f.allowlist_note or None,
                "finding": f.status or None,
                "first_seen": None if f.first_seen is None else str(f.first_seen),
                "days_open": f.days_open,
                "finding_note": f.finding_note or None,
                "reasons": _reasons_json(f),
                "windows": [_window_json(w) for w in f.windows],
            }
            for f in result.findings
        ],
        "all_rows": [
            {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}
            for row in finding_rows(result)
        ],
    }
    # json.dumps escapes nothing HTML-ish; JSON consumers get the exact strings, as they should.
    path.write_text(json.dumps(doc, indent=1, default=str))


def write_parquet(result: ScoreResult, path: Path) -> None:
    """Parquet: one row per identity-day and per window, with reasons."""
    frame = pd.DataFrame(finding_rows(result), columns=list(ROW_FIELDS))
    frame["window_start"] = pd.to_datetime(frame["window_start"].replace("", None), utc=True)
    frame.to_parquet(path, index=False)
