"""Peer groups: the identities an identity is compared with when its own past is short.

One definition for the baseline (features/baseline.py) and the models built on it (action
rarity, calibration), decided from the identity's name, as :func:`features.enrich.kinds_of` is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.enrich import kinds_of
from features.precedent import FLEETS

#: The kinds whose credentials are users': people and, once told apart, the pipelines that deploy
#: with a user's credential (an IAM role, a certificate). Pooled below their kinds as ``users``.
USER_KINDS = ("human",)


def pools(identities) -> np.ndarray:
    """The pool of each identity, below its kind: ``users`` for people and pipelines, else ``""``.

    Where a kind is too small to calibrate against (people over a weekend, once the pipelines
    are a kind of their own), its members are judged among all users' credentials rather than
    by the cluster alone, whose windows are mostly controllers'.

    Examples
    --------
    >>> pools(["alice", "system:serviceaccount:shop:cart", "system:node:ip-10-0-1-5"]).tolist()
    ['users', '', '']
    """
    kinds = kinds_of(list(identities))
    return np.where(np.isin(kinds, USER_KINDS), "users", "").astype(object)


def peer_groups(identities) -> np.ndarray:
    """The peer group of each identity: ``nodes``, a namespace's service accounts, an IAM
    role's sessions, else its kind (human, system, anonymous).

    Examples
    --------
    >>> peer_groups(["system:node:ip-10-0-1-5", "system:serviceaccount:shop:cart", "alice"]).tolist()
    ['nodes', 'serviceaccounts of shop', 'human']
    """
    names = pd.Series(list(identities), dtype="string").fillna("")
    sa = names.str.extract(r"^system:serviceaccount:([^:]+):", expand=False)
    role = names.str.extract(r"^arn:aws:sts::\d+:assumed-role/([^/]+)/", expand=False)
    group = pd.Series(kinds_of(names.tolist()), dtype="string")
    for fleet, prefix in FLEETS.items():
        group = group.mask(names.str.startswith(prefix), fleet)
    group = group.mask(sa.notna(), "serviceaccounts of " + sa)
    group = group.mask(role.notna(), "sessions of role " + role)
    return group.to_numpy(dtype=object)
