"""Scoring a day of a lake: on a Dask cluster it gives what this process gives, value for value.

A model learns the first two days of the two-cluster lake (tests/engine/conftest.py); the
third day is then scored, each cluster's partition a task, against the model's day state. The
state before the day goes to the tasks as a small table of keys; what the day introduced comes
back and the state learns it. On one cluster, the partition path gives what the stream path
(`kaad score FILES`) gives.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

import boto3
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from engine.lake import lake_partitions
from engine.score import StateTable
from engine.train import EngineConfig
from errors import KaadError
from models.day_state import DayState
from models.detector import DetectorParams
from models.persistence import save_bundle
from pipelines.ingest import Ingestor
from pipelines.score import score_batches, score_day
from pipelines.train import TrainConfig, train

DAY = date(2026, 3, 4)  # the lake's third day; the model learns the two before it
UNTIL = datetime(2026, 3, 4, tzinfo=UTC)


def _keys(encoder) -> list[set]:
    sets = [*encoder.seen_, encoder.identities_, encoder.ip_ranges_]
    return [set(np.concatenate(s._runs).tolist()) if s._runs else set() for s in sets]  # a set may be empty


def _trained(roots: list[str]):
    config = TrainConfig(until=UNTIL, params=DetectorParams(seed=0, warmup_days=0))
    return train(roots, config).bundle


@pytest.fixture(scope="module")
def bundle(lake):
    return _trained([str(lake)])


def _scored(inputs, bundle, engine: EngineConfig | None = None, **kwargs):
    """The day scored against a fresh day state; the state afterwards."""
    state = DayState.from_bundle(bundle, "lake")
    result = score_day(inputs, bundle, day=DAY, state=state, engine=engine, **kwargs)
    return result, state


def _findings(result) -> list:
    return [
        (
            f.rank,
            f.identity,
            f.anomaly_score,
            f.is_alert,
            [r.line() for r in f.reasons],
            [(w.window_start, w.anomaly_score, [r.line() for r in w.reasons], w.calls.to_dict()) for w in f.windows],
        )
        for f in result.findings
    ]


def _assert_same(got, expected) -> None:
    pd.testing.assert_frame_equal(got.windows, expected.windows, check_exact=True)
    pd.testing.assert_frame_equal(got.identities, expected.identities, check_exact=True)
    assert _findings(got) == _findings(expected)
    assert (got.day, got.threshold, got.stats.n_events) == (expected.day, expected.threshold, expected.stats.n_events)


def _assert_same_state(got: DayState, expected: DayState) -> None:
    assert _keys(got.encoder) == _keys(expected.encoder)
    assert got.last_day == expected.last_day == DAY
    assert sorted(got.held) == sorted(expected.held)
    pd.testing.assert_frame_equal(got.rarity.hits_, expected.rarity.hits_, check_exact=True)
    pd.testing.assert_frame_equal(got.rarity.trials_, expected.rarity.trials_, check_exact=True)


@pytest.fixture(scope="module")
def on_local(lake, bundle):
    return _scored([str(lake)], bundle)


def test_a_lake_day_is_scored_for_every_cluster_with_qualified_identities(on_local):
    result, state = on_local
    identities = set(result.identities["identity"])
    assert any(i.endswith("@prod") for i in identities) and any(i.endswith("@staging") for i in identities)
    assert result.day == DAY and result.stats.n_files == 2  # one partition of the day per cluster
    # The state learned the day: what its quiet windows introduced is no longer new.
    assert state.last_day == DAY


def test_dask_scores_a_lake_day_as_the_local_engine_does(client, lake, bundle, on_local):
    result, state = on_local
    on_dask, dask_state = _scored([str(lake)], bundle, EngineConfig("dask", client.scheduler.address))
    _assert_same(on_dask, result)
    _assert_same_state(dask_state, state)
    assert len(result.findings) > 0 and result.stats.n_events > 1_000


def test_a_lake_day_on_s3_scores_the_same(client, lake, bundle, on_local, moto):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="score-lake")
    for path in lake.rglob("*.parquet"):
        s3.upload_file(str(path), "score-lake", f"lake/{path.relative_to(lake).as_posix()}")
    on_s3, s3_state = _scored(["s3://score-lake/lake/"], bundle, EngineConfig("dask", client.scheduler.address))
    _assert_same(on_s3, on_local[0])
    _assert_same_state(s3_state, on_local[1])


def test_one_clusters_partition_scores_as_its_events_streamed(lake):
    """No qualified names on one cluster: the lake path ranks and explains the day exactly as
    `kaad score FILES` does, and teaches the day state the same."""
    cluster = lake / "cluster=prod"
    bundle = _trained([str(cluster)])
    by_partition, state = _scored([str(cluster)], bundle)
    files = [f for p in lake_partitions([str(cluster)]) if p.day == DAY for f in p.files]
    streamed_state = DayState.from_bundle(bundle, "lake")
    streamed = score_batches(Ingestor().iter_batches(files), bundle, day=DAY, state=streamed_state)
    pd.testing.assert_frame_equal(by_partition.windows, streamed.windows, check_exact=True)
    pd.testing.assert_frame_equal(by_partition.identities, streamed.identities, check_exact=True)
    assert _findings(by_partition) == _findings(streamed)
    _assert_same_state(state, streamed_state)


def test_the_state_travels_as_a_table_of_keys(bundle):
    """Eight bytes a learned (identity, value) key and one for its set; rebuilt, it is the same state."""
    table = StateTable.of(bundle.encoder)
    assert table.nbytes == 9 * len(table) > 0
    assert _keys(table.encoder()) == _keys(copy.deepcopy(bundle.encoder))


def test_kaad_score_takes_the_engine_and_the_scheduler(client, lake, bundle, tmp_path, monkeypatch):
    model = tmp_path / "model.joblib"
    save_bundle(bundle, model)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", client.scheduler.address)
    args = ["score", str(lake), "--bundle", str(model), "--day", DAY.isoformat(), "--engine", "dask"]
    result = CliRunner().invoke(app, [*args, "--no-track", "--out", str(tmp_path / "out"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "kaad: 2/2 partitions of the day featurised" in result.stderr
    assert f"day scored: {DAY} (UTC)" in result.output
    scored = pd.read_csv(tmp_path / "out" / f"kaad-{DAY}.csv")
    assert scored["identity"].str.endswith(("@prod", "@staging")).all()


def test_kaad_score_day_all_takes_a_lake_day_by_day_through_the_engine(client, lake, bundle, tmp_path, monkeypatch):
    """--day all on a lake scores each of its days as --day DAY does, the day's partitions a
    task each on the Dask cluster: the two days inside training are skipped with their reason
    before anything is read, and the third gives the table --day gives it. Given no scheduler
    (no --scheduler, no DASK_SCHEDULER_ADDRESS), kaad starts a LocalCluster of worker processes
    on 127.0.0.1 itself, its dashboard on a free port and linked on stderr; --day DAY here runs
    on the scheduler the test started."""
    model = tmp_path / "model.joblib"
    save_bundle(bundle, model)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    common = ["score", str(lake), "--bundle", str(model), "--engine", "dask", "--no-track", "--format", "csv"]
    every = CliRunner().invoke(app, [*common, "--day", "all", "--out", str(tmp_path / "all")])
    assert every.exit_code == 0, every.output
    assert "kaad: Dask dashboard at http://127.0.0.1:" in every.stderr
    assert every.stderr.count("kaad: 2/2 partitions of the day featurised") == 1  # the third day's two clusters
    assert "day skipped: 2026-03-02" in every.output and "1 day(s) scored, 2 skipped" in every.output
    day = ["--day", DAY.isoformat(), "--scheduler", client.scheduler.address, "--out", str(tmp_path / "one")]
    one = CliRunner().invoke(app, [*common, *day])
    assert one.exit_code == 0, one.output
    name = f"kaad-{DAY}.csv"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "all" / name), pd.read_csv(tmp_path / "one" / name))


def test_dask_scoring_refuses_inputs_that_are_not_a_lake(bundle, tmp_path):
    from pathlib import Path

    model = tmp_path / "model.joblib"
    save_bundle(bundle, model)
    log = Path(__file__).resolve().parents[1] / "data" / "audit" / "normal_3days.jsonl"
    args = ["score", str(log), "--engine", "dask", "--no-track", "--bundle", str(model), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--engine dask reads a lake" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("state/*/*.joblib"))  # refused before the day state learned anything


def test_the_same_windows_score_the_same_bit_for_bit(on_local, bundle):
    """The forest's score of a window does not depend on the order threads finish in (it did:
    sklearn's threads add the trees' depths in the order they finish, and the last bits tipped
    calibrated ranks), so a day scored twice, or by two engines, ranks the same."""
    from models.detector import anomaly_scores

    windows = on_local[0].windows[bundle.feature_names]
    first = anomaly_scores(bundle.detector, windows)
    assert all(anomaly_scores(bundle.detector, windows).equals(first) for _ in range(5))


def test_kaads_rules_run_beside_the_model_on_a_lake_day(lake, tmp_path):
    """--rules with a lake of one cluster: the rules read the day's events as the tasks read
    them, and their evidence joins the model's ranking. The day is prod's third, with one
    anonymous request answered."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from events.schema import EVENT_SCHEMA
    from rules.evidence import rule_evidence

    day_lake = tmp_path / "lake"
    for part in lake.glob(f"cluster=prod/date={DAY}"):
        shutil.copytree(part, day_lake / part.relative_to(lake))
    anonymous = {
        "audit_id": "anon-1",
        "timestamp": datetime(2026, 3, 4, 12, tzinfo=UTC),
        "identity": "system:anonymous",
        "verb": "list",
        "target_resource": "secrets",
        "request_uri": "/api/v1/secrets",
        "auth_decision": "allow",
        "response_code": 200,
        "source_ip": "203.0.113.7",
    }
    row = {f.name: pa.array([anonymous.get(f.name)], f.type) for f in EVENT_SCHEMA}
    pq.write_table(pa.table(row, schema=EVENT_SCHEMA), day_lake / f"cluster=prod/date={DAY}/part-zz.parquet")
    bundle = _trained([str(lake / "cluster=prod")])
    result, _ = _scored([str(day_lake)], bundle, evidence=(rule_evidence(("kaad",), bundle),))
    named = set(result.evidence["rule"].contributions.index.get_level_values("identity"))
    assert named == {"system:anonymous"}
    top = result.identities.set_index("identity").loc["system:anonymous"]
    assert "Anonymous Request Allowed" in top["reasons"]


def test_rules_with_a_lake_of_several_clusters_are_refused_in_one_line(lake, bundle):
    from rules.evidence import rule_evidence

    with pytest.raises(KaadError, match=r"--rules or --flow-logs with a lake of several clusters is not supported"):
        _scored([str(lake)], bundle, evidence=(rule_evidence(("kaad",), bundle),))
