"""The daily job pages once per finding: a repeat of an open finding is reported, not paged.

The story: the session's small simulated cluster, trained on days 1-7. The daily job runs
``kaad score --fail-on 99 --notify sns:...`` with MLflow tracking. Day 8 carries five loud
attacks: the job fails and on-call gets one message per alerting identity-day. Nobody has
accepted anything by the next morning, and day 9 is day 8 again: the same identity-days alert
on what they already showed. The report shows each as an open finding (first seen day 8, two
days); the job passes, SNS sends nothing, MLflow records no new finding. On-call looks at the
list of open findings and accepts the developer's by its last seen day, which closes it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import boto3
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from cli import app
from models.persistence import save_bundle
from tests.pipelines.test_open_findings_scored import DEVELOPER, day_later
from tests.sources.aws_support import received_messages

runner = CliRunner()
REGION = "us-east-1"


def test_a_repeated_finding_neither_fails_the_job_nor_pages_until_accepted(
    trained, aws, mlflow_store, tmp_path: Path, monkeypatch
):
    monkeypatch.delenv("KAAD_SIGNING_KEY", raising=False)
    bundle = tmp_path / "model.joblib"
    save_bundle(trained["result"].bundle, bundle, key=b"")
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="kaad-findings")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    out = tmp_path / "daily"
    job = ["--bundle", str(bundle), "--out", str(out), "--format", "json", "--fail-on", "99"]
    job += ["--notify", f"sns:{topic}", "--notify-state", str(tmp_path / "ledger.json"), "--region", REGION]

    day8 = trained["files"][-1]
    first = runner.invoke(app, ["score", day8, *job])
    assert first.exit_code == 1, first.output
    report8 = json.loads(next(out.glob("kaad-*.json")).read_text())
    paged = [f for f in report8["findings"] if f["is_alert"] and not f["suppressed_reason"]]
    assert paged and {f["finding"] for f in paged} == {"new"}
    assert len(received_messages(sqs, queue_url)) == len(paged) == report8["new_findings"]

    day9 = day_later(day8, 1, tmp_path / "day9.jsonl")
    second = runner.invoke(app, ["score", day9, *job])
    assert second.exit_code == 0, second.output
    assert f"({len(paged)} repeat(s) of open findings, not paged)" in second.stdout
    assert "nothing at or above percentile 99: exit 0" in second.stdout
    assert "sns: 0 finding(s) published" in second.stdout and not received_messages(sqs, queue_url)
    day8_name = report8["day"]
    report9 = json.loads((out / f"kaad-{date.fromisoformat(day8_name) + timedelta(days=1)}.json").read_text())
    again = {f["identity"]: f for f in report9["findings"] if f["is_alert"]}
    assert set(again) == {f["identity"] for f in paged}
    assert {(f["finding"], f["first_seen"], f["days_open"]) for f in again.values()} == {("repeat", day8_name, 2)}
    assert (report9["alerts"], report9["new_findings"], report9["repeats"]) == (len(paged), 0, len(paged))
    runs = MlflowClient(mlflow_store).search_runs(
        [e.experiment_id for e in MlflowClient(mlflow_store).search_experiments()],
        filter_string="tags.kind = 'scoring'",
        order_by=["params.day ASC"],
    )
    assert [(r.data.params["day"], r.data.metrics["new_findings"], r.data.metrics["alerts"]) for r in runs] == [
        (day8_name, len(paged), len(paged)),
        (report9["day"], 0, len(paged)),
    ]

    # On-call lists what is open, and closes the developer's finding by its last seen day.
    common = ["--bundle", str(bundle), "--state-dir", str(out / "state")]
    listed = runner.invoke(app, ["accept", "--list", *common])
    assert listed.exit_code == 0, listed.output
    line = (
        f"open finding of {DEVELOPER}: first seen {day8_name}, last seen {report9['day']}, 2 alerting day(s); "
        f"kaad accept {DEVELOPER} --day {report9['day']} closes it"
    )
    assert line in listed.stdout.splitlines()
    closed = runner.invoke(app, ["accept", DEVELOPER, "--day", report9["day"], *common])
    assert closed.exit_code == 0, closed.output
    assert f"from 2 held day(s), {day8_name} to {report9['day']}" in closed.stdout
    assert f"open finding of {DEVELOPER}:" not in runner.invoke(app, ["accept", "--list", *common]).stdout
