"""Rule results in the terminal: `kaad rules test`, and the rule findings of a scored day.

Usernames, URIs, names and user agents in hits are chosen by whoever sent the request: every
cell goes through :mod:`safe_text`.
"""

from __future__ import annotations

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text

from safe_text import printable, terminal_text

#: Hit events shown per rule; the count says how many there were.
SHOW_HITS = 10


def _when(value) -> str:
    return "" if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _target(row) -> str:
    parts = [row["target_resource"], row["target_subresource"]]
    what = "/".join(str(p) for p in parts if pd.notna(p) and str(p))
    where = "/".join(str(p) for p in (row["target_namespace"], row["target_name"]) if pd.notna(p) and str(p))
    return f"{what} {where}".strip() or str(row["request_uri"] or "")


def hits_table(hits: pd.DataFrame, *, limit: int = SHOW_HITS) -> Table:
    """The first ``limit`` hit events, one line each."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for column in ("time (UTC)", "identity", "verb", "target", "code", "source", "file:line"):
        table.add_column(column)
    for _, row in hits.head(limit).iterrows():
        code = "" if pd.isna(row["response_code"]) else str(int(row["response_code"]))
        where = f"{row['source_file']}:{row['source_line']}" if pd.notna(row["source_file"]) else ""
        table.add_row(
            _when(row["timestamp"]),
            terminal_text(row["identity"], 60),
            terminal_text(row["verb"], 12),
            terminal_text(_target(row), 70),
            code,
            terminal_text(row["source_ip"], 40),
            terminal_text(where, 60),
        )
    return table


def render_trial(trial, *, show_query: bool = False) -> Group:
    """Per rule: converted or not (and why), its hits, and the first hit events."""
    parts: list = []
    for rule in trial.rules.rules:
        head = Text()
        head.append(printable(rule.name), style="bold")
        head.append(f"  {printable(rule.title)}  [{printable(rule.level)}]")
        parts.append(head)
        if not rule.converted:
            parts.append(Text("  not converted: " + printable(rule.reason), style="yellow"))
            continue
        if rule.name in trial.run.failed:
            parts.append(Text("  converted, failed to run: " + printable(trial.run.failed[rule.name]), style="red"))
            continue
        if show_query:
            parts.append(Text("  query: " + printable(rule.query), style="dim"))
        hits = trial.run.of(rule.name)
        parts.append(Text(f"  converted, {len(hits)} hit(s)"))
        if len(hits):
            parts.append(hits_table(hits))
            if len(hits) > SHOW_HITS:
                parts.append(Text(f"  ... and {len(hits) - SHOW_HITS} more"))
    n_rules = len(trial.rules.rules)
    parts.append(
        Text(
            f"{n_rules} rule(s): {len(trial.rules.runnable)} converted, {len(trial.rules.refused)} not converted, "
            f"{len(trial.run.failed)} failed to run; {len(trial.run.hits)} hit(s) in {trial.stats.n_events:,} "
            f"event(s), {trial.stats.n_rejected} input reject(s)"
        )
    )
    return Group(*parts)
