"""Training from a lake with --rules: the rules learn the lake's history as they learn a stream's.

The rules run in this process over the lake's events, read a partition at a time, with the
identities named as the features name them (``IDENTITY@CLUSTER`` when the lake holds several
clusters), so a rule's history and the model's windows speak of the same identities.
"""

from __future__ import annotations

import shutil

from engine.lake import lake_partitions
from models.detector import DetectorParams
from pipelines.train import TrainConfig, train

CONFIG = TrainConfig(params=DetectorParams(seed=0, warmup_days=1), rules=("kaad",))


def test_a_lake_of_two_clusters_learns_the_rules_history_per_cluster_and_identity(lake):
    history = train([str(lake)], CONFIG).bundle.rule_history
    assert history is not None and history["n_days"] == 3
    assert history["active"] and all(i.endswith(("@prod", "@staging")) for i in history["active"])


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
