"""EKS sources against a real moto server on 127.0.0.1: CloudWatch Logs, S3, SNS, metrics, EKS.

boto3 talks HTTP to the server (AWS_ENDPOINT_URL), so pagination, retries and errors are the
real botocore code paths; a small proxy in front of moto injects throttling and auth faults.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta

import boto3
import pandas as pd
import pytest
from aws_support import FaultProxy
from typer.testing import CliRunner

from cli import app
from pipelines.ingest import ingest
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate
from sources.aws import AwsOptions

REGION = "us-east-1"
GROUP = "/aws/eks/prod/cluster"
runner = CliRunner()


def _client(service: str):
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="session")
def recent_days(tmp_path_factory):
    """Three simulated days ending yesterday (CloudWatch keeps only recent events), attacks on day 3."""
    start = date.today() - timedelta(days=3)
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05, start=start)
    out = tmp_path_factory.mktemp("recent")
    sim = simulate(
        out, days=3, attacks=["secret_enumeration", "stolen_token_external", "privileged_pod"], seed=3, spec=spec
    )
    return sim


def _lines(path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line.rstrip("\n") for line in handle]


def _ms(event: str) -> int:
    stamp = json.loads(event)["stageTimestamp"]
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def put_events(streams: dict[str, list[tuple[int, str]]]) -> None:
    logs = _client("logs")
    existing = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    if GROUP not in existing:
        logs.create_log_group(logGroupName=GROUP)
    for stream, events in streams.items():
        try:
            logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        events = sorted(events, key=lambda e: e[0])
        for i in range(0, len(events), 500):
            logs.put_log_events(
                logGroupName=GROUP,
                logStreamName=stream,
                logEvents=[{"timestamp": t, "message": m} for t, m in events[i : i + 500]],
            )


def _spread(lines: list[str], n_streams: int, same_ms: int = 1) -> dict[str, list[tuple[int, str]]]:
    """Events over streams; ``same_ms`` consecutive events share one millisecond."""
    base = int((datetime.now(UTC) - timedelta(hours=6)).timestamp() * 1000)
    streams: dict[str, list[tuple[int, str]]] = {f"kube-apiserver-audit-{i:032x}": [] for i in range(n_streams)}
    names = list(streams)
    for i, line in enumerate(lines):
        streams[names[i % n_streams]].append((base + (i // same_ms) * 7, line))
    return streams


def _ids(lines: list[str]) -> set[str]:
    return {json.loads(line)["auditID"] for line in lines}


def test_every_event_of_many_streams_and_pages_is_read_once(aws, recent_days):
    lines = _lines(recent_days.files[0])[:3000]
    put_events(_spread(lines, n_streams=3, same_ms=5))
    result = ingest(["eks://prod"], aws=AwsOptions(region=REGION, page_size=100))
    stats = result.stats
    assert stats.n_rejected == 0
    assert stats.n_events + stats.n_merged == 3000
    assert set(result.events["audit_id"]) == _ids(lines)
    assert result.events["source_file"].str.startswith("eks://prod#kube-apiserver-audit-").all()


def test_streams_are_handed_on_in_event_time_not_in_the_order_threads_read_them(aws, recent_days, tmp_path):
    """Three API servers' streams read on three threads, paged small: the events come out as
    the same lines in one file do, each still named by its stream and its position there."""
    lines = _lines(recent_days.files[0])[:900]
    streams = _spread(lines, n_streams=3)
    put_events(streams)
    result = ingest(["eks://prod"], aws=AwsOptions(region=REGION, page_size=40, workers=3))
    one_file = tmp_path / "day.jsonl"
    one_file.write_text("\n".join(lines) + "\n")
    assert list(result.events["audit_id"]) == list(ingest([str(one_file)]).events["audit_id"])
    names = list(streams)
    for audit_id, source, line in result.events[["audit_id", "source_file", "source_line"]].itertuples(index=False):
        stream = names.index(source.removeprefix("eks://prod#"))
        assert json.loads(lines[(line - 1) * 3 + stream])["auditID"] == audit_id


def test_a_resumed_read_has_no_gap_and_no_duplicate(aws, recent_days, tmp_path):
    lines = _lines(recent_days.files[1])
    first, second = lines[:1000], lines[1000:1600]
    streams = _spread(first, n_streams=2, same_ms=4)
    put_events(streams)
    checkpoint = tmp_path / "prod.json"
    options = AwsOptions(region=REGION, page_size=64, checkpoint=str(checkpoint))
    result = ingest(["eks://prod"], aws=options)
    for state in result.checkpoints.values():
        state.save(str(checkpoint))
    assert result.stats.n_events + result.stats.n_merged == 1000
    # New events arrive, three of them in the very millisecond the last read ended on.
    last_stream = max(streams, key=lambda s: streams[s][-1][0])
    last_ms = streams[last_stream][-1][0]
    later = [(last_ms, line) for line in second[:3]] + [(last_ms + 10 + i, line) for i, line in enumerate(second[3:])]
    put_events({last_stream: later})
    again = ingest(["eks://prod"], aws=options)
    assert again.stats.n_events + again.stats.n_merged == len(second)
    assert set(again.events["audit_id"]) == _ids(second)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _read(options: AwsOptions):
    """One scheduled run: read eks://prod, then save the checkpoint (the output is safe)."""
    result = ingest(["eks://prod"], aws=options)
    for state in result.checkpoints.values():
        state.save(options.checkpoint)
    return result


