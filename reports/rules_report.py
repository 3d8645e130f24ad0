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


def rule_findings(result) -> list:
    """The scored day's rule findings (rules/evidence.py), the strongest first; [] without --rules."""
    found = getattr(result, "evidence", {}).get("rule")
    return [] if found is None else list(found.details.get("findings", []))


def render_rule_findings(result, *, limit: int = 3) -> Group | None:
    """Rule hits of the day: rule, level, identity, evidence (or the entry muting it), first events."""
    findings = rule_findings(result)
    found = getattr(result, "evidence", {}).get("rule")
    failed = found.details.get("failed", {}) if found is not None else {}
    if not findings and not failed:
        return None
    parts: list = [Text(f"Rule findings ({len(findings)})", style="bold")]
    for f in findings:
        line = Text()
        line.append(f"{printable(f.title)} [{printable(f.level)}] ", style="bold")
        line.append(terminal_text(f.identity, 80))
        line.append(f": {len(f.hits)} event(s), ")
        if f.muted_by is not None:
            line.append(printable(f"muted by {f.muted_by.label} ({f.muted_by.reason}, until {f.muted_by.expires})"))
        else:
            line.append(f"+{f.evidence:.2f} nats; {printable(f.weight.describe())}")
        parts.extend([line, hits_table(f.hits, limit=limit)])
    for name, reason in failed.items():
        parts.append(Text(f"rule {printable(name)} failed to run: {printable(reason)}", style="red"))
    return Group(*parts)


def write_rule_hits_csv(result, path) -> bool:
    """One row per hit event of every rule finding; False (nothing written) without any."""
    import csv

    from safe_text import csv_cell

    findings = rule_findings(result)
    if not findings:
        return False
    columns = ["rule", "title", "level", "attack", "identity", "evidence_nats", "muted_by", *HIT_FIELDS]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for f in findings:
            muted = "" if f.muted_by is None else f.muted_by.label
            for _, hit in f.hits.iterrows():
                row = [f.rule, f.title, f.level, " ".join(f.attack), f.identity, f"{f.evidence:.4f}", muted]
                row += ["" if pd.isna(hit[c]) else hit[c] for c in HIT_FIELDS]
                writer.writerow([csv_cell(v) for v in row])
    return True


def rule_findings_html(result) -> str:
    """The HTML report's section of rule findings ('' without any); every value escaped."""
    from safe_text import html_text as e

    findings = rule_findings(result)
    if not findings:
        return ""
    rows = "".join(
        f'<tr><td>{e(f.title)}</td><td>{e(f.level)}</td><td class="identity">{e(f.identity)}</td>'
        f'<td class="num">{len(f.hits)}</td><td class="num">{f.evidence:.2f}</td>'
        f"<td>{e('muted by ' + f.muted_by.label + ': ' + f.muted_by.reason) if f.muted_by else e(f.weight.describe())}"
        f"</td><td>{e(_target(f.hits.iloc[0]))}</td></tr>"
        for f in findings
    )
    return (
        f'<h2>Rule findings ({len(findings)})</h2><table id="rule-findings"><thead><tr><th>rule</th><th>level</th>'
        "<th>identity</th><th>events</th><th>nats</th><th>weight</th><th>first event</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


#: Hit columns written to the CSV (all of them but the file, which is the scorer's input).
HIT_FIELDS = [
    "timestamp", "audit_id", "verb", "target_resource", "target_subresource", "target_namespace", "target_name",
    "request_uri", "response_code", "source_ip", "user_agent",
]  # fmt: skip
