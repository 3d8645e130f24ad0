"""The summary `kaad ingest` prints: what was kept, merged and rejected, and what it holds."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table

from safe_text import terminal_text

if TYPE_CHECKING:  # result types only: reports sit below the pipelines that make them
    from pipelines.ingest import IngestStats


def _top(title: str, counter: Counter, n: int) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("value")
    table.add_column("events", justify="right")
    for value, count in counter.most_common(n):
        table.add_row(terminal_text("-" if value is None else value, max_len=80), f"{count:,}")
    return table


def render_summary(stats: IngestStats, top: int = 10) -> Group:
    """Return a rich renderable summarising an ingest."""
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("files", f"{stats.n_files:,} ({stats.n_bytes / 1e6:,.1f} MB)")
    lines.add_row(
        "events kept",
        f"{stats.n_events:,}" + (f" ({stats.n_truncated:,} truncated, core fields kept)" if stats.n_truncated else ""),
    )
    lines.add_row(
        "merged",
        f"{stats.n_merged:,} ({stats.n_stage_merged:,} other stages of a "
        f"request, {stats.n_redelivered:,} re-delivered copies)",
    )
    if stats.n_audit_id_reused:
        lines.add_row(
            "reused auditIDs",
            f"{stats.n_audit_id_reused:,} request(s) carry the auditID "
            "of a different request read before them (kept, flagged audit_id_reused)",
        )
    if stats.n_forwarded_unverified:
        lines.add_row(
            "forwarded chains",
            f"{stats.n_forwarded_unverified:,} request(s) name "
            "X-Forwarded-For addresses no trusted proxy vouches for "
            "(source_ip is the peer; flagged forwarded_unverified)",
        )
    lines.add_row(
        "rejected",
        f"{stats.n_rejected:,}"
        + (
            " (" + ", ".join(f"{k}: {v:,}" for k, v in stats.rejects_by_kind.most_common()) + ")"
            if stats.n_rejected
            else ""
        ),
    )
    if stats.n_control_messages:
        lines.add_row("control messages", f"{stats.n_control_messages:,} (CloudWatch, not data)")
    if stats.time_min is not None:
        lines.add_row("time range", f"{stats.time_min:%Y-%m-%d %H:%M:%S} .. {stats.time_max:%Y-%m-%d %H:%M:%S} UTC")
    parts = [lines]
    if stats.n_events:
        parts += [
            _top("top identities", stats.identities, top),
            _top("verbs", stats.verbs, top),
            _top("response codes", stats.response_codes, top),
        ]
    return Group(*parts)


def print_rejects(stats: IngestStats, console: Console, limit: int = 20) -> None:
    """Print the warnings and the first rejects with file, line and reason."""
    for warning in stats.warnings[:limit]:
        console.print(terminal_text(f"warning: {warning}"), style="yellow", soft_wrap=True)
    for reject in stats.rejects[:limit]:
        console.print(terminal_text(f"reject: {reject}"), style="yellow", soft_wrap=True)
    if stats.n_rejected > limit:
        console.print(f"... and {stats.n_rejected - limit:,} more rejects (--rejects FILE lists them all)")
