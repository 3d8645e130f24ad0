"""The partitions of a lake (``cluster=NAME/date=YYYY-MM-DD/*.parquet``), on disk or on S3.

A task reads its own partition, so only the file names travel from the client to the workers.
S3 is read with boto3, which honours the credential chain and ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from errors import KaadError
from events.schema import EVENT_SCHEMA

_PART = re.compile(r"(?:^|/)cluster=([^/]+)/date=(\d{4}-\d{2}-\d{2})/[^/]+\.parquet$")


@dataclass(frozen=True)
class Partition:
    """One day of one cluster: its Parquet files, in the order they were appended."""

    cluster: str
    day: date
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"cluster={self.cluster}/date={self.day.isoformat()}"


def is_lake_input(path: str) -> bool:
    """Whether ``path`` is a file of a lake partition, or an s3:// prefix holding a lake
    (written by ``kaad ingest --out DIR``: ``cluster=NAME/date=YYYY-MM-DD/*.parquet``)."""
    if not path.startswith("s3://"):
        if Path(path).is_dir():
            return any(_PART.search(str(p).replace("\\", "/")) for p in Path(path).rglob("*.parquet"))
        return bool(_PART.search(path.replace("\\", "/")))
    bucket, prefix = _split_s3(path)
    try:
        listed = _s3().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=20).get("Contents", [])
    except (BotoCoreError, ClientError):  # unreachable or refused: the reader will say so
        return False
    return any(_PART.search(item["Key"]) for item in listed)


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.rstrip("/") + "/" if prefix else ""


def _s3():
    import boto3

    return boto3.client("s3")


def _names(root: str) -> list[str]:
    if root.startswith("s3://") and root.endswith(".parquet"):
        return [root]
    if root.startswith("s3://"):
        bucket, prefix = _split_s3(root)
        names = []
        for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names += [f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", [])]
        return names
    path = Path(root)
    return [str(path)] if path.is_file() else [str(p) for p in path.rglob("*.parquet")]


def lake_partitions(roots: list[str]) -> list[Partition]:
    """Every (cluster, day) partition under ``roots``, sorted by cluster then day.

    A root may be the lake, one cluster of it (``.../cluster=prod``) or one partition.
    """
    files: dict[tuple[str, str], list[str]] = {}
    for root in roots:
        try:
            names = _names(root)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise KaadError(f"cannot list the lake {root!r}: {str(exc).splitlines()[0]}") from None
        for name in names:
            match = _PART.search(name.replace("\\", "/"))
            if match:
                files.setdefault((match[1], match[2]), []).append(name)
    if not files:
        raise KaadError(f"no lake partitions (cluster=NAME/date=YYYY-MM-DD/*.parquet) under {', '.join(roots)}")
    # File names sort in write order (sources/lake.py), so a partition reads back as appended.
    return [
        Partition(cluster, date.fromisoformat(day), tuple(sorted(names)))
        for (cluster, day), names in sorted(files.items())
    ]


def read_partition(partition: Partition, columns: list[str] | None = None) -> pa.Table:
    """The partition's events in :data:`events.schema.EVENT_SCHEMA` (only ``columns``, if given)."""
    schema = EVENT_SCHEMA if columns is None else pa.schema([EVENT_SCHEMA.field(c) for c in columns])
    tables = []
    for name in partition.files:
        source: str | io.BytesIO = name
        if name.startswith("s3://"):
            bucket, _, key = name.removeprefix("s3://").partition("/")
            source = io.BytesIO(_s3().get_object(Bucket=bucket, Key=key)["Body"].read())
        _check_columns(name, pq.read_schema(source).names, schema.names)
        table = pq.read_table(source, columns=schema.names)
        tables.append(table.select(schema.names).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _check_columns(name: str, present: list[str], needed: list[str]) -> None:
    # A lake written by an older kaad lacks the columns added since. They are parsed from fields
    # the lake does not keep (a webhook's URL from its request body), so they cannot be filled in:
    # an empty column would silently read as "no webhook called out".
    missing = [c for c in needed if c not in present]
    if missing:
        raise KaadError(
            f"{name}: lacks column(s) {', '.join(missing)}: it was written by an older kaad; "
            "ingest the logs again into a new lake (kaad ingest ... --out DIR)"
        )
