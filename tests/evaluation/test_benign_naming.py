"""Every alert of an attack-free day is named: the benign change behind it, or the identity's normal life."""

from __future__ import annotations

import io

import pandas as pd

from evaluation.ranks import benign_windows, name_alert

# labels.csv as the simulator writes it: a node replaced at 10:05 (its new kubelet's first
# calls until 11:40), a new hire's first day from 09:12 (times with and without fractions of
# a second, as the simulator writes them), an attack row (not benign: never names a false
# positive).
LABELS = """auditID,stage,scenario,technique,variant,identity,day,timestamp,start,end
a1,ResponseComplete,benign_node_replaced,,benign,system:node:ip-10-0-1-9,2026-03-10,2026-03-10T10:05:00.123456Z,2026-03-10T10:05:00Z,2026-03-10T11:40:00.5Z
a3,ResponseComplete,benign_new_hire,,benign,nina.new,2026-03-10,2026-03-10T09:12:00Z,2026-03-10T09:12:00Z,2026-03-10T17:00:00Z
a2,ResponseComplete,secret_enumeration,T1552.007,loud,system:serviceaccount:shop:cart,2026-03-10,2026-03-10T14:01:00Z,2026-03-10T14:01:00Z,2026-03-10T14:03:00Z
"""


def _benign() -> pd.DataFrame:
    return benign_windows(pd.read_csv(io.StringIO(LABELS), dtype=str), "1h")


def test_an_alert_in_a_labelled_window_is_named_by_its_benign_scenario():
    start = pd.Timestamp("2026-03-10 10:00", tz="UTC")
    assert name_alert("system:node:ip-10-0-1-9", start, _benign(), "1h") == "benign_node_replaced"


def test_a_later_window_of_the_same_change_is_named_by_it_too():
    # No labelled event fell in 11:00-12:00, but the replacement was still under way.
    start = pd.Timestamp("2026-03-10 11:00", tz="UTC")
    assert name_alert("system:node:ip-10-0-1-9", start, _benign(), "1h") == "benign_node_replaced"


def test_a_new_hires_afternoon_is_named_by_the_hire():
    start = pd.Timestamp("2026-03-10 13:00", tz="UTC")
    assert name_alert("nina.new", start, _benign(), "1h") == "benign_new_hire"


def test_an_alert_with_no_benign_change_behind_it_is_the_identitys_normal_life():
    start = pd.Timestamp("2026-03-10 14:00", tz="UTC")
    # The attack row is not benign change: it names nothing here.
    assert name_alert("system:serviceaccount:shop:cart", start, _benign(), "1h") == (
        "normal service_account system:serviceaccount:shop:cart"
    )
    after = pd.Timestamp("2026-03-10 13:00", tz="UTC")
    assert name_alert("system:node:ip-10-0-1-9", after, _benign(), "1h") == "normal node system:node:ip-10-0-1-9"


def test_labels_without_benign_rows_name_every_alert_normal():
    empty = benign_windows(pd.DataFrame(), "1h")
    assert name_alert("alice", pd.Timestamp("2026-03-10", tz="UTC"), empty, "1h") == "normal human alice"


def test_an_alert_in_a_window_of_two_benign_changes_names_both():
    """The CI deployer installs an operator while a rollout is under way, in the same hour: the
    alert is named after both, not after whichever label came first."""
    both = LABELS + (
        "b1,ResponseComplete,benign_rollout,,benign,ci-deployer,2026-03-10,2026-03-10T13:05:00Z,"
        "2026-03-10T13:05:00Z,2026-03-10T13:20:00Z\n"
        "b2,ResponseComplete,benign_operator_install,,benign,ci-deployer,2026-03-10,2026-03-10T13:30:00Z,"
        "2026-03-10T13:30:00Z,2026-03-10T13:45:00Z\n"
        "b3,ResponseComplete,benign_rollout,,benign,ci-deployer,2026-03-10,2026-03-10T13:50:00Z,"
        "2026-03-10T13:50:00Z,2026-03-10T13:55:00Z\n"
    )
    benign = benign_windows(pd.read_csv(io.StringIO(both), dtype=str), "1h")
    start = pd.Timestamp("2026-03-10 13:00", tz="UTC")
    assert name_alert("ci-deployer", start, benign, "1h") == "benign_rollout + benign_operator_install"
