"""The fields of a VPC flow log record, the flow table they become, and record formats.

A record is space-separated fields in the order its flow log's format names them. The default
format is version 2's fourteen fields; custom formats choose any fields in any order. In S3
text files the first line names them; Parquet files name them with underscores; CloudWatch
lines carry no header, so the format comes from ``--flow-format`` or ``ec2:DescribeFlowLogs``.
"""

from __future__ import annotations

import re

import pyarrow as pa

from errors import KaadError

_STR = pa.string()
_TS = pa.timestamp("s", tz="UTC")

#: field name as AWS spells it -> (column in the flow table, type there, version that added it).
#: IDs (account, interface, instance...) stay text: account ids have leading zeros.
FIELDS: dict[str, tuple[str, pa.DataType, int]] = {
    "version": ("version", pa.int16(), 2),
    "account-id": ("account_id", _STR, 2),
    "interface-id": ("interface_id", _STR, 2),
    "srcaddr": ("srcaddr", _STR, 2),
    "dstaddr": ("dstaddr", _STR, 2),
    "srcport": ("srcport", pa.int32(), 2),
    "dstport": ("dstport", pa.int32(), 2),
    "protocol": ("protocol", pa.int16(), 2),
    "packets": ("packets", pa.int64(), 2),
    "bytes": ("bytes", pa.int64(), 2),
    "start": ("start", _TS, 2),
    "end": ("end", _TS, 2),
    "action": ("action", _STR, 2),
    "log-status": ("log_status", _STR, 2),
    "vpc-id": ("vpc_id", _STR, 3),
    "subnet-id": ("subnet_id", _STR, 3),
    "instance-id": ("instance_id", _STR, 3),
    "tcp-flags": ("tcp_flags", pa.int32(), 3),
    "type": ("type", _STR, 3),
    "pkt-srcaddr": ("pkt_srcaddr", _STR, 3),
    "pkt-dstaddr": ("pkt_dstaddr", _STR, 3),
    "region": ("region", _STR, 4),
    "az-id": ("az_id", _STR, 4),
    "sublocation-type": ("sublocation_type", _STR, 4),
    "sublocation-id": ("sublocation_id", _STR, 4),
    "pkt-src-aws-service": ("pkt_src_aws_service", _STR, 5),
    "pkt-dst-aws-service": ("pkt_dst_aws_service", _STR, 5),
    "flow-direction": ("flow_direction", _STR, 5),
    "traffic-path": ("traffic_path", pa.int16(), 5),
}
#: Fields AWS added later (ECS, reject reasons...) are kept as text if a format names them.
EXTRA_TYPE = _STR

DEFAULT_FORMAT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
)

FLOW_SCHEMA = pa.schema(
    [pa.field(column, typ) for column, typ, _ in FIELDS.values()]
    + [pa.field("source_file", _STR), pa.field("source_line", pa.int64())]
)
FLOW_COLUMNS = tuple(FLOW_SCHEMA.names)

_TOKEN = re.compile(r"\$\{([a-z0-9-]+)\}|([a-z0-9-]+)")


def parse_format(text: str) -> tuple[str, ...]:
    """Return the field names of a format: ``${version} ${srcaddr} ...`` (as AWS shows it),
    a header line, or Parquet's underscore names.

    Raises :class:`KaadError` for a format that names no field or one twice.
    """
    names = tuple(
        (m.group(1) or m.group(2)).replace("_", "-") for m in _TOKEN.finditer(text.strip().lower().replace("_", "-"))
    )
    if not names:
        raise KaadError(f"flow log format {text!r} names no field (e.g. {DEFAULT_FORMAT!r})")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise KaadError(f"flow log format names {', '.join(twice)} twice")
    return names


def looks_like_header(line: str) -> bool:
    """A first line whose words are all field names (S3 text files start with one)."""
    words = line.split()
    return bool(words) and all(w in FIELDS for w in words[:3]) and sum(w in FIELDS for w in words) >= len(words) / 2


def format_version(names: tuple[str, ...]) -> int:
    """The flow log version a format needs: the newest version among its fields."""
    return max((FIELDS[n][2] for n in names if n in FIELDS), default=2)
