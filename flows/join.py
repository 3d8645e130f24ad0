"""Join flows to pod leases: who sent each flow, and how sure we are.

A flow belongs to a pod when its packet-level source (``pkt-srcaddr``, else ``srcaddr``) is
an address the pod leased while the flow ran, give or take the aggregation interval's skew
(a record covers up to 10 minutes; its start and end are the interval's, not the packets').
The destination side gives ingress the same way. Traffic leaving the VPC is SNATed to the
node's primary address (``AWS_VPC_K8S_CNI_EXTERNALSNAT=false``, the default): such a flow
belongs to the node, and to one of the pods on it at that time, with lower confidence.
A flow between two pods is logged by both network interfaces; it is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd

from flows.leases import Leases

#: Records cover up to the maximum aggregation interval (10 minutes by default).
SKEW = timedelta(minutes=10)

_SQL = """
WITH raw AS (
    SELECT row_number() OVER () AS fid, interface_id, flow_direction, coalesce(pkt_srcaddr, srcaddr) AS src,
           coalesce(pkt_dstaddr, dstaddr) AS dst, srcport, dstport, protocol,
           coalesce(packets, 0) AS packets, coalesce(bytes, 0) AS bytes, start, "end", action,
           pkt_src_aws_service, pkt_dst_aws_service
    FROM read_parquet($flows) WHERE start IS NOT NULL
),
twice AS (
    -- The same flow logged by a second interface (pod to pod: the receiver's ENI logs it too):
    -- same five-tuple, overlapping time. The sender's copy (flow-direction egress) is kept,
    -- else the copy of the lowest interface id.
    SELECT DISTINCT r.fid FROM raw r JOIN raw s
      ON r.src = s.src AND r.dst = s.dst AND r.srcport = s.srcport AND r.dstport = s.dstport
     AND r.protocol = s.protocol AND r.interface_id <> s.interface_id
     AND r.start <= s."end" AND r."end" >= s.start
    WHERE CASE WHEN r.flow_direction IS DISTINCT FROM s.flow_direction
                AND r.flow_direction IS NOT NULL AND s.flow_direction IS NOT NULL
               THEN s.flow_direction = 'egress' ELSE r.interface_id > s.interface_id END
),
f AS (SELECT * EXCLUDE (interface_id, flow_direction) FROM raw WHERE fid NOT IN (SELECT fid FROM twice)),
l AS (
    SELECT row_number() OVER () AS lid, *, coalesce("end", TIMESTAMPTZ '9999-01-01') AS until
    FROM leases WHERE NOT host_network
),
pod_src AS (
    SELECT f.fid, arg_max(l.lid, l.start) AS lid FROM f JOIN l ON f.src = l.address
    AND f.start <= l.until + $skew AND f."end" >= l.start - $skew GROUP BY f.fid
),
pod_dst AS (
    SELECT f.fid, arg_max(l.lid, l.start) AS lid FROM f JOIN l ON f.dst = l.address
    AND f.start <= l.until + $skew AND f."end" >= l.start - $skew
    WHERE f.fid NOT IN (SELECT fid FROM pod_src) GROUP BY f.fid
),
node_side AS (
    SELECT f.fid, n.node, CASE WHEN f.src = n.address THEN 'egress' ELSE 'ingress' END AS direction
    FROM f JOIN nodes n ON n.address IN (f.src, f.dst)
    WHERE f.fid NOT IN (SELECT fid FROM pod_src) AND f.fid NOT IN (SELECT fid FROM pod_dst)
),
node_pods AS (
    SELECT s.fid, list(DISTINCT l2.namespace || '/' || l2.pod) AS candidates
    FROM node_side s JOIN f ON f.fid = s.fid
    JOIN (SELECT *, coalesce("end", TIMESTAMPTZ '9999-01-01') AS until FROM leases) l2
      ON l2.node = s.node AND f.start <= l2.until + $skew AND f."end" >= l2.start - $skew
    GROUP BY s.fid
),
attributed AS (
    SELECT f.*,
        CASE WHEN ps.fid IS NOT NULL OR pd.fid IS NOT NULL THEN 'pod'
             WHEN ns.fid IS NOT NULL THEN 'node' ELSE 'none' END AS attribution,
        CASE WHEN ps.fid IS NOT NULL THEN 'egress' WHEN pd.fid IS NOT NULL THEN 'ingress'
             ELSE ns.direction END AS direction,
        coalesce(ps.lid, pd.lid) AS lid, ns.node AS via_node, np.candidates
    FROM f LEFT JOIN pod_src ps USING (fid) LEFT JOIN pod_dst pd USING (fid)
    LEFT JOIN (SELECT DISTINCT ON (fid) * FROM node_side ORDER BY fid, node) ns USING (fid)
    LEFT JOIN node_pods np USING (fid)
)
SELECT date_trunc('day', a.start AT TIME ZONE 'UTC') AS day, a.attribution, a.direction,
       l.namespace, l.pod, l.workload, l.creator, l.service_account, coalesce(l.node, a.via_node) AS node,
       a.candidates,
       CASE WHEN a.direction = 'ingress' THEN a.src ELSE a.dst END AS remote,
       -- v5 names the AWS service whose ranges hold the remote address (S3, DYNAMODB...)
       CASE WHEN a.direction = 'ingress' THEN a.pkt_src_aws_service ELSE a.pkt_dst_aws_service END AS remote_service,
       CASE WHEN a.direction = 'egress' THEN a.src ELSE a.dst END AS local,
       a.dstport AS port, a.protocol, a.action,
       count(*) AS flows, sum(a.packets) AS packets, sum(a.bytes) AS bytes,
       min(a.start) AS first, max(a."end") AS last
FROM attributed a LEFT JOIN l USING (lid)
GROUP BY ALL
-- one order whatever the threads did: the evidence picks examples among equals by it
ORDER BY day, attribution, direction, namespace, pod, node, remote, port, protocol, action, first
"""


@dataclass
class Attribution:
    """Conversations (flows grouped by day, owner, remote end, port and action) and quality."""

    conversations: pd.DataFrame
    quality: dict


def join_flows(flows: Path, leases: Leases, skew: timedelta = SKEW) -> Attribution:
    """Attribute every flow in the Parquet file ``flows`` to a pod, a node, or nobody."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("leases", leases.pods)
        con.register("nodes", leases.nodes.dropna(subset=["address"]))
        table = con.execute(_SQL, {"flows": str(flows), "skew": skew}).df()
        counted = con.execute(
            "SELECT count(*) FROM read_parquet($flows) WHERE start IS NOT NULL", {"flows": str(flows)}
        ).fetchone()
    finally:
        con.close()
    for column in (
        "attribution",
        "direction",
        "namespace",
        "pod",
        "workload",
        "creator",
        "service_account",
        "node",
        "remote",
        "remote_service",
        "local",
        "action",
    ):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    # DuckDB hands lists as arrays and a missing list as NA: one shape, a list or None.
    table["candidates"] = [  # type: ignore[assignment]
        None if c is None or c is pd.NA or (isinstance(c, float)) else list(c) for c in table["candidates"]
    ]
    table["day"] = pd.to_datetime(table["day"]).dt.tz_localize("UTC") if table["day"].dt.tz is None else table["day"]
    totals = table.groupby("attribution")[["flows", "bytes"]].sum()
    n_flows, n_bytes = int(table["flows"].sum()), int(table["bytes"].sum())

    def share(kind: str, column: str, total: int) -> float:
        return float(totals[column].get(kind, 0)) / total if total else 0.0

    quality = {
        "flows": n_flows,
        **{f"share_{k}": share(k, "flows", n_flows) for k in ("pod", "node", "none")},
        **{f"bytes_share_{k}": share(k, "bytes", n_bytes) for k in ("pod", "node", "none")},
        "pods_leased": int(leases.pods[["namespace", "pod"]].drop_duplicates().shape[0]),
        "pods_without_address": leases.n_pods_without_address,
        # flows logged at both ends (pod to pod), counted once
        "duplicates": int(counted[0]) - n_flows if counted else 0,
    }
    return Attribution(table, quality)


def quality_text(quality: dict, version: int) -> str:
    """One line for the terminal and the report: how much of the traffic has an owner."""
    return (
        f"flow attribution (format version {version}): {quality['share_pod']:.1%} of {quality['flows']:,} flows "
        f"to a pod, {quality['share_node']:.1%} to a node only (SNAT or hostNetwork), "
        f"{quality['share_none']:.1%} unattributed; {quality['pods_leased']:,} pods with a known address, "
        f"{quality['pods_without_address']:,} without"
        + (
            f"; {quality['duplicates']:,} records of flows logged at both ends counted once"
            if quality.get("duplicates")
            else ""
        )
        + ("" if version >= 3 else "; version 2 records lack pkt-srcaddr/pkt-dstaddr: configure a v5 custom format")
        + (
            ""
            if version >= 5
            else "; without pkt-dst-aws-service (v5) each rotating address of an AWS service (S3...) is a destination"
        )
    )
