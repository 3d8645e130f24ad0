"""The daily ranking as a terminal table: identity-days, their unusual windows, and the suppressed.

Every attacker-controlled string goes through :mod:`safe_text` for the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from safe_text import printable, terminal_text

if TYPE_CHECKING:  # result types only: reports sit below the pipelines that make them
    from pipelines.score import Finding, ScoreResult, WindowFinding

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
    table = _table(
        f"kaad: {result.day} identity-days ranked by anomaly",
        (
            ("#", "right"),
            ("identity", "left"),
            ("kind", "left"),
            ("windows (UTC)", "left"),
            ("pct", "right"),
            ("alert", "left"),
            ("why", "left"),
        ),
        show_lines=True,
    )
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
    table = _table(
        f"suppressed by the allowlist: {len(hidden)} window(s)",
        (("identity", "left"), ("entry", "left"), ("windows", "right"), ("peak pct", "right"), ("reason", "left")),
    )
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


def _table(title: str, columns: tuple[tuple[str, JustifyMethod], ...], *, show_lines: bool = False) -> Table:
    """A left-titled table whose columns fold long text rather than cut it."""
    table = Table(title=title, title_justify="left", show_lines=show_lines)
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    return table
