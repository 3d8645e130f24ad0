"""An attack whose network behaviour raises its rank once flow logs are given.

Eight days of a two-node cluster with flow logs; on the last, six loud attacks. One is a
developer's kubeconfig used to exec into pods; one of those pods then holds a reverse shell
on port 4444 to a cloud host for 45 minutes and sends 60 MB to it. All of it leaves the VPC
SNATed to the node, where the CronJob's fresh pods also run, so the exfiltration's new
destination and the node's egress are shared between the developer and ci-deployer at half
weight. With the flow logs the developer's day scores higher than with the audit log alone, and
ranks no lower. Whether it also passes someone depends on who sits just above it: sixth to
fifth when this was written; fifth either way since kubelets and client upgrades are judged by
peer precedent (session 9), which lowered the job-controller below the developer. Identities
whose pods did nothing new on the network keep their scores.
"""

from __future__ import annotations

import pytest

from flows.source import NetworkEvidence
from models.detector import DetectorParams
from pipelines.score import score_day
from pipelines.train import TrainConfig, train
from scenarios.cluster import ClusterSpec
from scenarios.simulate import simulate

ATTACKS = [
    "secret_enumeration",
    "privileged_pod",
    "cluster_admin_binding",
    "stolen_token_external",
    "exec_into_pods",
    "cronjob_persistence",
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    out = tmp_path_factory.mktemp("rank")
    spec = ClusterSpec(nodes=2, app_namespaces=6, humans=6, rate_scale=0.05)
    sim = simulate(out / "logs", days=8, attacks=ATTACKS, variant="loud", seed=1, spec=spec, flow_logs=out / "net")
    files = [str(f) for f in sim.files]
    bundle = train(files[:-1], TrainConfig(params=DetectorParams(seed=1))).bundle
    plain = score_day(files[-1:], bundle, top=200)
    network = NetworkEvidence([str(out / "net" / "flowlogs")], files)
    with_flows = score_day(files[-1:], bundle, top=200, evidence=[network])
    return plain, with_flows


def _rank(result, identity: str) -> int:
    order = list(result.identities["identity"])
    return order.index(identity) + 1


def _score(result, identity: str) -> float:
    return float(result.identities.set_index("identity").loc[identity, "anomaly_score"])


def test_the_exec_sessions_reverse_shell_raises_the_developers_score_and_never_its_rank(scored):
    plain, with_flows = scored
    assert _score(with_flows, "developer") > _score(plain, "developer")
    assert _rank(with_flows, "developer") <= _rank(plain, "developer")
    finding = next(f for f in with_flows.findings if f.identity == "developer")
    said = [r.text for r in finding.reasons if r.family == "network"]
    assert any(
        "which developer exec'd into" in text and "out of the VPC, more than on normal days" in text for text in said
    )


def test_network_nats_add_to_the_score_and_leave_the_rest_alone(scored):
    plain, with_flows = scored
    before = plain.identities.set_index("identity")["anomaly_score"]
    after = with_flows.identities.set_index("identity")["anomaly_score"]
    added = with_flows.evidence["network"].contributions.droplevel("day").sum(axis=1)
    assert after["developer"] == pytest.approx(before["developer"] + added["developer"])
    quiet = [i for i in before.index if i not in added.index]
    assert quiet and (after[quiet] == before[quiet]).all()
