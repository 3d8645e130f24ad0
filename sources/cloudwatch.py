"""Read EKS audit logs straight from CloudWatch Logs, completely, once, and resumably.

``eks://<cluster>`` means log group ``/aws/eks/<cluster>/cluster``, streams
``kube-apiserver-audit-*``; ``cloudwatch://<log-group>[?prefix=<stream prefix>]`` names any
group. Each stream is read with FilterLogEvents (paginated; streams in parallel). The
checkpoint records, per stream, the last event timestamp read and the eventIds at that
millisecond, so the next run starts at that millisecond (inclusive) and skips exactly the
events already read: nothing sharing a millisecond is lost on a page or run boundary, nothing
is read twice. The caller saves the checkpoint only after everything read has been written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow as pa

from errors import KaadError
from sources.aws import AwsOptions, client, translated
from sources.lines import LineBatch
from sources.prefetch import merge_parallel

AUDIT_PREFIX = "kube-apiserver-audit"


@dataclass(frozen=True)
class LogSource:
    """A log group and the stream prefix to read in it."""

    uri: str
    group: str
    prefix: str | None


def parse_log_uri(uri: str) -> LogSource:
    """``eks://prod`` or ``cloudwatch:///aws/eks/prod/cluster?prefix=kube-apiserver-audit``."""
    parsed = urlparse(uri)
    if parsed.scheme == "eks":
        cluster = (parsed.netloc + parsed.path).strip("/")
        if not cluster:
            raise KaadError(f"{uri!r}: name the cluster, as in eks://prod")
        return LogSource(uri, f"/aws/eks/{cluster}/cluster", AUDIT_PREFIX)
    if parsed.scheme == "cloudwatch":
        group = "/" + (parsed.netloc + parsed.path).strip("/") if not parsed.netloc.startswith("/") else parsed.netloc
        if group == "/":
            raise KaadError(f"{uri!r}: name the log group, as in cloudwatch:///aws/eks/prod/cluster")
        prefix = parse_qs(parsed.query).get("prefix", [None])[0]
        return LogSource(uri, group, prefix)
    raise KaadError(f"{uri!r} is not a CloudWatch source (eks://CLUSTER or cloudwatch://GROUP)")


@dataclass
class Checkpoint:
    """Per stream: the last timestamp read (ms) and the eventIds read at that millisecond."""

    source: str
    streams: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | None, source: str) -> Checkpoint:
        if not path or not os.path.exists(path):
            return cls(source)
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise KaadError(f"checkpoint {path!r} is unreadable ({exc}); move it away to start over") from None
        if data.get("source") != source:
            raise KaadError(f"checkpoint {path!r} belongs to {data.get('source')!r}, not {source!r}")
        return cls(source, data.get("streams", {}))

    def save(self, path: str) -> None:
        """Write atomically: a crash leaves the old checkpoint or the new one, never half."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps({"source": self.source, "streams": self.streams,
                                   "saved": datetime.now(UTC).isoformat()}, indent=1, sort_keys=True))
        os.replace(tmp, target)

    def advance(self, stream: str, events: list[dict]) -> None:
        if not events:
            return
        last = max(e["timestamp"] for e in events)
        state = self.streams.get(stream, {"ts": -1, "ids": []})
        ids = [e["eventId"] for e in events if e["timestamp"] == last]
        if state["ts"] == last:
            ids = sorted(set(state["ids"]) | set(ids))
        elif state["ts"] > last:
            return
        self.streams[stream] = {"ts": last, "ids": sorted(set(ids))}


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def list_streams(logs, source: LogSource) -> list[str]:
    names = []
    kwargs = {"logGroupName": source.group}
    if source.prefix:
        kwargs["logStreamNamePrefix"] = source.prefix
    with translated(f"CloudWatch log group {source.group!r}"):
        for page in logs.get_paginator("describe_log_streams").paginate(**kwargs):
            names += [s["logStreamName"] for s in page.get("logStreams", [])]
    return sorted(names)


def _read_stream(logs, source: LogSource, stream: str, start: int | None, end: int | None,
                 skip_ids: set[str], page_size: int | None = None) -> Iterator[list[dict]]:
    kwargs = {"logGroupName": source.group, "logStreamNames": [stream]}
    if start is not None:
        kwargs["startTime"] = start
    if end is not None:
        kwargs["endTime"] = end
    with translated(f"CloudWatch stream {source.group}/{stream}"):
        pages = logs.get_paginator("filter_log_events").paginate(
            **kwargs, PaginationConfig={"PageSize": page_size} if page_size else {})
        for page in pages:
            events = [e for e in page.get("events", []) if e["eventId"] not in skip_ids]
            if events:
                yield events


def _batch(source: LogSource, stream: str, events: list[dict], first: int) -> LineBatch:
    texts = pa.array([e["message"] for e in events], pa.large_string())
    stamps = pa.array([datetime.fromtimestamp(e["timestamp"] / 1000, tz=UTC).isoformat() for e in events],
                      pa.string())
    lines = np.arange(first, first + len(events), dtype=np.int64)
    size = sum(len(e["message"]) for e in events)
    return LineBatch(f"{source.uri}#{stream}", first, texts, size, fallback_ts=stamps, line_numbers=lines)


def read_cloudwatch(uri: str, options: AwsOptions, checkpoint: Checkpoint | None = None
                    ) -> Iterator[LineBatch]:
    """Yield the audit events of a log group as line batches (one per page per stream).

    ``checkpoint`` (updated in place as pages are handed on) decides where each stream
    starts; the caller saves it once everything handed on is written.
    """
    source = parse_log_uri(uri)
    logs = client(options, "logs")
    streams = list_streams(logs, source)
    if not streams:
        raise KaadError(f"{uri!r}: log group {source.group!r} has no streams"
                        + (f" starting {source.prefix!r}" if source.prefix else "")
                        + "; is audit logging enabled? (kaad doctor " + uri + ")")
    since, until = _ms(options.since), _ms(options.until)

    def pages(stream: str) -> Iterator[list[dict]]:
        state = (checkpoint.streams.get(stream) if checkpoint else None) or {"ts": None, "ids": []}
        start = since if state["ts"] is None else max(since or 0, state["ts"])
        yield from _read_stream(logs, source, stream, start, until, set(state["ids"]), options.page_size)

    ordinals = dict.fromkeys(streams, 1)
    for stream, events in merge_parallel(streams, pages, options.workers):
        yield _batch(source, stream, events, ordinals[stream])
        ordinals[stream] += len(events)
        if checkpoint is not None:
            checkpoint.advance(stream, events)
