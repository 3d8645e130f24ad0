"""The simulator's flow logs agree with its audit log: pods' addresses, nodes, SNAT, attacks.

Three days of a two-node cluster; on the last, a loud CronJob (hostNetwork) fetches a script
from the intruder's server and mines on port 4444.
"""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

import pytest

from flows.audit_facts import read_facts
from flows.join import join_flows
from flows.leases import build_leases
from flows.read import spill_flows
from scenarios.cluster import ClusterSpec
from scenarios.flowlogs import V2_FORMAT, V5_FORMAT
from scenarios.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("simflows")
    spec = ClusterSpec(nodes=2, app_namespaces=3, humans=3, rate_scale=0.05)
    result = simulate(out / "logs", days=3, attacks=["cronjob_persistence"], seed=3, spec=spec, flow_logs=out / "net")
    facts, _ = read_facts([str(f) for f in result.files])
    return result, out, build_leases(facts)


def _join(out: Path, folder: str, leases, tmp_path):
    spill = tmp_path / f"{folder}.parquet"
    stats = spill_flows([str(out / "net" / folder)], spill)
    return join_flows(spill, leases), stats


def test_each_day_is_written_in_the_s3_layout_in_v5_and_in_the_default_v2(sim):
    result, out, _ = sim
    v5 = sorted((out / "net" / "flowlogs").rglob("*.log.gz"))
    v2 = sorted((out / "net" / "flowlogs-v2").rglob("*.log.gz"))
    assert len(v5) == len(v2) == 3 and len(result.flow_files) == 6
    assert "/AWSLogs/111122223333/vpcflowlogs/us-west-2/2026/03/04/" in str(v5[-1])
    assert gzip.decompress(v5[0].read_bytes()).decode().splitlines()[0] == V5_FORMAT
    assert gzip.decompress(v2[0].read_bytes()).decode().splitlines()[0] == V2_FORMAT


def test_the_cronjobs_pods_lead_back_to_ci_and_their_pool_traffic_to_their_node(sim, tmp_path):
    result, out, leases = sim
    cron = leases.pods[leases.pods["workload"].fillna("").str.startswith("CronJob ")]
    assert len(cron) == 3 and set(cron["creator"]) == {result.injected[0]["identities"][0]}
    assert cron["host_network"].all()  # the loud CronJob runs on the host's network
    attribution, stats = _join(out, "flowlogs", leases, tmp_path)
    assert stats.version == 5 and stats.n_rejected == 0
    pool = attribution.conversations[attribution.conversations["port"] == 4444]
    assert len(pool) and (pool["attribution"] == "node").all()
    pods = {c for cs in pool["candidates"] for c in cs}
    assert pods & set(cron["namespace"] + "/" + cron["pod"])


def test_v5_attributes_pod_traffic_to_pods_and_v2_cannot_tell_the_sender(sim, tmp_path):
    _, out, leases = sim
    v5, _ = _join(out, "flowlogs", leases, tmp_path)
    v2, _ = _join(out, "flowlogs-v2", leases, tmp_path)

    def egress(a):
        return a.conversations[(a.conversations["attribution"] == "pod") & (a.conversations["direction"] == "egress")]

    assert egress(v5)["flows"].sum() > 0 and egress(v2)["flows"].sum() == 0
    assert v5.quality["share_pod"] > 0.3 and v5.quality["share_none"] < 0.1


def test_the_simulator_imports_nothing_from_features_models_or_flows():
    tree = ast.parse(Path("scenarios/flowlogs.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.split(".")[0] in {"features", "models", "flows"}}