def test_an_event_that_reaches_cloudwatch_late_is_read_exactly_once(aws, recent_days, tmp_path):
    """CloudWatch takes events up to 14 days old, so event time is not arrival order.

    A run reads two minutes of events. Then an event arrives whose timestamp is a minute
    before the newest one read (a delayed delivery), with one ordinary new event. The next
    run re-reads the last 15 minutes of event time and drops the eventIds it already read:
    the late event comes in once, nothing comes in twice, and a third run reads nothing.
    """
    lines = _lines(recent_days.files[1])
    stream = "kube-apiserver-audit-0"
    start = _now_ms() - 120_000
    first = [(start + i * 500, line) for i, line in enumerate(lines[:200])]
    put_events({stream: first})
    options = AwsOptions(region=REGION, page_size=64, checkpoint=str(tmp_path / "prod.json"))
    read = _read(options)
    assert read.stats.n_events + read.stats.n_merged == 200

    newest = first[-1][0]
    late, new = (newest - 60_000, lines[200]), (newest + 1_000, lines[201])
    put_events({stream: [late, new]})
    second = _read(options)
    assert second.stats.n_events + second.stats.n_merged == 2
    assert set(second.events["audit_id"]) == _ids([late[1], new[1]])
    state = second.checkpoints["eks://prod"]
    assert state.n_late_caught == 1 and state.n_beyond_overlap == 0

    third = _read(options)
    assert third.stats.n_events + third.stats.n_merged == 0


def test_an_event_later_than_the_overlap_is_missed_and_the_delivery_lag_is_warned_about(aws, recent_days, tmp_path):
    """The overlap's limit, and how a run shows it is too short.

    FilterLogEvents selects by event time, so an event that reaches CloudWatch later than the
    overlap falls below the next run's start and is missed. kaad cannot see what it misses, but
    it sees how late the events it reads arrived (ingestionTime - timestamp): here they trail
    by about ten minutes against a one-minute ``--overlap``, and the run says so. The
    checkpoint keeps only the eventIds of the last minute read. On the next run an event 30 s
    late is caught, one 5 minutes late is not.
    """
    lines = _lines(recent_days.files[1])
    stream = "kube-apiserver-audit-0"
    start = _now_ms() - 10 * 60_000
    first = [(start + i * 1_000, line) for i, line in enumerate(lines[:100])]
    put_events({stream: first})
    checkpoint = tmp_path / "prod.json"
    args = ["ingest", "eks://prod", "--region", REGION, "--checkpoint", str(checkpoint), "--overlap", "1min"]
    run = runner.invoke(app, [*args, "--out", str(tmp_path / "first.parquet")])
    assert run.exit_code == 0, run.output
    assert "warning: 100 event(s) reached CloudWatch more than 1 min (the overlap) after their timestamp" in run.stderr
    assert "raise --overlap" in run.stderr
    saved = json.loads(checkpoint.read_text())["streams"][stream]
    assert saved["mark"] == first[-1][0]
    assert min(int(ms) for ms in saved["seen"]) >= saved["mark"] - 60_000
    assert sum(len(ids) for ids in saved["seen"].values()) == 61  # the last minute, both ends included

    newest = first[-1][0]
    too_late, late, new = (
        (newest - 5 * 60_000, lines[100]),
        (newest - 30_000, lines[101]),
        (newest + 1_000, lines[102]),
    )
    put_events({stream: [too_late, late, new]})
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "second.parquet")])
    assert again.exit_code == 0, again.output
    assert "(1 late event(s) caught by the overlap)" in again.stdout
    read = set(pd.read_parquet(tmp_path / "second.parquet")["audit_id"])
    assert read == _ids([late[1], new[1]])  # the five-minute-late event is gone for good


