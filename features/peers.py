"""Who is who: an identity's kind and its peer group, the identities it is compared with when its
own past is short.

One definition for the flags (features/flag_rules.py), the baseline (features/baseline.py) and the
models built on them (action rarity, calibration), decided from the identity's name alone. The
name is what the cluster's authenticator mapped the credential to (aws-auth, an EKS access entry,
a certificate's CN, a token's service account): an intruder cannot choose it without already
holding cluster-admin. Its user agent and behaviour, by contrast, are the intruder's to choose, so
they never move an identity from one group to another.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Words by which clusters name the credentials their CI/CD systems deploy with: the aws-auth
#: username or EKS access entry of a pipeline's IAM role (``ci-deployer``, ``github-actions``,
#: ``gitlab-ci``, ``jenkins``), the role and session of an assumed-role ARN
#: (``github-actions-deploy/GitHubActions``, the default session name of
#: aws-actions/configure-aws-credentials; ``AWSCodeBuild-<build id>``, CodeBuild's), or a
#: kubeadm certificate's CN. A name holds one when one of its words, or two adjacent words
#: joined, is in the list.
AUTOMATION_WORDS = frozenset(
    {
        "ci",
        "cd",
        "cicd",
        "deploy",
        "deployer",
        "deployers",
        "pipeline",
        "pipelines",
        "automation",
        "githubactions",
        "gitlab",
        "jenkins",
        "circleci",
        "buildkite",
        "teamcity",
        "bamboo",
        "spinnaker",
        "tekton",
        "codebuild",
        "awscodebuild",
        "codepipeline",
        "azuredevops",
        "atlantis",
        "terraform",
        "argocd",
        "fluxcd",
        "concourse",
        "woodpecker",
    }
)
_ASSUMED_ROLE = re.compile(r"^arn:aws[\w-]*:sts::\d+:assumed-role/([^/]+)/(.*)$")
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return set(words) | {a + b for a, b in zip(words, words[1:], strict=False)}


def is_automation(name: str) -> bool:
    """Whether a user name (not a service account) is a CI/CD system's deploy credential.

    A pipeline is not a person: it deploys on every merge, at any hour, from a runner's leased
    address, with one client, and never reads logs or execs into a pod. Among people it is the
    loudest member and sets their tail (one CI one-off hour made a developer's exec ordinary);
    among people's kind it is half the members. So it is a kind of its own.

    - IAM Identity Center roles (``AWSReservedSSO_*``) are people whatever their permission
      set is called: their sessions are a person's sign-in.
    - A Google service account (``*.iam.gserviceaccount.com``, GKE) is never a person.
    - In an e-mail address only the first word counts: people's begin with their given name
      (``sarah.jenkins@``), a bot's with its function (``ci-bot@``).
    - Service accounts are not judged here: a CI runner's token
      (``system:serviceaccount:gitlab-runner:*``, ``actions-runner-system``, ``argocd``) stays a
      service account, compared with its own namespace's accounts, which are never people;
      and a stolen one used from outside is a service-account token from a public address.

    Examples
    --------
    >>> [is_automation(n) for n in ["ci-deployer", "gitlab-runner", "alice@example.com", "developer"]]
    [True, True, False, False]
    >>> is_automation("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Deploy_0f1e/alice")
    False
    """
    lowered = name.lower()
    role = _ASSUMED_ROLE.match(lowered)
    if role:
        if role.group(1).startswith("awsreservedsso_"):
            return False
        words = _words(role.group(1)) | _words(role.group(2))
    elif lowered.endswith(".iam.gserviceaccount.com"):
        return True
    elif "@" in lowered:
        words = set(_WORD.findall(lowered.split("@", 1)[0])[:1])
    else:
        words = _words(lowered)
    return not words.isdisjoint(AUTOMATION_WORDS)


def _kind(identity) -> str:
    if not isinstance(identity, str):
        return "human"
    if identity.startswith("system:serviceaccount:"):
        return "service_account"
    if identity.startswith("system:node:"):
        return "node"
    if identity in ("system:anonymous", "system:unauthenticated"):
        return "anonymous"
    if identity.startswith(("system:", "eks:", "aksService")):
        return "system"
    if is_automation(identity):
        return "automation"
    return "human"


def identity_kinds(identities) -> np.ndarray:
    """Classify identities: service_account, node, system, anonymous, automation or human."""
    return np.array([_kind(i) for i in identities], dtype=object)


#: The kinds whose credentials are users': people, and the pipelines that deploy with a user's
#: credential (an IAM role, a certificate). Pooled below their kinds as ``users``.
USER_KINDS = ("human", "automation")


def pools(identities) -> np.ndarray:
    """The pool of each identity, below its kind: ``users`` for people and pipelines, else ``""``.

    Where a kind is too small to calibrate against (people over a weekend, once the pipelines
    are a kind of their own), its members are judged among all users' credentials rather than
    by the cluster alone, whose windows are mostly controllers'.

    Examples
    --------
    >>> pools(["alice", "ci-deployer", "system:serviceaccount:shop:cart", "system:node:ip-10-0-1-5"]).tolist()
    ['users', 'users', '', '']
    """
    kinds = identity_kinds(list(identities))
    return np.where(np.isin(kinds, USER_KINDS), "users", "").astype(object)


def peer_groups(identities) -> np.ndarray:
    """The peer group of each identity: ``nodes``, a namespace's service accounts, an IAM
    role's sessions, else its kind (human, automation, system, anonymous).

    Examples
    --------
    >>> peer_groups(["system:node:ip-10-0-1-5", "system:serviceaccount:shop:cart", "alice", "ci-deployer"]).tolist()
    ['nodes', 'serviceaccounts of shop', 'human', 'automation']
    """
    names = pd.Series(list(identities), dtype="string").fillna("")
    sa = names.str.extract(r"^system:serviceaccount:([^:]+):", expand=False)
    role = names.str.extract(r"^arn:aws:sts::\d+:assumed-role/([^/]+)/", expand=False)
    group = pd.Series(identity_kinds(names.tolist()), dtype="string")
    group = group.mask(names.str.startswith("system:node:"), "nodes")
    group = group.mask(sa.notna(), "serviceaccounts of " + sa)
    group = group.mask(role.notna(), "sessions of role " + role)
    return group.to_numpy(dtype=object)
