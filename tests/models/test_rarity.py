"""Sensitive actions count by their rarity: for the identity, its peers and the cluster.

The story: three days of a small cluster, hour by hour. Six kubelets read the secrets of the
pods they run in every window and are denied something in one window in four. cert-manager's
service account reads secrets all the time; the two payments service accounts call their own
API and never touch RBAC or secrets. A developer execs into a pod now and then (one window in twelve). A platform
admin binds roles once a day. Every identity's first window is new (causal novelty, as
features/featurise.py marks it).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from features.windows import FEATURE_NAMES
from models.rarity import ActionRarity, peer_groups

KUBELETS = [f"system:node:ip-10-0-1-{i}.eu-west-1.compute.internal" for i in range(6)]
CERT_MANAGER = "system:serviceaccount:cert-manager:cert-manager"
PAYMENTS_API = "system:serviceaccount:payments:payments-api"
PAYMENTS_WORKER = "system:serviceaccount:payments:payments-worker"
DEVELOPER = "developer"
ADMIN = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PlatformAdmin/alice"
START = pd.Timestamp("2026-03-02", tz="UTC")


def windows(rows: list[tuple[str, int, dict[str, float]]]) -> pd.DataFrame:
    """Window features (every column kaad computes, 0 unless given) for (identity, hour, values)."""
    index = pd.MultiIndex.from_tuples(
        [(who, START + pd.Timedelta(hours=h)) for who, h, _ in rows], names=["identity", "window_start"]
    )
    frame = pd.DataFrame(0.0, index=index, columns=list(FEATURE_NAMES))
    for i, (_, _, values) in enumerate(rows):
        for column, value in values.items():
            frame.iloc[i, frame.columns.get_loc(column)] = value
    return frame


def first(hour: int) -> dict[str, float]:
    """What a first window carries: everything is new for a new identity."""
    return {"new_identity": 1.0, "new_source_ip": 1.0, "new_user_agent": 1.0} if hour == 0 else {}


def history(hours: int = 72) -> pd.DataFrame:
    rows = []
    for h in range(hours):
        for node in KUBELETS:
            rows.append((node, h, {"n_secret_names": 3.0, "n_denied": float(h % 4 == 1), **first(h)}))
        rows.append((CERT_MANAGER, h, {"n_secret_names": 2.0, **first(h)}))
        rows.append((PAYMENTS_API, h, first(h)))
        rows.append((PAYMENTS_WORKER, h, first(h)))
        rows.append((DEVELOPER, h, {"n_exec": 1.0 if h % 12 == 5 else 0.0, **first(h)}))
        rows.append((ADMIN, h, {"n_admin_bindings": 1.0 if h % 24 == 10 else 0.0, **first(h)}))
    return windows(rows)


@pytest.fixture(scope="module")
def rarity() -> ActionRarity:
    return ActionRarity().fit(history())


def surprisal(rarity: ActionRarity, who: str, values: dict[str, float], hour: int = 80) -> pd.Series:
    out = rarity.transform(windows([(who, hour, values)]))[0]
    return pd.Series(out, index=rarity.terms_)


def test_a_first_cluster_admin_binding_by_an_identity_whose_peers_never_bind_is_far_rarer_than_a_kubelet_at_work(
    rarity,
):
    """payments-api creates a ClusterRoleBinding to cluster-admin: it never did, the payments
    service accounts never did, and the cluster saw it only from the admin. A kubelet doing
    its usual secret reads in the same hour is routine."""
    binding = surprisal(rarity, PAYMENTS_API, {"n_admin_bindings": 1.0})
    kubelet = surprisal(rarity, KUBELETS[0], {"n_secret_names": 3.0})
    assert binding["privileged_binding"] > 8.0
    assert kubelet.sum() < 0.1
    assert binding.sum() > 100 * kubelet.sum()
    # The same binding by the admin, who binds once a day, is far less surprising.
    assert surprisal(rarity, ADMIN, {"n_admin_bindings": 1.0}).sum() < binding.sum() - 5.0


def test_a_new_kubelet_is_judged_against_the_other_kubelets(rarity):
    """A replaced node's kubelet has no history of its own: reading pod secrets is what every
    kubelet does, so it is barely unusual, and a denial (one kubelet window in four) is mildly
    so, even though its address and client are new (they are new for every new identity). A
    new payments service account reading secrets does what neither it nor its peers ever did,
    although secrets are read in most windows of the cluster, by kubelets and cert-manager."""
    new_node = "system:node:ip-10-0-9-9.eu-west-1.compute.internal"
    kubelet = surprisal(rarity, new_node, {"n_secret_names": 3.0, **first(0)})
    assert kubelet.sum() < 0.1
    denied = surprisal(rarity, new_node, {"n_secret_names": 3.0, "n_denied": 1.0, **first(0)})
    assert denied.sum() < 2.0
    # Later that day its pods arrive from namespaces it never served: new to it, not news.
    later = surprisal(rarity, new_node, {"n_secret_names": 3.0, "n_denied": 1.0, "new_namespace": 2.0})
    assert later.sum() < 2.0
    new_sa = surprisal(rarity, "system:serviceaccount:payments:payments-batch", {"n_secret_names": 1.0, **first(0)})
    assert new_sa["secrets_read"] > 3.0
    # The new kubelet doing what no kubelet ever did is as unusual as anyone doing it.
    privileged = surprisal(rarity, new_node, {"n_secret_names": 3.0, "n_privileged": 1.0, **first(0)})
    assert privileged["host_workload"] > 8.0


def test_a_family_seen_once_is_still_rare():
    """A young service account (four windows) exec'd once. Counting alone says one window in
    four, -log(1/4) = 1.4 nats, nearly routine; smoothed towards its peers, who never exec, it
    stays rare. Something it really does often is not."""
    young = "system:serviceaccount:batch:report"
    rows = [(young, h, {"n_exec": 1.0 if h == 2 else 0.0, "n_secret_names": 1.0}) for h in range(4)]
    rows += [(f"system:serviceaccount:batch:job-{i}", h, {"n_secret_names": 1.0}) for i in range(3) for h in range(48)]
    rarity = ActionRarity().fit(windows(rows))
    again = surprisal(rarity, young, {"n_exec": 1.0, "n_secret_names": 1.0}, hour=5)
    assert again["exec"] > 3.0
    assert again["secrets_read"] < 0.1
    never = surprisal(rarity, young, {"n_events_deleted": 1.0}, hour=5)
    assert 3.0 < again["exec"] < never["events_deleted"]  # seen once: rarer than routine, less than never


def test_a_new_address_raises_a_rare_action_and_not_a_routine_one(rarity):
    """The developer always works from the same address. An exec (one window in twelve) from a
    new address is more suspicious than the same exec from the usual one; a kubelet's routine
    secret reads from a new address are still routine (the forest sees the address itself)."""
    usual = surprisal(rarity, DEVELOPER, {"n_exec": 1.0})
    elsewhere = surprisal(rarity, DEVELOPER, {"n_exec": 1.0, "new_source_ip": 1.0, "new_ip_range": 1.0})
    assert elsewhere.sum() > usual.sum() + 3.0
    assert elsewhere["exec"] == pytest.approx(usual["exec"])  # the context is its own term
    kubelet = surprisal(rarity, KUBELETS[1], {"n_secret_names": 3.0, "new_source_ip": 1.0})
    assert kubelet.sum() < 0.1


def test_listing_a_namespace_s_secrets_is_reading_them(rarity):
    """``kubectl get secrets -n payments -o yaml`` names no secret, yet the answer holds every
    secret's data: for the payments worker, which never touched a secret, it is as rare as
    reading one of them by name."""
    listed = surprisal(rarity, PAYMENTS_WORKER, {"n_secret_namespaces": 1.0})
    named = surprisal(rarity, PAYMENTS_WORKER, {"n_secret_namespaces": 1.0, "n_secret_names": 1.0})
    assert listed["secrets_read"] > 3.0
    assert listed["secrets_read"] == pytest.approx(named["secrets_read"])


def test_a_rare_action_many_identities_take_in_the_same_hour_has_a_common_cause(rarity):
    """The API server restarts at 11:00: every informer relists pods across all namespaces, the
    six kubelets, cert-manager and both payments accounts, none of which ever did. Each of them
    did something new, but together: the hour has one cause, and none of them is singled out.
    At 15:00 the payments API lists pods cluster-wide alone, which it never did: still rare.
    Scored one window at a time (``transform``) the crowd looks as rare as the loner."""
    crowd = [*KUBELETS, CERT_MANAGER, PAYMENTS_API, PAYMENTS_WORKER]
    day = windows(
        [(who, 83, {"n_cluster_wide_pod_lists": 1.0}) for who in crowd]
        + [(DEVELOPER, 83, {}), (ADMIN, 83, {}), (PAYMENTS_API, 87, {"n_cluster_wide_pod_lists": 1.0})]
        + [(who, 87, {}) for who in (*KUBELETS, CERT_MANAGER, PAYMENTS_WORKER, DEVELOPER, ADMIN)]
    )
    column = list(rarity.terms_).index("cluster_wide_pod_list")
    shared = pd.Series(rarity.transform_shared(day)[:, column], index=day.index)
    alone = pd.Series(rarity.transform(day)[:, column], index=day.index)
    restart = shared[shared.index.get_level_values("window_start") == START + pd.Timedelta(hours=83)]
    loner = shared.loc[(PAYMENTS_API, START + pd.Timedelta(hours=87))]
    assert restart[restart > 0].max() < 1.0  # about -log(8/10): most of the others did it too
    assert loner > 5.0 and loner == pytest.approx(alone.loc[(PAYMENTS_API, START + pd.Timedelta(hours=87))])
    assert alone.loc[restart[restart > 0].index].min() > 5.0


def test_two_identities_sharing_a_rare_action_are_not_a_crowd(rarity):
    """An intruder acts through one or two identities: a pod's service account and the token it
    minted both list pods cluster-wide in the same hour. One other identity doing it is not
    improbable enough to be a common cause, so neither is discounted."""
    day = windows(
        [(who, 83, {"n_cluster_wide_pod_lists": 1.0}) for who in (PAYMENTS_API, PAYMENTS_WORKER)]
        + [(who, 83, {}) for who in (*KUBELETS, CERT_MANAGER, DEVELOPER, ADMIN)]
    )
    np.testing.assert_allclose(rarity.transform_shared(day), rarity.transform(day))


def test_terms_add_up_to_the_window_score_and_rows_are_kept(rarity):
    day = history(24)
    terms = rarity.set_output(transform="pandas").transform(day)
    rarity.set_output(transform="default")
    assert terms.index.equals(day.index)
    assert list(terms.columns) == [f"rarity_{t}" for t in rarity.terms_]
    np.testing.assert_allclose(-terms.sum(axis=1).to_numpy(), rarity.score_samples(day))
    assert (terms.to_numpy() >= 0).all()


def test_folding_in_a_day_moves_the_baseline_like_fitting_on_both():
    """State that moves with the days: partial_fit adds a scored day's windows to the counts,
    exactly as if they had been in the history. The developer starts reading secrets daily:
    less surprising each day it is learned, never routine after one day."""
    past, days = history(72), [history(96).loc[lambda f: f.index.get_level_values(1) >= START + pd.Timedelta(hours=72)]]
    folded = ActionRarity().fit(past).partial_fit(days[0])
    at_once = ActionRarity().fit(pd.concat([past, days[0]]))
    pd.testing.assert_frame_equal(folded.rates(KUBELETS + [DEVELOPER]), at_once.rates(KUBELETS + [DEVELOPER]))

    rarity = ActionRarity().fit(past)
    seen = []
    for day in range(4):
        read = windows([(DEVELOPER, 72 + 24 * day + 9, {"n_secret_names": 1.0})])
        seen.append(rarity.transform(read)[0][list(rarity.terms_).index("secrets_read")])
        rarity.partial_fit(read)
    assert seen[0] > seen[1] > seen[2] > seen[3]
    assert seen[1] > 3.0


def test_the_state_saved_with_a_model_scores_the_same_after_loading(rarity):
    """The counts are the state that moves with the days; they travel in the model bundle."""
    day = history(24)
    loaded = pickle.loads(pickle.dumps(rarity))
    np.testing.assert_array_equal(loaded.transform(day), rarity.transform(day))
    loaded.partial_fit(day)
    assert loaded.n_windows_ == rarity.n_windows_ + len(day)


def test_peer_groups_follow_the_names_people_use():
    assert peer_groups(
        [KUBELETS[0], PAYMENTS_API, ADMIN, "developer", "system:kube-scheduler", "system:anonymous"]
    ).tolist() == [
        "nodes",
        "serviceaccounts of payments",
        "sessions of role AWSReservedSSO_PlatformAdmin",
        "human",
        "system",
        "anonymous",
    ]


def test_the_usual_is_said_in_counts(rarity):
    assert rarity.usual(PAYMENTS_API, "privileged_binding") == (
        "binding to an admin role: this identity 0 of 72 windows, other serviceaccounts of payments "
        "0 of 72 windows, the cluster 3 of 792 windows"
    )


@parametrize_with_checks([ActionRarity()])
def test_sklearn_contract(estimator, check):
    check(estimator)


def test_a_webhook_pointed_out_of_the_cluster_is_an_act_of_its_own_beyond_writing_a_webhook(rarity):
    """Nobody in the cluster ever wrote an admission webhook. The admin registering one served by
    an operator's cluster service does one rare thing; registering one that sends every pod to a
    server outside the cluster does a second, which no operator does: intruders' webhooks call
    out (events, flag ``webhook_calls_out``)."""
    in_cluster = surprisal(rarity, ADMIN, {"n_webhook_writes": 1.0})
    calling_out = surprisal(rarity, ADMIN, {"n_webhook_writes": 1.0, "n_webhook_external": 1.0})
    assert in_cluster["webhook_write"] > 8.0
    assert calling_out["webhook_write"] == pytest.approx(in_cluster["webhook_write"])
    assert calling_out["webhook_external"] > 8.0
    assert calling_out.sum() > in_cluster.sum() + 8.0
