"""No alert goes missing: every window the exit code counts is paged, whatever --top says.

Scoring publishes to a real SNS topic on a moto server on 127.0.0.1; an SQS queue subscribed
to the topic is what the on-call rota would receive, and the test reads it back.
"""

from __future__ import annotations

import json

import boto3
import pandas as pd
import pytest
from aws_support import received_messages
from support import cut_for
from typer.testing import CliRunner

from cli import app
from models.persistence import save_bundle

REGION = "us-east-1"
runner = CliRunner()


@pytest.fixture
def oncall(aws):
    """A topic and the queue subscribed to it, on fresh moto state with dummy credentials."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="kaad-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, sqs, queue


def test_every_identity_day_at_or_above_fail_on_is_paged_not_only_the_top(oncall, trained, tmp_path):
    topic, sqs, queue = oncall
    bundle = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle)
    day_file = trained["files"][-1]
    cut, n = cut_for(trained["result"].bundle, day_file, 8)  # n >= 8 identity-days at or above --fail-on
    args = [
        "score",
        day_file,
        "--bundle",
        str(bundle),
        "--no-track",
        "--top",
        "5",
        "--fail-on",
        repr(cut),
        "--out",
        str(tmp_path / "report"),
        "--format",
        "json",
        "--region",
        REGION,
        "--notify",
        f"sns:{topic}",
        "--notify-state",
        str(tmp_path / "ledger.json"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"{n} at or above percentile {cut:g}: exit 1" in result.stdout
    assert f"sns: {n} finding(s) published, 0 already published before" in result.stdout
    pages = {(p["identity"], p["day"]): p for p in received_messages(sqs, queue)}
    [doc_path] = (tmp_path / "report").glob("kaad-*.json")
    doc = json.loads(doc_path.read_text())
    # The pages are exactly the identity-days the exit code counted, each explained as in the report.
    counted = {
        (r["identity"], pd.Timestamp(r["day"]).strftime("%Y-%m-%d"))
        for r in doc["all_rows"]
        if r["level"] == "identity-day" and r["percentile"] >= cut and not r["suppressed"]
    }
    assert len(counted) == n and set(pages) == counted
    for f in doc["findings"]:
        page = pages.get((f["identity"], f["day"]))
        if page is not None:
            assert page["reasons"] == [f"[{r['rarity']}] {r['text']}" for r in f["reasons"]] and page["calls"]
            assert [w["window_start"] for w in page["windows"]] == [w["window_start"] for w in f["windows"]]
    # A rerun pages nobody twice, and still exits 1 for the same identity-days.
    rerun = runner.invoke(app, [*args, "--force-day"])  # the day was scored: a rerun is forced
    assert rerun.exit_code == 1
    assert f"sns: 0 finding(s) published, {n} already published before" in rerun.stdout
    assert received_messages(sqs, queue) == []
