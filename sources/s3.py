"""Read audit logs exported to S3: every object under a prefix, streamed, several at a time.

Objects may be gzip or plain and in any format the file reader knows (CloudWatch export
lines, Firehose subscription payloads, JSON lines). With a time range, objects whose key
carries a date (``2026/03/22``, ``2026-03-22``, ``dt=2026-03-22``) outside it are skipped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from urllib.parse import urlparse

from errors import KaadError
from sources.aws import AwsOptions, client, translated
from sources.prefetch import lanes

_KEY_DATE = re.compile(r"(?<!\d)(20\d\d)[/-](\d\d)[/-](\d\d)(?!\d)")


class _BodyStream(io.RawIOBase):
    """A botocore StreamingBody as a raw stream (read in chunks, never whole)."""

    def __init__(self, body) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise KaadError(f"{uri!r} is not an S3 location (s3://bucket/prefix)")
    return parsed.netloc, parsed.path.lstrip("/")


def _in_range(key: str, first: date | None, last: date | None) -> bool:
    m = _KEY_DATE.search(key)
    if m is None or (first is None and last is None):
        return True
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return True
    return (first is None or day >= first) and (last is None or day <= last)


def list_objects(s3, bucket: str, prefix: str, options: AwsOptions) -> list[str]:
    first = options.since.date() if options.since else None
    # until is exclusive: an object dated the until day can still hold earlier events only if
    # until is not midnight; keep that day unless until is exactly its start.
    last = None
    if options.until:
        at_midnight = options.until.time() == options.until.time().min
        last = options.until.date() - (timedelta(days=1) if at_midnight else timedelta(0))
    keys = []
    with translated(f"S3 bucket {bucket!r}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/") and o.get("Size", 1) > 0]
    return sorted(k for k in keys if _in_range(k, first, last))


def read_s3(uri: str, options: AwsOptions) -> Iterator:
    """Yield reader items (line batches, documents, stream problems) for every object."""
    from sources.files import read_stream

    bucket, prefix = parse_s3_uri(uri)
    s3 = client(options, "s3")
    keys = list_objects(s3, bucket, prefix, options)
    if not keys:
        in_range = " in the time range" if options.since or options.until else ""
        raise KaadError(f"{uri!r}: no objects under this prefix" + in_range)

    def items(key: str) -> Iterator:
        name = f"s3://{bucket}/{key}"
        with translated(f"S3 object {name!r}"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with io.BufferedReader(_BodyStream(body), 1 << 20) as raw:
            yield from read_stream(raw, name)

    # Objects are read ahead in parallel and handed on in key order: the same order every run.
    with lanes(keys, items, options.workers) as each:
        for lane in each:
            yield from lane