def test_a_checkpoint_from_before_the_overlap_resumes_where_it_stopped(aws, recent_days, tmp_path):
    """Older checkpoints hold the last millisecond and its eventIds: resume there, read nothing twice."""
    lines = _lines(recent_days.files[1])
    stream = "kube-apiserver-audit-0"
    start = _now_ms() - 120_000
    put_events({stream: [(start + i * 500, line) for i, line in enumerate(lines[:50])]})
    logs = _client("logs")
    events = logs.filter_log_events(logGroupName=GROUP, logStreamNames=[stream])["events"]
    last = events[-1]
    checkpoint = tmp_path / "prod.json"
    checkpoint.write_text(
        json.dumps({"source": "eks://prod", "streams": {stream: {"ts": last["timestamp"], "ids": [last["eventId"]]}}})
    )
    put_events({stream: [(last["timestamp"] + 1_000, lines[50])]})
    result = _read(AwsOptions(region=REGION, checkpoint=str(checkpoint)))
    assert set(result.events["audit_id"]) == _ids([lines[50]])
    assert result.stats.n_events + result.stats.n_merged == 1


def test_throttling_is_retried_by_botocore(aws, recent_days, monkeypatch):
    lines = _lines(recent_days.files[0])[:400]
    put_events(_spread(lines, n_streams=1))
    proxy = FaultProxy(aws.port)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.inject("FilterLogEvents", "ThrottlingException", 400, "Rate exceeded", times=3)
        result = ingest(["eks://prod"], aws=AwsOptions(region=REGION, page_size=100))
        assert proxy.seen_faults == 3
        assert result.stats.n_events + result.stats.n_merged == 400
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDeniedException", 400, "grant the permission"),
        ("ExpiredTokenException", 400, "the session expired"),
    ],
)
def test_auth_failures_are_one_line_and_leave_the_checkpoint(
    aws, recent_days, monkeypatch, tmp_path, code, status, expected
):
    put_events(_spread(_lines(recent_days.files[0])[:300], n_streams=1))
    checkpoint = tmp_path / "prod.json"
    checkpoint.write_text('{"source": "eks://prod", "streams": {}}')
    before = checkpoint.read_bytes()
    proxy = FaultProxy(aws.port)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.inject("FilterLogEvents", code, status, "not allowed", times=100)
        result = runner.invoke(app, ["ingest", "eks://prod", "--region", REGION, "--checkpoint", str(checkpoint)])
    finally:
        proxy.stop()
    assert result.exit_code == 2
    assert expected in result.stderr and code in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert checkpoint.read_bytes() == before


def test_missing_credentials_unknown_group_and_bucket(aws, monkeypatch, tmp_path):
    unknown = runner.invoke(app, ["ingest", "eks://nope", "--region", REGION])
    assert unknown.exit_code == 2 and "ResourceNotFoundException" in unknown.stderr
    bucket = runner.invoke(app, ["ingest", "s3://no-such-bucket/logs", "--region", REGION])
    assert bucket.exit_code == 2 and "NoSuchBucket" in bucket.stderr
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    checkpoint = tmp_path / "cp.json"
    nocreds = runner.invoke(app, ["ingest", "eks://prod", "--region", REGION, "--checkpoint", str(checkpoint)])
    assert nocreds.exit_code == 2 and "no AWS credentials found" in nocreds.stderr
    assert not checkpoint.exists()


