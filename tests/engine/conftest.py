"""A small lake of two clusters and three days; one moto server and one LocalCluster of two
worker processes for the whole module (starting one costs about a second)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pipelines.ingest import ingest
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sources"))
from aws_support import MotoServer
from support import built_once

CLUSTERS = {"prod": 11, "staging": 12}  # name -> simulation seed
DAYS = 3


@pytest.fixture(scope="session")
def lake(tmp_path_factory) -> Path:
    """``cluster=prod`` and ``cluster=staging``, three UTC days each, written by ingest."""

    def build() -> Path:
        root = tmp_path_factory.mktemp("lake")
        for name, seed in CLUSTERS.items():
            sim = tmp_path_factory.mktemp(f"sim-{name}")
            spec = ClusterSpec(name=name, nodes=2, app_namespaces=2, humans=2, rate_scale=0.02)
            simulate(sim, days=DAYS, seed=seed, spec=spec)
            ingest(sorted(str(p) for p in sim.glob("*.jsonl*")), out=root, cluster=name, collect=False)
        return root

    # The engine, AWS and client tests on both workers read it: written once per session.
    return built_once(tmp_path_factory, "lake", build)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A moto server, with boto3 pointed at it through the environment (the workers started
    after this inherit it)."""
    server = MotoServer()
    home = tmp_path_factory.mktemp("aws")
    env = {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_CONFIG_FILE": str(home / "no-config"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="module")
def client(moto):
    """A real LocalCluster as kaad starts one: two worker processes on 127.0.0.1, its HTTP
    server on a free port."""
    from distributed import Client

    from engine.cluster import local_cluster

    with local_cluster(2) as cluster, Client(cluster) as client:
        yield client
