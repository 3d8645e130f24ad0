"""The network section of a report: what the pods a finding touched talked to.

Everything here is attacker-influenced (pod names, namespaces, identities): HTML output goes
through :func:`html.escape`, terminal output through :func:`safe_text.printable`.
"""

from __future__ import annotations

import pandas as pd

from flows.evidence import MINER_PORTS, SOURCE
from safe_text import html_text as e

#: Conversations listed per finding (largest first); the rest are counted.
MAX_ROWS = 15


def _touched(details: dict, identity: str) -> tuple[set[str], pd.DataFrame]:
    """The pods ``identity`` created or exec'd into (``ns/pod``) and their conversations today."""
    leases = details.get("leases")
    pods: set[str] = set()
    if leases is not None:
        made = leases.pods[leases.pods["creator"] == identity]
        pods |= set(made["namespace"] + "/" + made["pod"])
        execs = leases.execs[leases.execs["identity"] == identity]
        pods |= set(execs["namespace"] + "/" + execs["pod"])
    rows = details.get("rows")
    if rows is None or len(rows) == 0 or not pods:
        return pods, pd.DataFrame()
    own = (rows["namespace"].fillna("") + "/" + rows["pod"].fillna("")).isin(pods)
    shared = rows["candidates"].map(lambda cs: cs is not None and bool(pods & set(cs)))
    hit = rows[(own & (rows["attribution"] == "pod")) | (shared & (rows["attribution"] == "node"))].copy()
    # A node's SNAT rows carry all its pods' traffic: bulk transfers to S3 would bury a mining
    # pool's few hundred kB below the table's cut. What is flagged comes first, then size.
    hit["_flagged"] = (
        hit["new_in_cluster"].eq(True)
        | hit.get("new_for_unit", pd.Series(False, index=hit.index)).eq(True)
        | hit.get("named", pd.Series("", index=hit.index)).fillna("").astype(bool)
        | (hit["port"].isin(MINER_PORTS) & (hit["direction"] != "ingress"))
    )
    hit = hit.sort_values(["_flagged", "bytes"], ascending=[False, False], kind="stable")
    return pods, hit.drop(columns="_flagged")


def summary_html(result) -> str:
    """The flow logs read and how much of their traffic has an owner (empty without flow logs)."""
    found = result.evidence.get(SOURCE)
    if found is None:
        return ""
    d = found.details
    return (
        f'<h2>Network (VPC flow logs)</h2><p class="meta">{e(d.get("read", ""))}<br>{e(d.get("quality_text", ""))}</p>'
    )


def finding_html(result, identity: str) -> str:
    """A finding's network section: its pods, what they talked to, bytes, ports, first-seen flags."""
    found = result.evidence.get(SOURCE)
    if found is None:
        return ""
    pods, rows = _touched(found.details, identity)
    if rows.empty:
        what = "the pods it created or exec'd into" if pods else "any pod (it created or exec'd into none)"
        return f"<h3>Network</h3><p>No flow data for {e(what)} on this day.</p>"
    items = []
    for r in rows.head(MAX_ROWS).to_dict("records"):
        who = (
            f"{r['namespace']}/{r['pod']}"
            if r["attribution"] == "pod"
            else f"node {r['node']} (SNAT, one of {len(r['candidates'])} pods)"
        )
        flags = ["first seen in the cluster"] if r["new_in_cluster"] else []
        if r.get("new_for_unit"):
            flags.append("first seen for the workload (known in the cluster)")
        if r.get("named"):
            flags.append(f"named by the audit log today: {r['named']}")
        if int(r["port"]) in MINER_PORTS and r["direction"] != "ingress":
            flags.append("a port mining pools use")
        flag = "; ".join(flags)
        there = f"{r['remote']}:{int(r['port'])}"
        # incoming (from an address the audit log named): the remote end is the sender
        sender, receiver = (
            (str(r["remote"]), f"{who}, port {int(r['port'])}") if r["direction"] == "ingress" else (who, there)
        )
        items.append(
            f"<tr><td>{e(sender)}</td><td><code>{e(receiver)}</code></td><td>{e(str(r['action']))}</td>"
            f'<td class="num">{int(r["flows"])}</td><td class="num">{int(r["bytes"]):,}</td><td>{e(flag)}</td></tr>'
        )
    more = f"<p>{len(rows) - MAX_ROWS} more conversations not listed.</p>" if len(rows) > MAX_ROWS else ""
    return (
        f'<h3>Network: {len(pods)} pod(s) created or exec\'d into</h3><table class="calls"><thead><tr><th>from</th>'
        "<th>to</th><th>action</th><th>flows</th><th>bytes</th><th></th></tr></thead><tbody>"
        + "".join(items)
        + f"</tbody></table>{more}"
    )


def summary_lines(result) -> list[str]:
    """The terminal's lines about the flow logs (plain text; the caller prints without markup)."""
    from safe_text import printable

    found = result.evidence.get(SOURCE)
    if found is None:
        return []
    d = found.details
    lines = [printable(d.get("read", "")), printable(d.get("quality_text", ""))]
    lines += [printable(r) for r in d.get("rejects", [])[:5]]
    return lines
