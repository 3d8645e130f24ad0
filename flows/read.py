"""Read VPC flow logs from files, ``s3://`` prefixes and ``cloudwatch://`` log groups.

The format of each source comes from, in order: its header line (S3 text files have one),
its Parquet schema, ``flow_format`` (``--flow-format``), ``ec2:DescribeFlowLogs`` for a
CloudWatch log group, and the default version 2 format. Files may be plain or gzip.
Everything streams: one chunk of lines (64 MiB) at a time, written on to a Parquet spill.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from errors import KaadError
from flows.fields import DEFAULT_FORMAT, FLOW_SCHEMA, looks_like_header, parse_format
from flows.parse import FlowStats, parse_lines, parse_parquet_batch
from sources.lines import CHUNK_BYTES, LineBatch, StreamProblem, _as_lines, iter_line_batches, open_stream
from sources.rejects import Reject

PARQUET_ROWS = 1 << 20


def _stream_tables(
    raw, source: str, names: tuple[str, ...] | None, stats: FlowStats, chunk_bytes: int
) -> Iterator[pa.Table]:
    """Flow tables from one text stream (plain or gzip); a header line sets the format."""
    try:
        stream = open_stream(raw)
    except OSError as exc:
        stats.reject(Reject(source, 0, "unreadable file", str(exc)))
        return
    fmt = None
    for item in iter_line_batches(stream, source, chunk_bytes):
        if isinstance(item, StreamProblem):
            stats.reject(Reject(item.source, item.line, item.kind, item.detail))
            continue
        texts, lines = item.texts, _lines(item)
        if fmt is None:
            first = texts[0].as_py() if len(texts) else ""
            if looks_like_header(first):
                fmt = parse_format(first)
                texts, lines = texts[1:], lines[1:]
            else:
                fmt = names or parse_format(DEFAULT_FORMAT)
            stats.formats[source] = fmt
        stats.n_bytes += item.n_bytes
        if len(texts):
            yield parse_lines(texts, lines, fmt, source, stats)


def _lines(batch: LineBatch) -> np.ndarray:
    if batch.line_numbers is not None:
        return batch.line_numbers
    return np.arange(batch.first_line, batch.first_line + len(batch.texts), dtype=np.int64)


def _parquet_tables(handle, source: str, stats: FlowStats) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(handle)
    except (OSError, pa.ArrowInvalid) as exc:
        stats.reject(Reject(source, 0, "unreadable file", str(exc)))
        return
    stats.formats[source] = parse_format(" ".join(parquet.schema_arrow.names))
    row = 1
    for batch in parquet.iter_batches(batch_size=PARQUET_ROWS):
        yield parse_parquet_batch(batch, row, source, stats)
        row += batch.num_rows


def read_file(name: str, names: tuple[str, ...] | None, stats: FlowStats, chunk_bytes: int = CHUNK_BYTES):
    """Flow tables from one local file."""
    if name.endswith(".parquet"):
        yield from _parquet_tables(name, name, stats)
        return
    try:
        handle = open(name, "rb")  # noqa: SIM115 - closed when the generator finishes
    except OSError as exc:
        stats.reject(Reject(name, 0, "unreadable file", exc.strerror or str(exc)))
        return
    with handle:
        yield from _stream_tables(handle, name, names, stats, chunk_bytes)


def read_flow_logs(
    inputs: list[str], *, flow_format: str | None = None, aws=None, stats: FlowStats | None = None
) -> Iterator[pa.Table]:
    """Yield flow tables (:data:`flows.fields.FLOW_SCHEMA`) from every input in turn.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "flows.log")
    >>> _ = open(path, "w").write("2 123456789010 eni-1235b8ca123456789 172.31.16.139 "
    ...     "172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\\n")
    >>> [t.column("dstport")[0].as_py() for t in read_flow_logs([path])]
    [22]
    """
    from sources.files import expand_inputs

    stats = stats if stats is not None else FlowStats()
    names = parse_format(flow_format) if flow_format else None
    for name in expand_inputs(inputs):
        if name.startswith("s3://"):
            yield from _read_s3(name, names, aws, stats)
        elif name.startswith("cloudwatch://"):
            yield from _read_cloudwatch(name, names, aws, stats)
        elif name.startswith("eks://"):
            raise KaadError(f"{name!r}: flow logs are read from cloudwatch://GROUP, s3://... or files, not eks://")
        else:
            yield from read_file(name, names, stats)


def spill_flows(
    inputs: list[str],
    path: Path,
    *,
    flow_format: str | None = None,
    aws=None,
    keep: Callable[[pa.Table], pa.Table] | None = None,
) -> FlowStats:
    """Read every input and write the flows to one Parquet file at ``path``; return the stats.

    ``keep`` may filter each table first (a day's time range, say).
    """
    stats = FlowStats()
    with pq.ParquetWriter(path, FLOW_SCHEMA, compression="zstd") as writer:
        for table in read_flow_logs(inputs, flow_format=flow_format, aws=aws, stats=stats):
            if keep is not None:
                table = keep(table)
            if table.num_rows:
                writer.write_table(table)
    return stats


def _read_s3(uri: str, names, aws, stats: FlowStats) -> Iterator[pa.Table]:
    from sources.aws import AwsOptions, client, translated
    from sources.prefetch import lanes
    from sources.s3 import _BodyStream, list_objects, parse_s3_uri

    aws = aws or AwsOptions()
    bucket, prefix = parse_s3_uri(uri)
    s3 = client(aws, "s3")
    keys = list_objects(s3, bucket, prefix, aws)
    if not keys:
        raise KaadError(f"{uri!r}: no flow log objects under this prefix")

    def tables(key: str) -> Iterator[pa.Table]:
        name = f"s3://{bucket}/{key}"
        with translated(f"S3 object {name!r}"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            if key.endswith(".parquet"):
                data = body.read()  # Parquet needs random access: its footer comes last
        if key.endswith(".parquet"):
            yield from _parquet_tables(pa.BufferReader(data), name, stats)
            return
        with io.BufferedReader(_BodyStream(body), 1 << 20) as raw:
            yield from _stream_tables(raw, name, names, stats, CHUNK_BYTES)

    with lanes(keys, tables, aws.workers) as each:  # read ahead in parallel, handed on in key order
        for lane in each:
            yield from lane


def cloudwatch_format(logs_group: str, aws) -> tuple[str, ...] | None:
    """The format of the flow log that delivers to ``logs_group`` (``ec2:DescribeFlowLogs``)."""
    from sources.aws import client, translated

    ec2 = client(aws, "ec2")
    with translated(f"ec2:DescribeFlowLogs for log group {logs_group!r}"):
        found = ec2.describe_flow_logs(Filters=[{"Name": "log-group-name", "Values": [logs_group]}])["FlowLogs"]
    formats = {f.get("LogFormat") or DEFAULT_FORMAT for f in found}
    if len(formats) > 1:
        raise KaadError(
            f"log group {logs_group!r} receives flow logs in {len(formats)} formats; read it with --flow-format"
        )
    return parse_format(formats.pop()) if formats else None


def parse_group_uri(uri: str):
    """``cloudwatch://GROUP`` names the group as written (flow log groups rarely start with
    '/'); ``cloudwatch:///aws/x`` names ``/aws/x``; ``?prefix=`` picks streams."""
    from urllib.parse import parse_qs, urlparse

    from sources.cloudwatch import LogSource

    parsed = urlparse(uri)
    group = parsed.netloc + parsed.path if parsed.netloc else parsed.path
    if not group.strip("/"):
        raise KaadError(f"{uri!r}: name the log group, as in cloudwatch://vpc-flow-logs")
    return LogSource(uri, group.rstrip("/"), parse_qs(parsed.query).get("prefix", [None])[0])