def _firehose(lines: list[str]) -> bytes:
    """Firehose writes concatenated, gzipped CloudWatch subscription payloads."""

    def payload(chunk):
        return json.dumps(
            {
                "messageType": "DATA_MESSAGE",
                "owner": "111122223333",
                "logGroup": GROUP,
                "logStream": "kube-apiserver-audit-0",
                "subscriptionFilters": ["kaad"],
                "logEvents": [{"id": str(i), "timestamp": 1, "message": m} for i, m in enumerate(chunk)],
            }
        )

    body = json.dumps({"messageType": "CONTROL_MESSAGE", "logEvents": []}) + "".join(
        payload(lines[i : i + 50]) for i in range(0, len(lines), 50)
    )
    return gzip.compress(body.encode())


def test_s3_objects_in_each_format(aws, recent_days):
    s3 = _client("s3")
    s3.create_bucket(Bucket="audit-archive")
    lines = _lines(recent_days.files[0])[:900]
    day = recent_days.files[0].name[6:16]
    y, m, d = day.split("-")
    s3.put_object(
        Bucket="audit-archive",
        Key=f"export/{y}/{m}/{d}/000000.gz",
        Body=gzip.compress("".join(f"{json.loads(line)['stageTimestamp']} {line}\n" for line in lines[:300]).encode()),
    )
    s3.put_object(Bucket="audit-archive", Key=f"firehose/{y}/{m}/{d}/part-1", Body=_firehose(lines[300:600]))
    s3.put_object(Bucket="audit-archive", Key=f"jsonl/dt={day}/events.jsonl", Body="\n".join(lines[600:]).encode())
    s3.put_object(Bucket="audit-archive", Key="jsonl/dt=2020-01-01/old.jsonl", Body=lines[0].encode())
    result = ingest(["s3://audit-archive/"], aws=AwsOptions(region=REGION))
    assert result.stats.n_rejected == 0 and result.stats.n_control_messages == 1
    assert set(result.events["audit_id"]) == _ids(lines)
    since = datetime.fromisoformat(day).replace(tzinfo=UTC)
    dated = ingest(["s3://audit-archive/jsonl/"], aws=AwsOptions(region=REGION, since=since))
    assert dated.stats.n_events + dated.stats.n_merged == 300  # the 2020 object is skipped


def test_ingest_to_a_lake_appends_without_duplicates(aws, recent_days, tmp_path):
    lines = _lines(recent_days.files[0])[:500]
    requests = len(_ids(lines))  # a watch's two stages are one request
    put_events(_spread(lines, n_streams=2))
    lake = tmp_path / "data"
    first = runner.invoke(app, ["ingest", "eks://prod", "--region", REGION, "--out", str(lake)])
    assert first.exit_code == 0, first.output
    assert f"{requests} new events, 0 already there" in first.stdout
    again = runner.invoke(app, ["ingest", "eks://prod", "--region", REGION, "--out", str(lake)])
    assert f"0 new events, {requests} already there" in again.stdout
    parts = list(lake.glob("cluster=prod/date=*/*.parquet"))
    assert parts and not list(lake.rglob("*.tmp"))
    assert ingest([str(lake)]).stats.n_events == requests


def test_doctor_with_and_without_audit_logging(aws, tmp_path):
    eks = _client("eks")
    iam = "arn:aws:iam::123456789012:role/eks"
    vpc = {"subnetIds": ["subnet-1"], "securityGroupIds": []}
    eks.create_cluster(
        name="prod",
        roleArn=iam,
        resourcesVpcConfig=vpc,
        logging={"clusterLogging": [{"types": ["api"], "enabled": True}]},
    )
    off = runner.invoke(app, ["doctor", "eks://prod", "--region", REGION])
    assert off.exit_code == 2
    assert "FAIL  audit logging" in off.stdout
    assert "aws eks update-cluster-config --region us-east-1 --name prod --logging" in off.stdout
    eks.create_cluster(
        name="audited",
        roleArn=iam,
        resourcesVpcConfig=vpc,
        logging={"clusterLogging": [{"types": ["audit", "api"], "enabled": True}]},
    )
    logs = _client("logs")
    logs.create_log_group(logGroupName="/aws/eks/audited/cluster")
    logs.create_log_stream(logGroupName="/aws/eks/audited/cluster", logStreamName="kube-apiserver-audit-1")
    logs.put_log_events(
        logGroupName="/aws/eks/audited/cluster",
        logStreamName="kube-apiserver-audit-1",
        logEvents=[{"timestamp": int(datetime.now(UTC).timestamp() * 1000), "message": "{}"}],
    )
    on = runner.invoke(app, ["doctor", "eks://audited", "--region", REGION])
    assert on.exit_code == 0, on.stdout
    assert on.stdout.count("PASS") == 5


