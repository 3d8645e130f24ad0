"""The real-harness measurement: on identity-days, as the detector ranks and alerts; and without a
kube-apiserver it still writes its file, saying why.

`make eval` runs it on machines that may not have run `make e2e-deps`; the JSON then has
every field, nothing measured, and the reason in ``error``.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from models.identity_day import identity_days
from pipelines.ingest import IngestStats
from pipelines.score import ScoreResult
from tests.kube.eval_real import _cli, rank_identity_days


def test_a_machine_without_the_api_server_gets_the_reason_in_the_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAAD_KUBE_CACHE", str(tmp_path / "empty-cache"))  # where build_apiserver.sh looks
    out = tmp_path / "eval" / "real.json"
    assert _cli(["--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["error"].startswith("kube-apiserver")
    assert "make e2e-deps" in written["error"]
    assert {k: v for k, v in written.items() if k != "error"} == {
        "attackers": [],
        "benign_alerts": [],
        "n_identities": 0,
        "days": 8,
    }
    assert "not measured" in capsys.readouterr().err


def _scored_day(window_p: dict, threshold: float) -> ScoreResult:
    """A scored day as score_day returns it: window evidence, identity-days summed from it."""
    keys = pd.MultiIndex.from_tuples(
        [(who, pd.Timestamp(f"2026-02-10 {hour:02d}:00", tz="UTC")) for who, hour in window_p],
        names=["identity", "window_start"],
    )
    p = pd.Series(list(window_p.values()), index=keys)
    days = identity_days(p).days
    days["is_anomaly"] = days["anomaly_score"] > threshold
    windows = pd.DataFrame({"anomaly_score": -np.log(p)}, index=keys)
    return ScoreResult(date(2026, 2, 10), windows, [], days.reset_index(), IngestStats(), threshold)


def test_attackers_rank_and_alert_by_their_identity_day_and_benign_alerts_are_identity_days():
    # The prober is somewhat unusual in each of four hours; the CI runner that moved is very
    # unusual in two of its hours, a developer in one. By the hour the CI runner comes first;
    # judged by the day the prober does (4 x log(0.05/0.001) = 15.6 against 2 x 4.6 = 9.2).
    scored = _scored_day(
        {
            ("prober", 9): 0.001,
            ("prober", 10): 0.001,
            ("prober", 11): 0.001,
            ("prober", 12): 0.001,
            ("ci", 10): 0.0005,
            ("ci", 11): 0.0005,
            ("dev", 14): 0.0001,
            ("dev", 15): 0.5,
            ("app", 9): 0.3,
        },
        threshold=7.0,
    )
    labels = pd.DataFrame(
        {
            "identity": ["prober", "prober", "ci"],
            "window_start": [pd.Timestamp(f"2026-02-10 {h:02d}:00", tz="UTC") for h in (9, 12, 10)],
            "scenario": ["slow_namespace_probing", "slow_namespace_probing", "benign_ci_runner_move"],
        }
    )
    out = rank_identity_days(scored, labels)
    assert out["n_identities"] == 4
    assert out["attackers"] == [
        {
            "identity": "prober",
            "scenario": "slow_namespace_probing",
            "identity_rank": 1,  # its day outranks the CI runner's two loud hours
            "best_window_rank": 7,  # dev's hour and CI's two above, its own four hours tied (ties count against it)
            "alert": True,
        }
    ]
    # One benign alert for CI's day, not one per window; dev's day (4.6) is below the threshold.
    assert [(b["identity"], b["scenario"], b["day"], b["n_unusual"]) for b in out["benign_alerts"]] == [
        ("ci", "benign_ci_runner_move", "2026-02-10", 2)
    ]
