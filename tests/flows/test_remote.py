"""Flow logs from S3 (text with a header, Parquet) and CloudWatch (no header: the format comes
from ec2:DescribeFlowLogs) on a real moto server."""

from __future__ import annotations

import gzip
import io
import time

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from errors import KaadError
from flows.parse import FlowStats
from flows.read import read_flow_logs
from sources.aws import AwsOptions

REGION = "us-east-1"
V5 = (
    "${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${dstport} ${bytes} ${start} ${end} "
    "${action} ${log-status}"
)


def _read(uri: str, **kwargs) -> tuple[list[dict], FlowStats]:
    stats = FlowStats()
    tables = list(read_flow_logs([uri], aws=AwsOptions(region=REGION), stats=stats, **kwargs))
    return pa.concat_tables(tables).to_pylist(), stats


def test_s3_text_and_parquet_objects_in_the_aws_layout_are_read(aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="flows")
    prefix = "AWSLogs/011122223333/vpcflowlogs/us-east-1/2026/03/22/"
    header = V5.replace("${", "").replace("}", "")
    text = f"{header}\n5 eni-1 10.0.1.5 203.0.113.9 10.0.1.77 3333 900 1774137600 1774137660 ACCEPT OK\n"
    s3.put_object(Bucket="flows", Key=prefix + "a.log.gz", Body=gzip.compress(text.encode()))
    sink = io.BytesIO()
    pq.write_table(
        pa.table({"srcaddr": ["10.0.1.6"], "dstport": pa.array([443], pa.int32()), "log_status": ["OK"]}), sink
    )
    s3.put_object(Bucket="flows", Key=prefix + "b.log.parquet", Body=sink.getvalue())
    rows, stats = _read("s3://flows/AWSLogs/")
    assert sorted((r["srcaddr"], r["dstport"]) for r in rows) == [("10.0.1.5", 3333), ("10.0.1.6", 443)]
    assert [r["pkt_srcaddr"] for r in rows if r["dstport"] == 3333] == ["10.0.1.77"]
    assert stats.n_flows == 2


def test_cloudwatch_lines_take_their_format_from_the_flow_log_that_delivers_to_the_group(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    logs.create_log_group(logGroupName="vpc-flows")
    ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="vpc-flows",
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
        LogFormat=V5,
    )
    logs.create_log_stream(logGroupName="vpc-flows", logStreamName="eni-1-all")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="vpc-flows",
        logStreamName="eni-1-all",
        logEvents=[
            {
                "timestamp": now,
                "message": "5 eni-1 10.0.1.5 203.0.113.9 10.0.1.77 4444 77 1774137600 1774137660 ACCEPT OK",
            },
            {"timestamp": now + 1, "message": "5 eni-1 oops"},
        ],
    )
    rows, stats = _read("cloudwatch://vpc-flows")
    assert [(r["pkt_srcaddr"], r["dstport"], r["bytes"]) for r in rows] == [("10.0.1.77", 4444, 77)]
    assert [str(r) for r in stats.rejects] == [
        "cloudwatch://vpc-flows#eni-1-all:2: bad flow record: 3 fields where the format has 11 "
        "(version interface-id srcaddr dstaddr ...)"
    ]


def test_a_cloudwatch_group_no_flow_log_delivers_to_needs_flow_format(aws):
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="copied")
    logs.create_log_stream(logGroupName="copied", logStreamName="s")
    with pytest.raises(KaadError, match="pass --flow-format"):
        _read("cloudwatch://copied")


def test_a_cloudwatch_group_is_read_for_the_time_the_scored_day_needs(aws, tmp_path):
    # A group holds two days of records: three days before the scored day, and the day itself.
    # With the model's network baseline only the day is read (CloudWatch startTime/endTime);
    # without one, the history days before it are read too, since they are then the normal.
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from flows.baseline import NetworkBaseline
    from flows.source import NetworkEvidence

    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="flows-by-day")
    logs.create_log_stream(logGroupName="flows-by-day", logStreamName="eni-1-all")
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    events = []
    for when in (day - timedelta(days=3), day):
        s = int(when.timestamp())
        events.append(
            {
                "timestamp": s * 1000 + 60_000,
                "message": f"5 eni-1 10.0.1.5 203.0.113.9 10.0.1.77 443 77 {s} {s + 60} ACCEPT OK",
            }
        )
    logs.put_log_events(logGroupName="flows-by-day", logStreamName="eni-1-all", logEvents=events)
    audit = tmp_path / "audit.jsonl"
    audit.write_text("")
    options = AwsOptions(region=REGION)

    def records(bound: bool) -> int:
        source = NetworkEvidence(["cloudwatch://flows-by-day"], [str(audit)], flow_format=V5, aws=options)
        if bound:
            source.bind(SimpleNamespace(network_baseline=NetworkBaseline.empty().as_dict()))
        source(None, day.date())
        assert source.stats is not None
        return source.stats.n_records

    assert records(bound=True) == 1
    assert records(bound=False) == 2
