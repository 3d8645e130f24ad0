"""The Dask engine gives the local engine's features, model and scores, value for value.

A lake of two simulated clusters and three days (tests/engine/conftest.py) is featurised per
(cluster, day) partition, in this process and on a real LocalCluster of two worker processes;
then from S3 (a moto server); then with a worker that dies in the middle of a partition.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from distributed.diagnostics.plugin import WorkerPlugin
from typer.testing import CliRunner

from cli import app
from engine.history import Options, featurise_lake
from engine.lake import lake_partitions
from engine.train import EngineConfig
from models.detector import DetectorParams
from pipelines.train import TrainConfig, train


def _keys(encoder) -> list[set]:
    # A set may be empty (no pod-creating controller in a small lake names an owner).
    sets = [*encoder.seen_, encoder.identities_, encoder.ip_ranges_]
    return [set(np.concatenate([np.empty(0, np.uint64), *s._runs]).tolist()) for s in sets]


@pytest.fixture(scope="module")
def local(lake):
    return featurise_lake(lake_partitions([str(lake)]), Options(qualify=True), on_progress=None)


def test_a_lake_is_cut_into_one_partition_per_cluster_and_day(lake):
    partitions = lake_partitions([str(lake)])
    assert [(p.cluster, p.day.isoformat()) for p in partitions] == [
        ("prod", "2026-03-02"),
        ("prod", "2026-03-03"),
        ("prod", "2026-03-04"),
        ("staging", "2026-03-02"),
        ("staging", "2026-03-03"),
        ("staging", "2026-03-04"),
    ]


def test_features_are_per_cluster_and_identity(local):
    identities = set(local.windows.index.get_level_values("identity"))
    assert any(i.endswith("@prod") for i in identities) and any(i.endswith("@staging") for i in identities)
    assert all(i.endswith(("@prod", "@staging")) for i in identities)


def test_dask_features_equal_local_features_value_for_value(client, lake, local):
    on_dask = featurise_lake(lake_partitions([str(lake)]), Options(qualify=True), client=client, on_progress=None)
    pd.testing.assert_frame_equal(on_dask.windows, local.windows, check_exact=True)
    assert on_dask.profiles.profiles() == local.profiles.profiles()
    assert _keys(on_dask.encoder) == _keys(local.encoder)
    assert on_dask.n_events == local.n_events > 10_000


def _received(dask_worker) -> list[str]:
    """The keys this worker has fetched from another worker, oldest first."""
    return [str(key) for transfer in dask_worker.transfer_incoming_log for key in transfer["keys"]]


def test_a_prepared_day_stays_on_the_worker_that_prepared_it(client, lake):
    """A prepared day is a day's events made ready (about 100 MB at a real cluster's rate) for
    its two steps, the features and the keys. They run where it is: left to choose, the
    scheduler sent a third of them to the other worker, the day pickled across with them."""
    before = client.run(_received)
    featurise_lake(lake_partitions([str(lake)]), Options(qualify=True), client=client, on_progress=None)
    after = client.run(_received)
    fetched = [key for worker, keys in after.items() for key in keys[len(before[worker]) :]]
    assert [key for key in fetched if key.startswith("prepare-")] == []


def test_the_local_engine_on_one_cluster_equals_featurising_its_stream(lake):
    """One cluster, no qualified names: the partition path gives what streaming the same
    events through featurise_history gives (the daily job's and the old train's path)."""
    from features.featurise import featurise_history
    from pipelines.ingest import Ingestor

    partitions = lake_partitions([str(lake / "cluster=prod")])
    by_day = featurise_lake(partitions, Options(), on_progress=None)
    streamed, encoder = featurise_history(Ingestor().iter_batches([f for p in partitions for f in p.files]))
    pd.testing.assert_frame_equal(by_day.windows, streamed, check_exact=True)
    assert _keys(by_day.encoder) == _keys(encoder)


def test_training_on_dask_gives_the_local_model_and_scores(client, lake):
    config = TrainConfig(params=DetectorParams(seed=0, warmup_days=1))
    on_local = train([str(lake)], config)
    on_dask = train(
        [str(lake)], TrainConfig(params=config.params, engine=EngineConfig("dask", client.scheduler.address))
    )
    pd.testing.assert_frame_equal(on_dask.windows, on_local.windows, check_exact=True)
    pd.testing.assert_series_equal(on_dask.scores, on_local.scores, check_exact=True)
    assert on_dask.bundle.threshold == on_local.bundle.threshold
    assert on_dask.bundle.n_events == on_local.bundle.n_events


def test_a_lake_on_s3_gives_the_same_features(client, lake, local, moto):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="audit-lake")
    for path in lake.rglob("*.parquet"):
        s3.upload_file(str(path), "audit-lake", f"lake/{path.relative_to(lake).as_posix()}")
    partitions = lake_partitions(["s3://audit-lake/lake/"])
    assert all(f.startswith("s3://audit-lake/lake/cluster=") for p in partitions for f in p.files)
    on_s3 = featurise_lake(partitions, Options(qualify=True), client=client, on_progress=None)
    pd.testing.assert_frame_equal(on_s3.windows, local.windows, check_exact=True)


class _DieOnce(WorkerPlugin):
    """A worker plugin: the first worker to start a partition's features kills its own process
    (as the kernel's OOM killer would); a marker file makes it happen once in the cluster."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and "features-cluster=prod/date=2026-03-03" in str(key):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            os._exit(1)


def test_a_worker_that_dies_mid_partition_is_survived_with_the_same_result(client, lake, local, tmp_path):
    marker = tmp_path / "died"
    client.register_plugin(_DieOnce(str(marker)), name="die-once")
    try:
        survived = featurise_lake(lake_partitions([str(lake)]), Options(qualify=True), client=client, on_progress=None)
    finally:
        client.unregister_worker_plugin("die-once")
    assert marker.exists()  # a worker did die
    pd.testing.assert_frame_equal(survived.windows, local.windows, check_exact=True)


def test_kaad_train_starts_a_local_cluster_and_says_where_its_dashboard_is(lake, tmp_path, monkeypatch):
    """No --scheduler and no DASK_SCHEDULER_ADDRESS: kaad starts a LocalCluster on 127.0.0.1
    (one worker here, to keep the test short), prints the dashboard link and each partition
    on stderr, and trains."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # the machine's cores, as the test wants them
    model = tmp_path / "model.joblib"
    args = ["train", str(lake), "--engine", "dask", "--no-track", "--warmup-days", "1", "--out", str(model)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kaad: Dask dashboard at http://127.0.0.1:" in result.stderr
    assert "kaad: 6/6 partitions featurised" in result.stderr
    assert model.exists()


def test_the_workers_kaad_starts_keep_glibcs_adaptive_malloc():
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which also pins glibc's mmap
    threshold: every pandas buffer over 128 KiB is then mapped and unmapped afresh. The
    LocalCluster kaad starts leaves it unset, as a plain process (and the local engine) runs."""
    from engine.cluster import dask_client

    with dask_client(workers=1) as client:
        seen = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert list(seen.values()) == [None]


def test_an_unreachable_scheduler_is_one_line(lake):
    from aws_support import free_port

    result = CliRunner().invoke(
        app, ["train", str(lake), "--engine", "dask", "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--no-track"]
    )
    assert result.exit_code != 0
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in result.output
    assert "Traceback" not in result.output


def test_the_dask_engine_refuses_inputs_that_are_not_a_lake(tmp_path):
    log = Path(__file__).resolve().parents[1] / "data" / "audit" / "normal_3days.jsonl"
    result = CliRunner().invoke(app, ["train", str(log), "--engine", "dask", "--no-track"])
    assert result.exit_code != 0
    assert "--engine dask reads a lake" in result.output


def test_a_days_keys_are_the_keys_featurising_the_day_teaches(lake):
    """The keys a prepared day gives (the Dask engine folds them into the next day's state)
    are the ones a whole pass over the day's events learns, key for key."""
    from engine.history import prepare_partition, prepared_keys
    from engine.lake import read_partition
    from features.featurise import featurise_history

    for partition in lake_partitions([str(lake)]):
        keys = prepared_keys(prepare_partition(partition, Options()))
        _, taught = featurise_history([read_partition(partition)])
        expected = _keys(taught)
        got = [set(keys.loc[keys["column"] == c, "key"].tolist()) for c in range(len(expected))]
        assert got == expected and sum(map(len, got)) > 100


def test_a_prepared_day_tells_dask_what_it_weighs(lake):
    """The scheduler weighs a result by Dask's ``sizeof`` before moving it to another worker,
    and workers count memory by it. A prepared day waits on its worker for its two steps: it
    must weigh about what sending it costs (its pickle), not a dataclass's 48 bytes."""
    import pickle

    from dask.sizeof import sizeof

    from engine.history import prepare_partition

    day = prepare_partition(lake_partitions([str(lake)])[0], Options())
    sent = len(pickle.dumps(day))
    assert sent > 100_000
    assert 0.5 * sent < sizeof(day) < 2 * sent
