"""An identity's kind is decided once, and the baseline's peer groups use that decision."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.baseline import IdentityBaseline
from features.enrich import identity_kind, kinds_of

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
