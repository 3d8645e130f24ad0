"""Read EKS audit logs straight from CloudWatch Logs, completely, once, and resumably.

``eks://<cluster>`` means log group ``/aws/eks/<cluster>/cluster``, streams
``kube-apiserver-audit-*``; ``cloudwatch://<log-group>[?prefix=<stream prefix>]`` names any
group. Each stream is read with FilterLogEvents (paginated; streams in parallel, merged on event time).

CloudWatch accepts events up to 14 days after their timestamp, so an event can arrive after a
newer one was read. The checkpoint therefore keeps, per stream, the latest event time read
(``mark``) and the eventIds read since ``mark - overlap``; the next run re-reads from
``mark - overlap`` (FilterLogEvents filters on event time) and drops the eventIds it already
holds: a late event whose timestamp is within ``overlap`` of ``mark`` arrives exactly once,
nothing is read twice. An event later than that is still missed; events whose ingestionTime
trails their timestamp by more than the overlap are counted so that the caller can warn. The
caller saves the checkpoint only after everything read has been written.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow as pa

from errors import KaadError
from sources.aws import OVERLAP, AwsOptions, client, translated
from sources.lines import LineBatch
from sources.prefetch import lanes

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
    """Per stream: the latest event time read (ms) and the eventIds read in the overlap before it.

    Saved state per stream: ``mark`` (latest timestamp read), ``floor`` (from this time on
    ``seen`` holds every eventId read) and ``seen`` (ms -> eventIds). The counters describe
    the current run and are not saved.
    """

    source: str
    streams: dict[str, dict] = field(default_factory=dict)
    #: Events read this run that are older than the previous run's mark: caught by the overlap.
    n_late_caught: int = 0
    #: Events read this run that reached CloudWatch more than the overlap after their timestamp.
    n_beyond_overlap: int = 0
    #: The largest ingestionTime - timestamp seen this run (ms).
    max_lag_ms: int = 0
    overlap_ms: int = int(OVERLAP.total_seconds() * 1000)
    _runs: dict[str, dict] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def load(cls, path: str | None, source: str) -> Checkpoint:
        if not path or not os.path.exists(path):
            return cls(source)
        try:
            data = json.loads(Path(path).read_text())
            if data.get("source") != source:
                raise KaadError(f"checkpoint {path!r} belongs to {data.get('source')!r}, not {source!r}")
            streams = {name: _stream_state(raw) for name, raw in data.get("streams", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KaadError(f"checkpoint {path!r} is unreadable ({exc}); move it away to start over") from None
        return cls(source, streams)

    def save(self, path: str) -> None:
        """Write atomically: a crash leaves the old checkpoint or the new one, never half."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        for state in self.streams.values():
            _prune(state)
        tmp.write_text(
            json.dumps(
                {"source": self.source, "streams": self.streams, "saved": datetime.now(UTC).isoformat()},
                indent=1,
                sort_keys=True,
            )
        )
        os.replace(tmp, target)

    def begin(self, stream: str, since: int | None) -> tuple[int | None, set[str]]:
        """Where to start reading ``stream`` (ms, inclusive) and the eventIds to drop there."""
        state = self.streams.get(stream)
        if state is None:
            start = since
        else:
            # ``floor`` only binds when the overlap grew since the last run (or the checkpoint
            # predates overlaps): below it the eventIds read are no longer known.
            start = max(since or 0, state["floor"] or 0, state["mark"] - self.overlap_ms)
        self._runs[stream] = {"start": start, "mark": None if state is None else state["mark"]}
        seen = state["seen"] if state else {}
        return start, {i for ms, ids in seen.items() if start is None or int(ms) >= start for i in ids}

    def advance(self, stream: str, events: list[dict]) -> None:
        """Record ``events`` of ``stream`` (already handed on) as read."""
        if not events:
            return
        run = self._runs.setdefault(stream, {"start": None, "mark": None})
        state = self.streams.setdefault(stream, {"mark": -1, "floor": run["start"], "seen": {}})
        for e in events:
            state["seen"].setdefault(str(e["timestamp"]), []).append(e["eventId"])
            if run["mark"] is not None and e["timestamp"] < run["mark"]:
                self.n_late_caught += 1
            lag = e.get("ingestionTime", e["timestamp"]) - e["timestamp"]
            self.max_lag_ms = max(self.max_lag_ms, lag)
            self.n_beyond_overlap += lag > self.overlap_ms
        state["mark"] = max(state["mark"], max(e["timestamp"] for e in events))
        # The next run starts at mark - overlap at the earliest: older eventIds are never needed.
        state["floor"] = max(run["start"] or 0, state["mark"] - self.overlap_ms)
        # Pruning walks every remembered millisecond: do it once the floor has moved a quarter
        # overlap (at most 1.25 overlaps are held in memory), and exactly on save.
        if state["floor"] >= run.get("pruned", -1) + self.overlap_ms // 4:
            _prune(state)
            run["pruned"] = state["floor"]

    def lag_warning(self) -> str | None:
        """One line when events read this run trailed their timestamp by more than the overlap.

        Such an event is caught only if it arrives before the run reads past it; one arriving
        later falls below the next run's start and is missed. kaad cannot see the events it
        misses, but a delivery lag beyond the overlap is the sign that it can happen.
        """
        if not self.n_beyond_overlap:
            return None
        return (
            f"{self.n_beyond_overlap:,} event(s) reached CloudWatch more than {_minutes(self.overlap_ms)} "
            f"(the overlap) after their timestamp, up to {_minutes(self.max_lag_ms)}; an event that late "
            "arriving between runs is missed: raise --overlap above the delivery lag"
        )