def _read_cloudwatch(uri: str, names, aws, stats: FlowStats) -> Iterator[pa.Table]:
    from sources.aws import AwsOptions, client
    from sources.cloudwatch import _read_stream, list_streams
    from sources.prefetch import lanes

    aws = aws or AwsOptions()
    source = parse_group_uri(uri)
    if names is None:
        names = cloudwatch_format(source.group, aws)
        if names is None:
            raise KaadError(
                f"{uri!r}: no flow log delivers to log group {source.group!r} here, so its format is "
                "unknown; pass --flow-format (CloudWatch lines carry no header)"
            )
    logs = client(aws, "logs")
    streams = list_streams(logs, source)
    if not streams:
        raise KaadError(f"{uri!r}: log group {source.group!r} has no streams")
    since = None if aws.since is None else int(aws.since.timestamp() * 1000)
    until = None if aws.until is None else int(aws.until.timestamp() * 1000)

    def pages(stream: str):
        yield from _read_stream(logs, source, stream, since, until, set(), aws.page_size)

    with lanes(streams, pages, aws.workers) as each:  # read ahead in parallel, handed on stream by stream
        for stream, lane in zip(streams, each, strict=True):
            name = f"{uri}#{stream}"
            first = 1
            for events in lane:
                stats.formats[name] = names
                # One buffer of lines, as files give them: CloudWatch messages carry no newline.
                data = "".join(e["message"].rstrip("\n") + "\n" for e in events).encode()
                texts = _as_lines(data)
                stats.n_bytes += len(data)
                yield parse_lines(texts, np.arange(first, first + len(events), dtype=np.int64), names, name, stats)
                first += len(events)
