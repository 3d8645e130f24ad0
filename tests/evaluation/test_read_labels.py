"""labels.csv names benign change too (contract 1 of issue 15); only attacks are positives."""

from __future__ import annotations

import pandas as pd

from pipelines.evaluate import evaluate, read_labels

LABELS = """auditID,stage,scenario,technique,variant,identity,day,timestamp,start,end
a1,ResponseComplete,benign_new_hire,,benign,nina.new,2026-03-10,2026-03-10T09:12:00Z,2026-03-10T09:12:00Z,2026-03-10T17:00:00Z
a2,ResponseComplete,secret_enumeration,T1552.007,loud,system:serviceaccount:shop:cart,2026-03-10,2026-03-10T14:01:00Z,2026-03-10T14:01:00Z,2026-03-10T14:03:00Z
"""


def test_benign_rows_are_not_attacks(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(LABELS)
    labels = read_labels(path)
    assert labels.to_dict("records") == [
        {
            "identity": "system:serviceaccount:shop:cart",
            "window_start": pd.Timestamp("2026-03-10 14:00", tz="UTC"),
            "scenario": "secret_enumeration",
        }
    ]


def test_the_new_hires_window_is_a_negative_in_the_evaluation(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(LABELS)
    scores = pd.Series(
        [0.9, 0.8, 0.1],
        index=pd.MultiIndex.from_tuples(
            [
                ("nina.new", pd.Timestamp("2026-03-10 09:00", tz="UTC")),
                ("system:serviceaccount:shop:cart", pd.Timestamp("2026-03-10 14:00", tz="UTC")),
                ("alice", pd.Timestamp("2026-03-10 09:00", tz="UTC")),
            ],
            names=["identity", "window_start"],
        ),
    )
    report = evaluate(scores, read_labels(path))
    # One positive (the attack), ranked second behind the new hire's false positive.
    assert report.n_positive == 1
    assert [(s.scenario, s.best_rank, s.false_positives_above) for s in report.scenarios] == [
        ("secret_enumeration", 2, 1)
    ]


def test_timestamps_with_and_without_fractions_of_a_second_mix_in_one_file(tmp_path):
    # The API server writes microseconds; a label written from a whole-second time has none.
    path = tmp_path / "labels.csv"
    path.write_text(
        "scenario,identity,timestamp\n"
        "secret_enumeration,cart,2026-03-10T14:01:00Z\n"
        "secret_enumeration,cart,2026-03-10T15:02:03.589569Z\n"
    )
    assert read_labels(path)["window_start"].tolist() == [
        pd.Timestamp("2026-03-10 14:00", tz="UTC"),
        pd.Timestamp("2026-03-10 15:00", tz="UTC"),
    ]
