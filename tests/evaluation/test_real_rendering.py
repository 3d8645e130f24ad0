"""The real kube-apiserver harness's JSON (tests/kube/eval_real.py) in detection.md, or why it is absent."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from evaluation import real
from evaluation.render import render

DOCS = Path(__file__).resolve().parents[2] / "docs"

# What the harness writes (its contract with make eval): a low-and-slow prober and a stolen
# token on the last of four days, and one benign alert (CI's operator install: an identity-day).
HARNESS = {
    "attackers": [
        {
            "identity": "system:serviceaccount:shop:cart",
            "scenario": "low_and_slow_probe",
            "identity_rank": 4,
            "best_window_rank": 9,
            "alert": False,
        },
        {
            "identity": "system:serviceaccount:ci:deployer",
            "scenario": "stolen_token_new_address",
            "identity_rank": 1,
            "best_window_rank": 1,
            "alert": True,
        },
    ],
    "benign_alerts": [
        {
            "identity": "ci|<b>bot",  # attacker-chosen text: a pipe breaks the table, a tag is HTML
            "scenario": "operator_install",
            "day": "2026-03-05",
            "anomaly_score": 7.1,
            "n_unusual": 3,
        }
    ],
    "n_identities": 23,
    "days": 4,
    "error": None,
}


def _doc(entry: dict) -> dict:
    doc = json.loads((DOCS / "detection.json").read_text())
    doc["real"] = entry
    return doc


def test_the_harness_ranks_and_benign_alerts_are_tables(tmp_path):
    path = tmp_path / "real.json"
    path.write_text(json.dumps(HARNESS))
    page = render(_doc(real.entry(real.load(path))))
    assert "ranked among 23 identity-days" in page
    assert "| low\\_and\\_slow\\_probe | system:serviceaccount:shop:cart | 4 | 9 | False |" in page
    assert "| stolen\\_token\\_new\\_address | system:serviceaccount:ci:deployer | 1 | 1 | True |" in page
    assert "Benign alerts (identity-days above the threshold): 1." in page
    assert "| operator\\_install | ci\\|&lt;b&gt;bot | 2026-03-05 | 3 | 7.1000 |" in page


def test_without_the_harness_the_page_says_so_plainly():
    page = render(
        _doc({"status": "missing", "note": "kube-apiserver not installed: run `make e2e-deps`", "result": None})
    )
    assert "The real-cluster harness (tests/kube/eval_real.py) was not run: kube-apiserver not installed" in page


def test_a_harness_json_without_a_field_of_the_contract_is_refused(tmp_path):
    lacking = copy.deepcopy(HARNESS)
    del lacking["benign_alerts"]
    path = tmp_path / "real.json"
    path.write_text(json.dumps(lacking))
    with pytest.raises(ValueError, match="benign_alerts"):
        real.load(path)


def test_a_harness_that_reports_an_error_is_a_failure_with_its_message():
    broken = HARNESS | {"attackers": [], "benign_alerts": [], "error": "RuntimeError: etcd did not start"}
    page = render(_doc(real.entry(broken)))
    assert "(tests/kube/eval_real.py) failed: the real harness reported: RuntimeError: etcd did not start" in page
