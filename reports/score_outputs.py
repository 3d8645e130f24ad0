"""The daily ranking as a terminal table and as CSV, JSON and Parquet files.

Every attacker-controlled string goes through :mod:`safe_text` for its format.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from safe_text import csv_cell, printable, terminal_text

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
#: Windows shown under each identity-day in the terminal (files carry them all).
NESTED_IN_TABLE = 3


def _alert_mark(f: Finding | WindowFinding) -> Text:
    """Whether the row alerts, in words (bold alone is lost in a log file or a pipe)."""
    if not f.is_alert:
        return Text("")
    if f.suppressed_by is not None:
        return Text("suppressed", style="dim")
    status = getattr(f, "status", "")
    if status == "repeat":  # reported, not paged
        return Text(f"open, day {getattr(f, 'days_open', 0)}", style="dim")
    return Text("ALERT (worse)" if status == "worse" else "ALERT", style="bold red")


def _why(f: Finding | WindowFinding, reasons: int) -> Text:
    why = Text()
    if f.suppressed_by is not None:
        why.append(f"suppressed by {printable(f.suppressed_by.label)}: ", style="dim")
        why.append_text(terminal_text(f.suppressed_by.reason, max_len=120, style="dim"))
    if f.allowlist_note:
        why.append_text(terminal_text(f.allowlist_note, max_len=200, style="bold"))
    if note := getattr(f, "finding_note", ""):
        why.append_text(terminal_text(note, max_len=200, style="bold"))
    for i, reason in enumerate(f.reasons[:reasons]):
        if i or f.suppressed_by is not None or f.allowlist_note or note:
            why.append("\n")
        why.append(f"[{reason.rarity}] ", style="bold red" if reason.rarity == "UNSEEN" else "yellow")
        why.append_text(terminal_text(reason.text, max_len=160))
    return why


def render_table(result: ScoreResult, reasons: int = 3, top: int | None = None) -> Table:
    """The ranked identity-days for a terminal, each with its unusual windows below it."""
    table = Table(title=f"kaad: {result.day} identity-days ranked by anomaly", title_justify="left", show_lines=True)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("identity", "left"),
        ("kind", "left"),
        ("windows (UTC)", "left"),
        ("pct", "right"),
        ("alert", "left"),
        ("why", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    for f in result.findings:
        if top is not None and f.rank > top:
            break
        style = "bold" if f.is_alert and f.suppressed_by is None else ""
        table.add_row(
            str(f.rank),
            terminal_text(f.identity, max_len=80, style=style),
            f.kind,
            f"{f.n_unusual} of {f.n_windows} unusual",
            f"{f.percentile:.2f}",
            _alert_mark(f),
            _why(f, reasons),
        )
        for w in f.windows[:NESTED_IN_TABLE] if f.n_unusual else []:
            table.add_row("", "", "", f"  {w.window_start:%H:%M}", f"{w.percentile:.2f}", Text(""), _why(w, 2))
        if f.n_unusual > NESTED_IN_TABLE:
            table.add_row("", "", "", f"  +{f.n_unusual - NESTED_IN_TABLE} more", "", Text(""), Text("in the files"))
    return table


def render_suppressed(result: ScoreResult) -> Table | None:
    """Every suppressed window, grouped by identity and entry: hidden from alerts, not from view."""
    hidden = result.windows[result.windows["suppressed"]]
    if hidden.empty:
        return None
    table = Table(title=f"suppressed by the allowlist: {len(hidden)} window(s)", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("identity", "left"),
        ("entry", "left"),
        ("windows", "right"),
        ("peak pct", "right"),
        ("reason", "left"),
    )
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    groups = hidden.reset_index().groupby(["identity", "suppressed_by"], sort=False)
    for (identity, label), part in groups:
        table.add_row(
            terminal_text(identity, max_len=80),
            terminal_text(label),
            str(len(part)),
            f"{part['percentile'].max():.2f}",
            terminal_text(part["suppressed_reason"].iloc[0], max_len=120),
        )
    return table


def more_alerts(result: ScoreResult, top: int, written: list[Path]) -> str:
    """One line for alerting identity-days beyond the terminal's ``top`` rows, and where they are."""
    n = sum(1 for f in result.findings if f.rank > top and f.is_alert and f.suppressed_by is None)
    if not n:
        return ""
    where = ", ".join(str(p) for p in written) if written else "no file (add --format csv, json, parquet or html)"
    return f"{n} more alerting identity-day(s) beyond --top {top}, explained in {where}"


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
