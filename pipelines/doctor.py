"""`kaad doctor eks://CLUSTER`: is audit logging on, and can kaad read it? One line per check."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from errors import KaadError
from sources.aws import AwsError, AwsOptions, client, translated
from sources.cloudwatch import AUDIT_PREFIX, parse_log_uri

#: Audit streams whose last event is older than this are "not recent".
RECENT_HOURS = 24


@dataclass(frozen=True)
class Check:
    """One check: what, whether it passed, what was seen, and the fix when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _enable_command(cluster: str, region: str | None) -> str:
    logging = json.dumps({"clusterLogging": [{"types": ["audit"], "enabled": True}]})
    region_flag = f" --region {region}" if region else ""
    return f"aws eks update-cluster-config{region_flag} --name {cluster} --logging '{logging}'"


def run_checks(uri: str, options: AwsOptions) -> list[Check]:
    """Run every check that can run; a failed prerequisite stops the ones that depend on it."""
    if not uri.startswith("eks://"):
        raise KaadError(f"{uri!r}: doctor checks a cluster, as in eks://prod")
    cluster = uri.removeprefix("eks://").strip("/")
    source = parse_log_uri(uri)
    checks: list[Check] = []
    try:
        sts = client(options, "sts")
        with translated("credentials"):
            who = sts.get_caller_identity()
        checks.append(Check("credentials", True, f"calling as {who.get('Arn', '?')}"))
    except AwsError as exc:
        # The check is already named: "credentials: credentials: ..." says it twice.
        detail = str(exc).removeprefix("credentials: ")
        return [Check("credentials", False, detail, "configure AWS credentials for this account")]
    try:
        eks = client(options, "eks")
        with translated(f"EKS cluster {cluster!r}"):
            desc = eks.describe_cluster(name=cluster)["cluster"]
        enabled = {
            t
            for entry in desc.get("logging", {}).get("clusterLogging", [])
            if entry.get("enabled")
            for t in entry.get("types", [])
        }
        if "audit" in enabled:
            checks.append(Check("audit logging", True, "the audit log type is enabled"))
        else:
            checks.append(
                Check(
                    "audit logging",
                    False,
                    "the audit log type is not enabled; without it there are no audit logs",
                    _enable_command(cluster, options.region),
                )
            )
    except AwsError as exc:
        checks.append(
            Check("cluster", False, str(exc), "check the cluster name and --region, and grant eks:DescribeCluster")
        )
    logs = client(options, "logs")
    try:
        with translated(f"log group {source.group!r}"):
            groups = logs.describe_log_groups(logGroupNamePrefix=source.group).get("logGroups", [])
        if not any(g["logGroupName"] == source.group for g in groups):
            checks.append(
                Check(
                    "log group",
                    False,
                    f"{source.group} does not exist",
                    "enable audit logging (above); EKS creates the group",
                )
            )
            return checks
        checks.append(Check("log group", True, f"{source.group} exists"))
        with translated(f"log streams of {source.group!r}"):
            streams = logs.describe_log_streams(logGroupName=source.group, logStreamNamePrefix=AUDIT_PREFIX).get(
                "logStreams", []
            )
        if not streams:
            checks.append(
                Check(
                    "audit streams",
                    False,
                    f"no {AUDIT_PREFIX}-* streams",
                    "enable the audit log type; streams appear within minutes",
                )
            )
            return checks
        latest = max(s.get("lastEventTimestamp") or s.get("lastIngestionTime") or 0 for s in streams)
        age_h = (time.time() * 1000 - latest) / 3_600_000 if latest else float("inf")
        checks.append(
            Check(
                "audit streams",
                age_h <= RECENT_HOURS,
                f"{len(streams)} stream(s), last event {age_h:.1f} h ago"
                if latest
                else f"{len(streams)} stream(s), no events yet",
                "" if age_h <= RECENT_HOURS else "the cluster wrote no audit events lately: is logging still enabled?",
            )
        )
        with translated("logs:FilterLogEvents"):
            logs.filter_log_events(logGroupName=source.group, logStreamNamePrefix=AUDIT_PREFIX, limit=1)
        checks.append(Check("read permission", True, "logs:FilterLogEvents and logs:DescribeLogStreams work"))
    except AwsError as exc:
        checks.append(
            Check(
                "read permission",
                False,
                str(exc),
                "grant logs:FilterLogEvents and logs:DescribeLogStreams on the log group",
            )
        )
    return checks