def _prune(state: dict) -> None:
    state["seen"] = {ms: ids for ms, ids in state["seen"].items() if int(ms) >= state["floor"]}


def _minutes(ms: int) -> str:
    return f"{round(ms / 60_000, 1):g} min"


def _stream_state(raw: dict) -> dict:
    """A saved stream state; a checkpoint from before overlaps (``ts``, ``ids``) resumes at ``ts``."""
    if "ts" in raw:
        return {"mark": int(raw["ts"]), "floor": int(raw["ts"]), "seen": {str(raw["ts"]): list(raw["ids"])}}
    return {
        "mark": int(raw["mark"]),
        "floor": int(raw["floor"] or 0),
        "seen": {str(int(ms)): [str(i) for i in ids] for ms, ids in raw["seen"].items()},
    }


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


def _read_stream(
    logs,
    source: LogSource,
    stream: str,
    start: int | None,
    end: int | None,
    skip_ids: set[str],
    page_size: int | None = None,
) -> Iterator[list[dict]]:
    kwargs: dict[str, Any] = {"logGroupName": source.group, "logStreamNames": [stream]}
    if start is not None:
        kwargs["startTime"] = start
    if end is not None:
        kwargs["endTime"] = end
    with translated(f"CloudWatch stream {source.group}/{stream}"):
        pages = logs.get_paginator("filter_log_events").paginate(
            **kwargs, PaginationConfig={"PageSize": page_size} if page_size else {}
        )
        for page in pages:
            events = [e for e in page.get("events", []) if e["eventId"] not in skip_ids]
            if events:
                yield events


def _batch(source: LogSource, streams: list[str], rows: list[tuple[int, int, int, dict]]) -> LineBatch:
    """One batch of (timestamp, stream index, ordinal, event) rows, each naming its stream."""
    events = [r[3] for r in rows]
    texts = pa.array([e["message"] for e in events], pa.large_string())
    stamps = pa.array([datetime.fromtimestamp(e["timestamp"] / 1000, tz=UTC).isoformat() for e in events], pa.string())
    names = [f"{source.uri}#{stream}" for stream in streams]
    where = pa.array([names[r[1]] for r in rows], pa.string())
    lines = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    size = sum(len(e["message"]) for e in events)
    return LineBatch(source.uri, int(lines[0]), texts, size, fallback_ts=stamps, line_numbers=lines, sources=where)


def in_time_order(pages: list[Iterator[list[dict]]]) -> Iterator[list[tuple[int, int, int, dict]]]:
    """Merge streams' pages into runs of (timestamp, stream index, ordinal, event), oldest first.

    The API servers of a cluster write one stream each, side by side in time, and pages of
    them arrive in whatever order the reading threads finish; scoring learns first sights
    in the order events come, so the streams are merged on event time (ties: stream, then
    position in it), never on arrival, and the order does not depend on page boundaries.
    An event is handed on once every stream still being read has shown a later time: a
    stream's next page can still hold its last time. Memory: about a page a stream.
    """
    buffers: dict[int, list[tuple[int, dict]]] = {i: [] for i in range(len(pages))}
    shown = dict.fromkeys(range(len(pages)), -math.inf)  # the latest time each live stream has shown
    ordinal = [1] * len(pages)
    while True:
        safe = min(shown.values(), default=math.inf)  # nothing older than this can still come
        run = []
        for i, buffer in buffers.items():
            run += [(e["timestamp"], i, o, e) for o, e in buffer if e["timestamp"] < safe]
            buffers[i] = [(o, e) for o, e in buffer if e["timestamp"] >= safe]
        if run:
            run.sort(key=lambda r: r[:3])
            yield run
        if not shown:
            return
        for i in [i for i, t in shown.items() if t == safe]:  # the streams that hold the others back
            page = next(pages[i], None)
            if page is None:
                del shown[i]
                continue
            buffers[i] += [(ordinal[i] + k, e) for k, e in enumerate(page)]
            ordinal[i] += len(page)
            shown[i] = max([shown[i], *(e["timestamp"] for e in page)])


def read_cloudwatch(uri: str, options: AwsOptions, checkpoint: Checkpoint | None = None) -> Iterator[LineBatch]:
    """Yield the audit events of a log group as line batches, its streams merged in time order.

    ``checkpoint`` (updated in place as pages are handed on) decides where each stream
    starts; the caller saves it once everything handed on is written.
    """
    source = parse_log_uri(uri)
    logs = client(options, "logs")
    streams = list_streams(logs, source)
    if not streams:
        raise KaadError(
            f"{uri!r}: log group {source.group!r} has no streams"
            + (f" starting {source.prefix!r}" if source.prefix else "")
            + "; is audit logging enabled? (kaad doctor "
            + uri
            + ")"
        )
    since, until = _ms(options.since), _ms(options.until)
    checkpoint = checkpoint if checkpoint is not None else Checkpoint(uri)
    checkpoint.overlap_ms = int(options.overlap.total_seconds() * 1000)
    plans = {stream: checkpoint.begin(stream, since) for stream in streams}

    def pages(stream: str) -> Iterator[list[dict]]:
        start, skip = plans[stream]
        if start is not None and until is not None and start > until:
            return
        yield from _read_stream(logs, source, stream, start, until, skip, options.page_size)

    with lanes(streams, pages, options.workers, all_at_once=True) as each:
        for run in in_time_order(each):
            yield _batch(source, streams, run)
            handed: dict[int, list[dict]] = {}
            for r in run:
                handed.setdefault(r[1], []).append(r[3])
            for i, events in handed.items():
                checkpoint.advance(streams[i], events)
