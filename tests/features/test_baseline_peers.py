"""New is judged against peers: an identity without a past of its own is compared with its peer
group (the nodes, its namespace's service accounts, its IAM role's sessions), then its kind,
then the whole cluster.

The narrated cluster, two days of hourly windows:
- five kubelets, busy (about 60 requests an hour) over pods and nodes in a few namespaces, and
  six more that joined during those days: in its first hour a joining kubelet asks for its own
  Node object before it exists, so a few of its requests get a 404;
- the service accounts of ``shop`` (cart, checkout) each read their two secrets every hour;
- the service accounts of ``batch`` (three workers) are busier and never read a secret;
- alice, a person, a handful of requests now and then;
- thirty short sessions of the IAM role ``ci-deployer`` (two windows each: one deploy, which
  reads the three secrets it deploys with), forty of the role ``auditor`` (which reads none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.baseline import IdentityBaseline
from features.summary import DeviationSummary

COLUMNS = [
    "log_requests",
    "frac_res_pods",
    "frac_other_4xx",
    "n_namespaces",
    "n_secret_names",
    "new_namespace",
    "new_identity",
]
START = pd.Timestamp("2026-03-01", tz="UTC")
UNUSUAL = DeviationSummary().unusual  # |deviation| from which the detector counts a feature as unusual

KUBELET = {"log_requests": 4.1, "frac_res_pods": 0.5, "n_namespaces": 4.0, "n_secret_names": 0.0}
SHOP_SA = {"log_requests": 2.0, "frac_res_pods": 0.0, "n_namespaces": 1.0, "n_secret_names": 2.0}
BATCH_SA = {"log_requests": 5.0, "frac_res_pods": 0.3, "n_namespaces": 1.0, "n_secret_names": 0.0}
ALICE = {"log_requests": 1.5, "frac_res_pods": 0.2, "n_namespaces": 2.0, "n_secret_names": 0.0}
CI_SESSION = {"log_requests": 3.0, "frac_res_pods": 0.1, "n_namespaces": 2.0, "n_secret_names": 3.0}
AUDITOR_SESSION = {"log_requests": 2.5, "frac_res_pods": 0.4, "n_namespaces": 5.0, "n_secret_names": 0.0}
ROLE = "arn:aws:sts::111122223333:assumed-role"


def _windows(
    identity: str, usual: dict[str, float], hours: range, rng, *, first: bool = False, not_found: float = 0.0
) -> pd.DataFrame:
    """Windows of one identity around its usual values; ``first``: it appears in the first one,
    meeting its namespaces for the first time (novelty is causal: see features/first_seen.py),
    with a share ``not_found`` of 404s."""
    n = len(hours)
    frame = pd.DataFrame(
        {
            "log_requests": usual["log_requests"] + rng.normal(0, 0.1, n),
            "frac_res_pods": np.clip(usual["frac_res_pods"] + rng.normal(0, 0.03, n), 0, 1),
            "frac_other_4xx": np.zeros(n),
            "n_namespaces": np.full(n, usual["n_namespaces"]),
            "n_secret_names": np.full(n, usual["n_secret_names"]),
            "new_namespace": np.zeros(n),
            "new_identity": np.zeros(n),
        },
        index=pd.MultiIndex.from_product(
            [[identity], [START + pd.Timedelta(hours=h) for h in hours]], names=["identity", "window_start"]
        ),
    )
    if first:
        frame.iloc[0, frame.columns.get_loc("new_identity")] = 1.0
        frame.iloc[0, frame.columns.get_loc("new_namespace")] = usual["n_namespaces"]
        frame.iloc[0, frame.columns.get_loc("frac_other_4xx")] = not_found
    return frame[COLUMNS]


def _history(rng) -> pd.DataFrame:
    parts = [_windows(f"system:node:ip-10-0-1-{i}", KUBELET, range(48), rng) for i in range(5)]
    parts += [
        _windows(f"system:node:ip-10-0-2-{i}", KUBELET, range(4 * i, 48), rng, first=True, not_found=0.04 + 0.02 * i)
        for i in range(6)
    ]
    parts += [_windows(f"system:serviceaccount:shop:{n}", SHOP_SA, range(48), rng) for n in ("cart", "checkout")]
    parts += [_windows(f"system:serviceaccount:batch:worker-{i}", BATCH_SA, range(48), rng) for i in range(3)]
    parts += [_windows("alice@example.com", ALICE, range(0, 48, 4), rng)]
    parts += [_windows(f"{ROLE}/ci-deployer/run-{i}", CI_SESSION, range(i, i + 2), rng, first=True) for i in range(30)]
    parts += [_windows(f"{ROLE}/auditor/a{i}", AUDITOR_SESSION, range(i, i + 2), rng, first=True) for i in range(40)]
    return pd.concat(parts)


def _fitted(seed: int = 0) -> tuple[IdentityBaseline, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return IdentityBaseline(min_history=24).set_output(transform="pandas").fit(_history(rng)), rng


def test_a_new_kubelet_that_behaves_like_the_others_is_not_unusual():
    """A replaced node's kubelet does what every kubelet does. Its first hours are full of
    namespaces new *to it* (its pods arrive), which every newcomer meets: that is not evidence.
    Before, it was compared with the nodes' median at the whole cluster's scale, and its
    first-window novelty counted as far outside the usual: it topped the day."""
    base, rng = _fitted()
    replaced = _windows("system:node:ip-10-0-9-9", KUBELET, range(48, 54), rng, first=True)
    deviations = base.transform(replaced)
    assert deviations.abs().to_numpy().max() < UNUSUAL
    assert deviations["new_identity_dev"].tolist() == [1.0, 0, 0, 0, 0, 0]  # being new: mildly unusual
    # What a kubelet with a past meets for the first time still counts: novelty is judged for
    # identities that have one.
    old = _windows("system:node:ip-10-0-1-0", KUBELET, range(48, 49), rng)
    old["new_namespace"] = 3.0
    assert base.transform(old)["new_namespace_dev"].iloc[0] >= UNUSUAL


def test_a_joining_kubelets_first_hour_is_judged_against_the_first_hours_of_its_peers():
    """Its 404s are what every kubelet's first hour had: measured against the nodes' usual
    hours (no 404 ever) they would be far out; against the first hours of the six nodes that
    joined before, they are ordinary."""
    base, rng = _fitted()
    joining = _windows("system:node:ip-10-0-9-9", KUBELET, range(48, 50), rng, first=True, not_found=0.1)
    assert base.transform(joining).abs().to_numpy().max() < UNUSUAL
    assert base.usual(joining)[0, COLUMNS.index("frac_other_4xx")] > 0  # the first hours' centre
    # A kubelet with a past that starts getting 404s is judged by its own hours.
    old = _windows("system:node:ip-10-0-1-0", KUBELET, range(48, 49), rng)
    old["frac_other_4xx"] = 0.1
    assert base.transform(old)["frac_other_4xx_dev"].iloc[0] >= UNUSUAL


def test_a_new_service_account_is_compared_with_its_namespaces_service_accounts():
    """shop's service accounts read two secrets an hour; batch's never do. A new account in shop
    that reads its two secrets is usual for shop, though the median service account reads none."""
    base, rng = _fitted()
    payments = _windows("system:serviceaccount:shop:payments", SHOP_SA, range(48, 52), rng, first=True)
    assert base.usual(payments)[0, COLUMNS.index("n_secret_names")] == 2.0
    assert base.transform(payments).abs().to_numpy().max() < UNUSUAL
    # Reading secrets in batch, whose accounts never read one, is far from its peers.
    intruder = _windows(
        "system:serviceaccount:batch:worker-9", {**BATCH_SA, "n_secret_names": 5.0}, range(48, 52), rng, first=True
    )
    assert (base.transform(intruder)["n_secret_names_dev"] >= UNUSUAL).all()


def test_a_new_session_of_an_iam_role_is_compared_with_the_roles_earlier_sessions():
    """Each CI run is a new session name, so every session is young: the role's sessions, taken
    together, are the history a new run is judged against. Reading its three secrets is what
    a deploy does, though most sessions (the auditor's) read none."""
    base, rng = _fitted()
    run = _windows(f"{ROLE}/ci-deployer/run-99", CI_SESSION, range(60, 62), rng, first=True)
    assert base.usual(run)[0, COLUMNS.index("n_secret_names")] == 3.0
    assert base.transform(run).abs().to_numpy().max() < UNUSUAL


def test_a_new_identity_doing_what_no_peer_does_still_deviates_strongly():
    """A new kubelet that reads fifteen secrets, or a new shop account that reads forty where its
    peers read two, does what none of its peers ever did: peers do not excuse it."""
    base, rng = _fitted()
    reader = _windows("system:node:ip-10-0-9-9", {**KUBELET, "n_secret_names": 15.0}, range(48, 50), rng, first=True)
    assert (base.transform(reader)["n_secret_names_dev"] >= 5 * UNUSUAL).all()
    harvester = _windows(
        "system:serviceaccount:shop:payments", {**SHOP_SA, "n_secret_names": 40.0}, range(48, 50), rng, first=True
    )
    assert (base.transform(harvester)["n_secret_names_dev"] >= 5 * UNUSUAL).all()


def test_too_little_peer_history_falls_back_to_the_kind_then_the_cluster():
    """A namespace seen for a few hours is not yet a peer group: its accounts are compared with
    service accounts in general; an identity whose kind has too little history, with everyone."""
    rng = np.random.default_rng(1)
    history = pd.concat([_history(rng), _windows("system:serviceaccount:fresh:one", BATCH_SA, range(40, 48), rng)])
    base = IdentityBaseline(min_history=24).fit(history)
    assert "serviceaccounts of fresh" not in base.peer_center_
    assert "anonymous" not in base.kind_center_
    newcomer = _windows("system:serviceaccount:fresh:two", BATCH_SA, range(48, 49), rng)
    np.testing.assert_array_equal(base.usual(newcomer)[0], base.kind_center_["service_account"])
    stranger = _windows("system:anonymous", ALICE, range(48, 49), rng)
    np.testing.assert_array_equal(base.usual(stranger)[0], base.global_center_)
    # fresh:one itself (8 windows, fewer than min_history) is young: judged like a newcomer.
    np.testing.assert_array_equal(
        base.usual(history.loc[["system:serviceaccount:fresh:one"]])[0], base.kind_center_["service_account"]
    )
