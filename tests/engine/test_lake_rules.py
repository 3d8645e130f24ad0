"""Training from a lake with --rules: the rules learn the lake's history as they learn a stream's.

The rules run in this process over the lake's events, read a partition at a time. A lake of
several clusters is refused with --rules (its identities are renamed IDENTITY@CLUSTER).
"""

from __future__ import annotations

import shutil

import pytest

from engine.lake import lake_partitions
from errors import KaadError
from models.detector import DetectorParams
from pipelines.train import TrainConfig, train

CONFIG = TrainConfig(params=DetectorParams(seed=0, warmup_days=1), rules=("kaad",))


def test_a_lake_of_several_clusters_with_rules_is_refused_in_one_line(lake):
    """Rules match identities by the names the cluster gives them (system:anonymous); the
    features of a lake of several clusters name them IDENTITY@CLUSTER. Until the two agree,
    training says so instead of learning a rule history no rule could match."""
    with pytest.raises(KaadError, match=r"--rules with a lake of several clusters is not supported yet"):
        train([str(lake)], CONFIG)


def test_one_clusters_lake_learns_what_its_events_streamed_learn(lake, tmp_path):
    """The same Parquet files outside a lake's layout are read as a stream (the path --rules
    always took); inside it, by partition. The rule history is the same."""
    cluster = lake / "cluster=prod"
    flat = tmp_path / "flat"
    flat.mkdir()
    files = [f for p in lake_partitions([str(cluster)]) for f in p.files]
    for i, name in enumerate(files):
        shutil.copy(name, flat / f"{i:03d}.parquet")
    from_lake = train([str(cluster)], CONFIG).bundle.rule_history
    streamed = train(sorted(str(p) for p in flat.glob("*.parquet")), CONFIG).bundle.rule_history
    assert from_lake == streamed
    assert from_lake is not None and from_lake["active"] and from_lake["writers"]["secrets"]