@pytest.fixture(scope="session")
def recent_bundle(recent_days, tmp_path_factory):
    from models.detector import DetectorParams
    from models.persistence import save_bundle
    from pipelines.train import TrainConfig, train

    path = tmp_path_factory.mktemp("recent-model") / "model.joblib"
    result = train([str(f) for f in recent_days.files[:2]], TrainConfig(params=DetectorParams(seed=3, min_history=6)))
    save_bundle(result.bundle, path)
    return path


def test_score_eks_end_to_end_with_sns_and_metrics(aws, recent_days, recent_bundle, tmp_path):
    """The simulator's output in moto's S3 and CloudWatch: train from S3, score eks://, alert."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="history")
    for f in recent_days.files[:2]:
        s3.put_object(Bucket="history", Key=f"audit/{f.name}", Body=f.read_bytes())
    trained = runner.invoke(
        app,
        ["train", "s3://history/audit/", "--region", REGION, "--no-track", "--out", str(tmp_path / "s3-model.joblib")],
    )
    assert trained.exit_code == 0, trained.output

    day_lines = _lines(recent_days.files[2])
    put_events({f"kube-apiserver-audit-{i}": [(_ms(line), line) for line in day_lines[i::2]] for i in range(2)})
    sns, sqs = _client("sns"), _client("sqs")
    topic = sns.create_topic(Name="kaad-findings")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    day = recent_days.files[2].name[6:16]
    args = [
        "score",
        "eks://prod",
        "--day",
        day,
        "--region",
        REGION,
        "--bundle",
        str(recent_bundle),
        "--no-track",
        "--out",
        str(tmp_path / "report"),
        "--format",
        "json",
        "--notify",
        f"sns:{topic}",
        "--metrics",
        "cloudwatch:kaad",
        "--notify-state",
        str(tmp_path / "ledger.json"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "report" / f"kaad-{day}.json").read_text())
    attackers = {
        "system:serviceaccount:payments:payments-api",
        "system:serviceaccount:search:search-api",
        "ci-deployer",
    }
    assert attackers & {f["identity"] for f in doc["findings"][:5]}
    # One page per alerting identity-day (the unit --notify publishes since detector v2).
    n_alerts = sum(1 for f in doc["findings"] if f["is_alert"] and not f["suppressed_reason"])
    assert f"sns: {n_alerts} finding(s) published" in result.stdout
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
        )
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in messages]
    assert len(bodies) == n_alerts > 0 and all(b["reasons"] and b["calls"] for b in bodies)
    metrics = {m["MetricName"] for m in _client("cloudwatch").list_metrics(Namespace="kaad")["Metrics"]}
    assert metrics == {"WindowsScored", "Findings", "Suppressed", "Rejects"}

    # The day read from its file scores the same: the streams' order is not the reading threads'.
    local_args = ["score", str(recent_days.files[2]), "--day", day, "--bundle", str(recent_bundle), "--no-track"]
    local = runner.invoke(app, [*local_args, "--out", str(tmp_path / "local"), "--format", "json"])
    assert local.exit_code == 0, local.output
    from_file = json.loads((tmp_path / "local" / f"kaad-{day}.json").read_text())
    assert [(f["identity"], f["anomaly_score"]) for f in from_file["findings"]] == [
        (f["identity"], f["anomaly_score"]) for f in doc["findings"]
    ]

    rerun = runner.invoke(app, [*args, "--force-day"])  # the day was scored: a rerun is forced
    assert rerun.exit_code == 0
    assert f"sns: 0 finding(s) published, {n_alerts} already published before" in rerun.stdout
    assert "day metrics already put before" in rerun.stdout
    assert not sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages")


def test_doctor_without_credentials_says_so_once(monkeypatch, tmp_path):
    """No credentials anywhere: one FAIL line that names the problem once, and the fix."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing is ever sent
    result = runner.invoke(app, ["doctor", "eks://prod", "--region", REGION])
    (line,) = [row for row in result.output.splitlines() if row.startswith("FAIL")]
    assert line.startswith("FAIL  credentials: no AWS credentials found")
    assert line.count("credentials:") == 1
