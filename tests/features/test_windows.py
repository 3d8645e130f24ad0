"""Window features: golden vectors for narrated days, invariants, causality, chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import AUDIT

from features.catalog import FEATURES
from features.featurise import featurise, featurise_history, new_encoder
from features.windows import FEATURE_NAMES, aggregate_windows
from pipelines.ingest import ingest


def _events(name: str) -> pd.DataFrame:
    return ingest([str(AUDIT / name)]).events


def _records(windows: pd.DataFrame) -> list[dict]:
    frame = windows.reset_index()
    frame["window_start"] = frame["window_start"].astype(str)
    return [
        {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()} for row in frame.to_dict("records")
    ]


@pytest.fixture(scope="module")
def history():
    """Three ordinary days: cart, alice and a kubelet (tests/data/make_narrated.py)."""
    return featurise_history([_events("normal_3days.jsonl")])


def test_golden_windows_of_three_normal_days(golden, history):
    windows, _ = history
    golden("windows_normal_3days", _records(windows))


def test_golden_windows_of_the_attack_day(golden, history):
    _, encoder = history
    golden("windows_attack_day", _records(featurise(_events("attack_day.jsonl"), encoder)))


def test_the_attack_window_says_what_happened(history):
    _, encoder = history
    windows = featurise(_events("attack_day.jsonl"), encoder)
    row = windows.loc[("system:serviceaccount:shop:cart", pd.Timestamp("2026-03-05 02:00", tz="UTC"))]
    assert row["n_denied"] == 4 and row["n_secret_namespaces"] == 5
    assert row["n_exec_kube_system"] == 1 and row["frac_res_self_reviews"] > 0
    assert row["new_user_agent"] == 1 and row["new_ua_family"] == 1  # curl, first time
    assert row["new_source_ip"] == 0  # same pod IP
    assert row["new_namespace"] == 4  # all but its own shop
    quiet = windows.loc[("system:serviceaccount:shop:cart", pd.Timestamp("2026-03-05 05:00", tz="UTC"))]
    assert quiet[[c for c in FEATURE_NAMES if c.startswith("new_")]].sum() == 0


def test_novelty_is_causal_in_history(history):
    """Day one is full of firsts; the same routine on days two and three is not new."""
    windows, _ = history
    day = windows.index.get_level_values("window_start").day
    cart = windows.xs("system:serviceaccount:shop:cart", level="identity")
    assert cart.iloc[0]["new_identity"] == 1 and cart.iloc[0]["new_verb_resource"] == 2
    assert cart.iloc[1:][["new_identity", "new_verb_resource", "new_source_ip"]].to_numpy().sum() == 0
    assert windows.loc[day > 2, [c for c in FEATURE_NAMES if c.startswith("new_")]].to_numpy().sum() == 0


def test_request_counts_add_up_to_the_events():
    events = _events("normal_3days.jsonl")
    windows, _ = featurise_history([events])
    assert np.expm1(windows["log_requests"]).round().sum() == len(events)


def test_row_order_does_not_change_the_windows():
    events = _events("attack_day.jsonl")
    shuffled = events.sample(frac=1.0, random_state=3).reset_index(drop=True)
    encoder = featurise_history([_events("normal_3days.jsonl")])[1]
    pd.testing.assert_frame_equal(featurise(events, encoder), featurise(shuffled, encoder))


def test_input_is_not_mutated():
    events = _events("attack_day.jsonl")
    before = events.copy()
    featurise_history([events])
    pd.testing.assert_frame_equal(events, before)


def _chunked_input(size: int) -> pd.DataFrame:
    """Four days of events; for the smallest chunks, the attack day alone.

    Seven-event chunks cut every window of the day into parts, which is what they are for; over
    four days they would only repeat that 60 times, at a fifth of a second each.
    """
    days = ["attack_day.jsonl"] if size < 10 else ["normal_3days.jsonl", "attack_day.jsonl"]
    return pd.concat([_events(name) for name in days], ignore_index=True)


@pytest.mark.parametrize("size", [7, 50, 111])
def test_chunked_and_unchunked_featurisation_agree(size):
    events = _chunked_input(size)
    whole, _ = featurise_history([events])
    chunks = [events.iloc[i : i + size] for i in range(0, len(events), size)]
    chunked, _ = featurise_history(chunks)
    pd.testing.assert_frame_equal(whole, chunked)


def test_empty_input_gives_empty_typed_windows():
    windows = aggregate_windows(pd.DataFrame())
    assert list(windows.columns) == list(FEATURE_NAMES) and windows.empty
    assert set(windows.dtypes) == {np.dtype("float64")}
    windows, encoder = featurise_history([])
    assert windows.empty and list(windows.columns) == list(FEATURE_NAMES)


def test_every_feature_is_documented():
    from support import TESTS

    from features.catalog import render_markdown

    doc = (TESTS.parent / "docs" / "features.md").read_text()
    assert doc == render_markdown(), "docs/features.md is stale: python -m features.catalog > docs/features.md"
    assert [f.name for f in FEATURES] == list(FEATURE_NAMES)
    for feature in FEATURES:
        assert f"`{feature.name}`" in doc


def test_new_encoder_has_seen_nothing():
    encoder = new_encoder()
    assert len(encoder.identities_) == 0


@pytest.mark.parametrize("size", [7, 50])
def test_a_busy_window_processed_in_parts_is_merged_exactly(monkeypatch, size):
    """Windows bigger than the held-row cap are aggregated in parts; the result is the same."""
    import features.featurise as featurise_module

    events = _chunked_input(size)
    whole, _ = featurise_history([events])
    monkeypatch.setattr(featurise_module, "MAX_HELD_ROWS", 3)
    chunks = [events.iloc[i : i + size] for i in range(0, len(events), size)]
    parted, _ = featurise_history(chunks)
    pd.testing.assert_frame_equal(whole, parted)
