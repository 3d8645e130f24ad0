"""Findings out to AWS: one SNS message per finding, and the day's counts as CloudWatch metrics.

A repeat of an open finding (models/open_findings.py) is not sent: it was sent when new or when
it got worse. Publishing is idempotent per identity-day (the unit that alerts): a ledger file
records what was sent, so rerunning the same day does not page anyone twice (FIFO topics also
get a deduplication id).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from safe_text import printable
from sources.aws import AwsOptions, client, translated

if TYPE_CHECKING:  # result types only: reports sit below the pipelines that make them
    from pipelines.score import Finding, ScoreResult


@dataclass
class Ledger:
    """Keys already sent, kept in a small JSON file (written after every send)."""

    path: Path
    keys: set[str]

    @classmethod
    def load(cls, path: Path) -> Ledger:
        try:
            return cls(path, set(json.loads(path.read_text()).get("sent", [])))
        except FileNotFoundError:
            return cls(path, set())
        except ValueError:
            from errors import KaadError

            raise KaadError(
                f"notification ledger {str(path)!r} is unreadable; move it away (doing so may repeat notifications)"
            ) from None

    def add(self, key: str) -> None:
        self.keys.add(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"sent": sorted(self.keys)}, indent=0))
        os.replace(tmp, self.path)


def finding_key(day, f: Finding) -> str:
    return f"{day}|{f.identity}"


def finding_message(result: ScoreResult, f: Finding) -> dict:
    """The JSON body of one alert: who, when, how unusual, why, and the top API calls."""
    calls = []
    for rec in f.calls.head(5).to_dict("records"):
        calls.append({k: (None if v is None or v != v else str(v)) for k, v in rec.items()})
    return (
        {
            "source": "kaad",
            "day": str(result.day),
            "identity": f.identity,
            "kind": f.kind,
            "window_start": f.window_start.isoformat(),  # its most telling window
            "percentile": round(f.percentile, 3),
            "anomaly_score": round(f.anomaly_score, 6),
            "n_windows": f.n_windows,
            "n_unusual": f.n_unusual,
            "finding": f.status,  # new, or worse than the open finding first seen on first_seen
            "first_seen": str(f.first_seen),
            "days_open": f.days_open,
            "reasons": [r.line() for r in f.reasons],
            "windows": [
                {"window_start": w.window_start.isoformat(), "percentile": round(w.percentile, 3)}
                | {"reasons": [r.line() for r in w.reasons[:3]]}
                for w in f.windows
            ],
            "calls": calls,
        }
        | ({"allowlist_note": f.allowlist_note} if f.allowlist_note else {})
        | ({"finding_note": f.finding_note} if f.finding_note else {})
    )


def publish_findings(result: ScoreResult, topic_arn: str, options: AwsOptions, ledger_path: Path) -> tuple[int, int]:
    """Send every alerting, unsuppressed identity-day that is not a repeat of an open finding;
    return (sent, already sent).

    Scoring explains every alerting identity-day, so the findings hold all of them, not a top N.
    """
    sns = client(options, "sns")
    ledger = Ledger.load(ledger_path)
    sent = skipped = 0
    fifo = topic_arn.endswith(".fifo")
    for f in result.findings:
        if not f.pages:  # a repeat of an open finding was paged when it was new or got worse
            continue
        key = finding_key(result.day, f)
        if key in ledger.keys:
            skipped += 1
            continue
        subject = printable(f"kaad: {f.identity} on {f.day:%Y-%m-%d} ({f.n_unusual} unusual windows)", max_len=100)
        subject = subject.encode("ascii", "replace").decode()
        kwargs = {
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": json.dumps(finding_message(result, f)),
            "MessageAttributes": {"identity_kind": {"DataType": "String", "StringValue": f.kind}},
        }
        if fifo:
            kwargs |= {"MessageGroupId": "kaad", "MessageDeduplicationId": hashlib.sha256(key.encode()).hexdigest()}
        with translated(f"SNS topic {topic_arn!r}"):
            sns.publish(**kwargs)
        ledger.add(key)
        sent += 1
    return sent, skipped


def put_day_metrics(
    result: ScoreResult, namespace: str, options: AwsOptions, ledger_path: Path, cluster: str = "default"
) -> bool:
    """Put the day's counts once (windows scored, findings, suppressed, rejects); False if done before."""
    ledger = Ledger.load(ledger_path)
    key = f"metrics|{namespace}|{cluster}|{result.day}"
    if key in ledger.keys:
        return False
    cw = client(options, "cloudwatch")
    now = datetime.now(UTC)
    when = datetime(result.day.year, result.day.month, result.day.day, tzinfo=UTC) if result.day else now
    if (now - when).days >= 14:  # CloudWatch refuses datapoints older than two weeks
        when = now
    values = {
        "WindowsScored": len(result.windows),
        "Findings": result.n_new_findings,  # what pages: repeats of open findings do not
        "Suppressed": result.n_suppressed,
        "Rejects": result.stats.n_rejected,
    }
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "Cluster", "Value": cluster}],
            "Timestamp": when,
            "Value": float(value),
            "Unit": "Count",
        }
        for name, value in values.items()
    ]
    with translated(f"CloudWatch metrics namespace {namespace!r}"):
        cw.put_metric_data(Namespace=namespace, MetricData=data)
    ledger.add(key)
    return True
