"""Reading VPC flow logs: the AWS documentation's example records, every layout and format.

The example lines are copied verbatim from the AWS page "Flow log record examples"
(Amazon VPC user guide): default-format records that were accepted, rejected, and an
aggregation interval with no data.
"""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from errors import KaadError
from flows.fields import parse_format
from flows.parse import FlowStats
from flows.read import read_flow_logs

SSH_ACCEPTED = (
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
)
RDP_REJECTED = (
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"
)
NO_DATA = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
# Same layout as NO_DATA, with the status the documentation describes for lost records.
SKIPPED = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - SKIPDATA"

V5_HEADER = (
    "version account-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol "
    "packets bytes start end action log-status instance-id flow-direction traffic-path"
)


def _read(paths, **kwargs):
    stats = FlowStats()
    tables = list(read_flow_logs([str(p) for p in paths], stats=stats, **kwargs))
    table = pa.concat_tables(tables) if tables else None
    return (table.to_pylist() if table is not None else []), stats


def test_the_documented_default_records_read_as_one_flow_each_and_no_data_is_counted_not_kept(tmp_path):
    path = tmp_path / "flows.log"
    path.write_text("\n".join([SSH_ACCEPTED, RDP_REJECTED, NO_DATA, SKIPPED]) + "\n")
    rows, stats = _read([path])
    ssh, rdp = rows
    assert (ssh["srcaddr"], ssh["dstaddr"], ssh["dstport"], ssh["protocol"]) == ("172.31.16.139", "172.31.16.21", 22, 6)
    assert (ssh["packets"], ssh["bytes"], ssh["action"]) == (20, 4249, "ACCEPT")
    assert ssh["start"].timestamp() == 1418530010 and ssh["end"].timestamp() == 1418530070
    assert rdp["action"] == "REJECT" and rdp["dstport"] == 3389
    assert ssh["account_id"] == "123456789010" and ssh["interface_id"] == "eni-1235b8ca123456789"
    assert ssh["pkt_srcaddr"] is None  # not in version 2
    assert (stats.n_records, stats.n_flows, stats.n_nodata, stats.n_skipdata) == (4, 2, 1, 1)
    assert "SKIPDATA (flows lost" in stats.summary()


def test_an_s3_text_file_names_its_fields_in_a_header_line_and_any_order_is_read(tmp_path):
    path = tmp_path / "111122223333_vpcflowlogs_us-west-2_fl-1_20260322T0000Z_abc.log.gz"
    record = (
        "5 011122223333 eni-0a 10.0.1.5 203.0.113.9 10.0.1.77 203.0.113.9 43120 3333 6 "
        "900 41000000 1774137600 1774137660 ACCEPT OK i-0123 egress 8"
    )
    path.write_bytes(gzip.compress(f"{V5_HEADER}\n{record}\n".encode()))
    (row,), stats = _read([path])
    assert row["pkt_srcaddr"] == "10.0.1.77" and row["srcaddr"] == "10.0.1.5"
    assert row["account_id"] == "011122223333"  # leading zero kept: IDs stay text
    assert (row["flow_direction"], row["traffic_path"], row["instance_id"]) == ("egress", 8, "i-0123")
    assert stats.version == 5 and stats.n_records == 1


def test_a_parquet_file_with_underscore_column_names_reads_the_same(tmp_path):
    path = tmp_path / "x.log.parquet"
    table = pa.table(
        {
            "version": pa.array([5], pa.int32()),
            "account_id": ["011122223333"],
            "srcaddr": ["10.0.1.5"],
            "dstaddr": ["203.0.113.9"],
            "pkt_srcaddr": ["10.0.1.77"],
            "dstport": pa.array([4444], pa.int32()),
            "bytes": pa.array([123], pa.int64()),
            "start": pa.array([1774137600], pa.int64()),
            "log_status": ["OK"],
        }
    )
    pq.write_table(table, path)
    (row,), stats = _read([path])
    assert (row["account_id"], row["pkt_srcaddr"], row["dstport"], row["bytes"]) == (
        "011122223333",
        "10.0.1.77",
        4444,
        123,
    )
    assert row["start"].timestamp() == 1774137600
    assert stats.version == 3  # the newest field named (pkt-srcaddr) is a version 3 field


def test_lines_without_a_header_are_read_in_the_format_given(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text("eni-9 10.0.2.2 198.51.100.7 4444 ACCEPT\n")
    (row,), _ = _read([path], flow_format="${interface-id} ${srcaddr} ${dstaddr} ${dstport} ${action}")
    assert (row["interface_id"], row["dstport"], row["action"]) == ("eni-9", 4444, "ACCEPT")


def test_bad_lines_are_rejected_with_file_and_line_and_the_rest_is_read(tmp_path):
    path = tmp_path / "flows.log"
    path.write_text(
        "\n".join([SSH_ACCEPTED, "2 123456789010 cut off", SSH_ACCEPTED.replace(" 22 ", " ssh "), RDP_REJECTED])
    )
    rows, stats = _read([path])
    assert [r["dstport"] for r in rows] == [22, 3389]
    assert [str(r) for r in stats.rejects] == [
        f"{path}:2: bad flow record: 4 fields where the format has 14 (version account-id interface-id srcaddr ...)",
        f"{path}:3: bad flow record: dstport 'ssh' is not a valid dstport",
    ]


def test_a_truncated_gzip_keeps_the_records_before_the_break_and_says_where_it_broke(tmp_path):
    path = tmp_path / "cut.log.gz"
    whole = gzip.compress(("\n".join([SSH_ACCEPTED] * 200) + "\n").encode())
    path.write_bytes(whole[: len(whole) - 20])
    rows, stats = _read([path])
    assert 0 < len(rows) < 200
    assert any(r.kind == "truncated gzip" for r in stats.rejects)


def test_a_format_naming_a_field_twice_is_refused():
    with pytest.raises(KaadError, match="srcaddr twice"):
        parse_format("${srcaddr} ${srcaddr}")
