"""The rule baseline counts, per window, the events doing something new for their identity."""

from __future__ import annotations

import pandas as pd

from evaluation.rules import NoveltyRule


def _events(rows: list[tuple[str, str, str, list[str] | None]]) -> pd.DataFrame:
    """Events from (identity, time, source IP, action families) rows."""
    return pd.DataFrame(
        {
            "identity": [r[0] for r in rows],
            "timestamp": pd.to_datetime([r[1] for r in rows], utc=True),
            "source_ip": [r[2] for r in rows],
            "action_families": [r[3] for r in rows],
        }
    )


# Training: alice works from the office (198.51.100.0/16) and sometimes execs into pods.
HISTORY = _events(
    [
        ("alice", "2026-03-02 09:10", "198.51.100.7", None),
        ("alice", "2026-03-02 09:20", "198.51.100.9", ["exec"]),
    ]
)


def test_new_networks_and_new_sensitive_families_are_counted_per_window():
    day = _events(
        [
            ("alice", "2026-03-10 09:05", "198.51.7.7", None),  # same /16 as the office: not new
            ("alice", "2026-03-10 09:06", "198.51.8.1", ["exec"]),  # exec again: not new
            ("alice", "2026-03-10 03:01", "203.0.113.5", None),  # a network she never had
            ("alice", "2026-03-10 03:02", "198.51.100.7", ["rbac", "exec"]),  # a new family (rbac)
            ("alice", "2026-03-10 03:03", "203.0.113.5", ["rbac"]),  # both new: counted once
        ]
    )
    scores = NoveltyRule().fit(HISTORY).score(day, "1h")
    assert scores.to_dict() == {
        ("alice", pd.Timestamp("2026-03-10 03:00", tz="UTC")): 3.0,
        ("alice", pd.Timestamp("2026-03-10 09:00", tz="UTC")): 0.0,
    }


def test_an_identity_never_seen_in_training_has_only_new_networks():
    day = _events([("mallory", "2026-03-10 03:01", "198.51.100.7", None)])
    scores = NoveltyRule().fit(HISTORY).score(day, "1h")
    assert scores.tolist() == [1.0]
