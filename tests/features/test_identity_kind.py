"""An identity's kind is decided once, and the baseline's peer groups use that decision."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.baseline import IdentityBaseline
from features.enrich import identity_kind, kinds_of
from features.peers import peer_groups

NAMES = [
    "system:serviceaccount:shop:cart",
    "system:node:ip-10-0-1-5.ec2.internal",
    "system:anonymous",
    "system:kube-scheduler",
    "eks:addon-manager",
    "aksService",
    "alice@example.com",
]


def test_kinds_of_names_and_of_events_agree():
    events = pd.DataFrame({"identity": NAMES})
    assert (
        list(identity_kind(events))
        == list(kinds_of(NAMES))
        == ["service_account", "node", "anonymous", "system", "system", "system", "human"]
    )


def test_a_new_aks_control_plane_identity_is_compared_with_system_peers():
    """aksService has no history: it is judged against the median system identity, not the
    humans (the baseline used to decide kinds with its own, different list)."""
    rows = [
        (name, hour, value)
        for name, value in (("system:kube-scheduler", 100.0), ("alice@example.com", 3.0))
        for hour in range(30)
    ]
    index = pd.MultiIndex.from_tuples(
        [(n, pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(hours=h)) for n, h, _ in rows],
        names=["identity", "window_start"],
    )
    X = pd.DataFrame({"log_requests": [v for *_, v in rows]}, index=index)
    base = IdentityBaseline(min_history=10).fit(X)
    new = pd.DataFrame(
        {"log_requests": [100.0]},
        index=pd.MultiIndex.from_tuples(
            [("aksService", pd.Timestamp("2026-03-03", tz="UTC"))], names=["identity", "window_start"]
        ),
    )
    assert base.usual(new).tolist() == [[100.0]]
    assert np.allclose(base.transform(new), 0.0)


def test_a_pipeline_s_deploy_credential_is_automation_not_a_person():
    """What CI deploy credentials are called in real clusters: an aws-auth username, an EKS
    access entry's assumed-role ARN (GitHub's OIDC role with the default session name of
    aws-actions/configure-aws-credentials, CodeBuild's build session), a kubeadm certificate's
    CN, a GKE Google service account. None of them is a person, and none is compared with people."""
    pipelines = [
        "gitlab-ci",
        "jenkins",
        "argocd-deployer",
        "arn:aws:sts::111122223333:assumed-role/github-actions-deploy/GitHubActions",
        "arn:aws:sts::111122223333:assumed-role/eks-release/AWSCodeBuild-7f3c2a90",
        "cloud-build@acme-prod.iam.gserviceaccount.com",
    ]
    assert kinds_of(pipelines).tolist() == ["automation"] * len(pipelines)
    assert "human" not in peer_groups(pipelines).tolist()
    assert peer_groups(pipelines[3:4]).tolist() == ["sessions of role github-actions-deploy"]


def test_people_stay_people_whatever_their_words():
    """An Identity Center sign-in is a person whatever the permission set is called; in an
    e-mail only the given name counts (Sarah Jenkins is not the CI server); the names the
    real samples use for people and admins (../shared/real-samples) stay human; and a CI
    runner's service-account token stays a service account, judged with its namespace's."""
    people = [
        "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DeployAccess_0f1e2d3c/sarah",
        "sarah.jenkins@example.com",
        "kubernetes-admin",
        "minikube-user",
        "developer",
        "admin@example.com",
    ]
    assert kinds_of(people).tolist() == ["human"] * len(people)
    runner = "system:serviceaccount:gitlab-runner:gitlab-runner"
    assert kinds_of([runner]).tolist() == ["service_account"]
    assert peer_groups([runner]).tolist() == ["serviceaccounts of gitlab-runner"]
