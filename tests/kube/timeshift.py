"""Spread a real audit log, written in a minute or two, over the synthetic days it stands for.

The harness runs its bursts one after another and notes, before each, the wall-clock time
and the synthetic time the burst stands for. Every event then belongs to the last burst that
started at or before its ``requestReceivedTimestamp`` and moves by that burst's offset: both
``requestReceivedTimestamp`` and ``stageTimestamp`` shift by the same amount, so durations and
the order within a burst stay as the API server wrote them. Nothing else in an event changes
(creation timestamps inside logged request and response bodies keep their real values). The
API server's own background requests (``system:apiserver``) move with the burst they fell in.
Events before the first dated burst (start-up, cluster setup) or after the end mark are not
written. Each day file is sorted by ``stageTimestamp``, the order an API server writes in.
"""

from __future__ import annotations

import bisect
import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scenarios.simulate import LABEL_FIELDS


@dataclass(frozen=True)
class Label:
    """What a burst's events are, in the simulator's ``labels.csv`` terms."""

    scenario: str
    technique: str = ""
    variant: str = "benign"


@dataclass(frozen=True)
class Mark:
    """A burst began at ``real`` (epoch seconds) and stands for ``at`` (naive UTC; None: not written)."""

    real: float
    at: datetime | None
    identity: str = ""
    label: Label | None = None


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spread(log: Path, marks: list[Mark], out_dir: Path) -> tuple[list[Path], Path]:
    """Write ``audit-YYYY-MM-DD.jsonl`` per synthetic day and ``labels.csv``; return (day files, labels)."""
    starts = [m.real for m in marks]
    days: dict[str, list[tuple[str, str]]] = defaultdict(list)
    rows: list[dict] = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        received = _parse(event["requestReceivedTimestamp"])
        i = bisect.bisect_right(starts, received.replace(tzinfo=UTC).timestamp()) - 1
        mark = marks[i] if i >= 0 else None
        if mark is None or mark.at is None:
            continue
        delta = mark.at - datetime.fromtimestamp(mark.real, UTC).replace(tzinfo=None)
        for key in ("requestReceivedTimestamp", "stageTimestamp"):
            event[key] = _fmt(_parse(event[key]) + delta)
        day = event["requestReceivedTimestamp"][:10]
        days[day].append((event["stageTimestamp"], json.dumps(event)))
        if mark.label is not None and event["user"].get("username") == mark.identity:
            rows.append(_label_row(event, mark.label, day))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for day in sorted(days):
        path = out_dir / f"audit-{day}.jsonl"
        path.write_text("".join(text + "\n" for _, text in sorted(days[day], key=lambda pair: pair[0])))
        files.append(path)
    labels = out_dir / "labels.csv"
    _write_labels(labels, rows)
    return files, labels


def _label_row(event: dict, label: Label, day: str) -> dict:
    return {
        "auditID": event["auditID"],
        "stage": event["stage"],
        "scenario": label.scenario,
        "technique": label.technique,
        "variant": label.variant,
        "identity": event["user"]["username"],
        "day": day,
        "timestamp": event["requestReceivedTimestamp"],
    }


def _write_labels(path: Path, rows: list[dict]) -> None:
    """Write the rows with the first and last labelled request of the scenario that day as start and end."""
    span: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        key = (row["scenario"], row["day"])
        first, last = span.setdefault(key, [row["timestamp"], row["timestamp"]])
        span[key] = [min(first, row["timestamp"]), max(last, row["timestamp"])]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LABEL_FIELDS)
        writer.writeheader()
        for row in rows:
            start, end = span[(row["scenario"], row["day"])]
            writer.writerow(row | {"start": start, "end": end})
