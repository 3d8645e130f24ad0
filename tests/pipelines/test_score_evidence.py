"""Evidence from outside the windows (a rule hit, a pod's flows) joins the identity-day ranking.

The story: the model's attack day is scored again with one more source of evidence, as a rule
engine or the flow-log join would give it. The source reads the day's events from the file the
scorer hands it and names two identity-days: an identity the day already had, and the creator
of a CronJob that made no API call today but whose pod did something on the network.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from models.evidence import DayEvidence, utc_day
from pipelines.score import score_day

GHOST = "system:serviceaccount:ci:deployer"  # created the CronJob last week; silent today


class _Source:
    """Names the day's quietest identity and the silent CronJob creator, 40 nats each."""

    def __init__(self) -> None:
        self.read = 0

    def __call__(self, events, day) -> DayEvidence:
        table = pq.read_table(events, columns=["identity", "verb"])
        self.read = table.num_rows
        counts = table.column("identity").to_pandas().value_counts()
        self.quiet = str(counts.index[-1])
        key = utc_day(day)
        index = pd.MultiIndex.from_tuples([(self.quiet, key), (GHOST, key)], names=["identity", "day"])
        frame = pd.DataFrame({"rule:test-rule": [40.0, 0.0], "network:new-destination": [0.0, 40.0]}, index=index)
        reasons = {
            (self.quiet, key, "rule:test-rule"): "rule 'Test rule' (high) matched 1 request",
            (GHOST, key, "network:new-destination"): "its CronJob's pod sent 41 MB to 203.0.113.9:3333",
        }
        return DayEvidence("test", frame, reasons)


@pytest.fixture(scope="module")
def with_evidence(trained):
    source = _Source()
    plain = score_day(trained["files"][-1:], trained["result"].bundle, top=200)
    scored = score_day(trained["files"][-1:], trained["result"].bundle, top=200, evidence=[source])
    return source, plain, scored


def test_the_source_reads_the_days_events_from_the_file_it_is_given(with_evidence):
    source, plain, _ = with_evidence
    assert source.read == plain.stats.n_events - plain.n_other_days > 0


def test_its_nats_add_to_the_identity_days_score_and_are_said_in_its_words(with_evidence):
    source, plain, scored = with_evidence
    before = plain.identities.set_index("identity")["anomaly_score"]
    after = scored.identities.set_index("identity")["anomaly_score"]
    assert after[source.quiet] == pytest.approx(before[source.quiet] + 40.0)
    finding = next(f for f in scored.findings if f.identity == source.quiet)
    assert finding.reasons[0].text == "rule 'Test rule' (high) matched 1 request"
    assert finding.reasons[0].family == "rule"
    assert scored.evidence["test"].source == "test"


def test_an_identity_day_only_the_evidence_names_is_ranked_with_no_windows(with_evidence):
    _, plain, scored = with_evidence
    assert GHOST not in set(plain.identities["identity"])
    row = scored.identities.set_index("identity").loc[GHOST]
    assert row["anomaly_score"] == pytest.approx(40.0) and row["n_windows"] == 0
    finding = next(f for f in scored.findings if f.identity == GHOST)
    assert finding.windows == [] and "203.0.113.9:3333" in finding.reasons[0].text


def test_evidence_must_be_nats_per_identity_day():
    index = pd.MultiIndex.from_tuples([("dev", utc_day("2026-03-05"))], names=["identity", "day"])
    with pytest.raises(ValueError, match="finite nats >= 0"):
        DayEvidence("bad", pd.DataFrame({"rule:x": [-1.0]}, index=index))
    with pytest.raises(ValueError, match="indexed by"):
        DayEvidence("bad", pd.DataFrame({"rule:x": [1.0]}))


def test_every_report_shows_an_identity_day_without_windows(with_evidence, tmp_path):
    from rich.console import Console

    from reports.html import write_html
    from reports.score_outputs import write_csv, write_json, write_parquet
    from reports.score_table import render_table

    _, _, scored = with_evidence
    for write, name in ((write_csv, "day.csv"), (write_json, "day.json"), (write_parquet, "day.parquet")):
        write(scored, tmp_path / name)
    write_html(scored, tmp_path / "day.html")
    console = Console(record=True, width=200)
    console.print(render_table(scored, top=200))
    assert GHOST in console.export_text()
    assert "203.0.113.9:3333" in (tmp_path / "day.html").read_text()
