"""A routine action is judged against a reference that was judged like it.

The narrated cluster, hourly windows: the namespace ``shop`` has three service accounts.
``cart`` reads its secret in 3 of every 10 hours, ``checkout`` and ``payments`` in 9 of 10.
The action rarity learns 14 days, the calibration holds out the next 5, and the day state then
learns 3 more days before today.

A share below its peers' is shrunk toward them less with every day counted, so ``cart``'s rate
falls a little each day and its surprisal rises. Training judged each held-out day with the
days before it only, fewer counts than any scored day has: today's ordinary hour with a secret
read was a hair above every held-out one, and rarer than all of them. Observed on 50 nodes
(seeds 1 and 2): ingress-nginx's reads, 0.3911 nats against at most 0.39 held out, got
``p = e^-15`` from its own reference, and cert-manager alerted at 10 nats on an ordinary day.
Judged with every *other* day's counts, the reference sees the rates a scored day sees; judged
with counts that include itself, a held-out one-off would lose its tail.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from features.first_seen import FirstSeenEncoder
from models.calibration import TailCalibrator
from models.day_state import DayState
from models.persistence import ModelBundle
from models.rarity import ActionRarity
from models.recalibrate import reference_sources

SHOP = "system:serviceaccount:shop:"
SHARES = {"cart": 3, "checkout": 9, "payments": 9}  # hours of every 10 with a secret read
START = pd.Timestamp("2026-03-01", tz="UTC")


def _days(first: int, n: int) -> pd.DataFrame:
    frames = []
    for name, share in SHARES.items():
        hours = np.arange(first * 24, (first + n) * 24)
        starts = START + pd.to_timedelta(hours, unit="h")
        reads = (hours % 10 < share).astype(float)
        index = pd.MultiIndex.from_arrays([[SHOP + name] * len(starts), starts], names=["identity", "window_start"])
        frames.append(pd.DataFrame({"n_secret_names": reads, "n_admin_bindings": 0.0}, index=index))
    return pd.concat(frames)


def _trained(one_off: bool = False) -> ModelBundle:
    """As pipelines/train.py trains: the rarity learns the held-out days too, and the reference
    judges each held-out day with the counts of the others; ``one_off``: cart binds something
    to an admin role once, on held-out day 16."""
    rarity = ActionRarity().fit(_days(0, 14))
    held = _days(14, 5)
    if one_off:
        held.loc[(SHOP + "cart", START + pd.Timedelta(hours=16 * 24 + 5)), "n_admin_bindings"] = 1.0
    rarity.partial_fit(held)
    forest = np.zeros(len(held))
    return ModelBundle(
        detector=None,
        encoder=FirstSeenEncoder(),
        feature_names=["n_secret_names", "n_admin_bindings"],
        window="1h",
        threshold=1.0,
        train_scores=np.zeros(1),
        params={},
        rarity=rarity,
        calibrator=TailCalibrator().fit(reference_sources(forest, held, rarity)),
        held_out_windows=held,
        held_out_forest=forest,
    )


def _causal_reference() -> TailCalibrator:
    """The reference as training judged it before: each held-out day with the days before it only."""
    rarity = ActionRarity().fit(_days(0, 14))
    parts = []
    for day in range(14, 19):
        windows = _days(day, 1)
        parts.append(
            pd.DataFrame({"forest": 0.0, "rarity": -rarity.score_samples_shared(windows)}, index=windows.index)
        )
        rarity.partial_fit(windows)
    return TailCalibrator().fit(pd.concat(parts))


def _cart_hour_with_a_read(state: DayState) -> pd.DataFrame:
    today = _days(22, 1)
    window = today.loc[[(SHOP + "cart", START + pd.Timedelta(hours=530))]]  # 530 % 10 < 3: a read
    assert window["n_secret_names"].iloc[0] == 1.0
    return pd.DataFrame({"forest": 0.0, "rarity": -state.rarity.score_samples_shared(window)}, index=window.index)


def test_an_ordinary_hour_is_judged_against_a_reference_judged_like_it():
    bundle = _trained()
    state = DayState.from_bundle(bundle, "c")
    for day in range(19, 22):
        state.rarity.partial_fit(_days(day, 1))
    sources = _cart_hour_with_a_read(state)
    causal = _causal_reference()
    held = causal.local_sources_[f"identity {SHOP}cart"][:, 1]
    assert sources["rarity"].iloc[0] > held.max()  # the drift: beyond every held-out hour
    stale = causal.combined_log_p_values(sources)[0]
    fresh = state.calibrator(bundle).combined_log_p_values(sources)[0]
    assert stale < np.log(1 / 100)  # what scoring did: rarer than any held-out hour (-7.4)
    # cart read its secret in 3 of 10 held-out hours: about that common, not rarer.
    assert fresh > np.log(0.1)  # -1.91


def test_a_fresh_state_judges_as_the_bundle_does():
    bundle = _trained()
    state = DayState.from_bundle(bundle, "c")
    sources = _cart_hour_with_a_read(state)
    assert state.calibrator(bundle).combined_log_p_values(sources) == pytest.approx(
        bundle.calibrator.combined_log_p_values(sources)
    )


def test_a_held_out_one_off_keeps_its_tail():
    """Judged with counts that include itself, cart's one admin binding would be half as rare,
    and a second one on a scored day would lie beyond the whole reference."""
    bundle = _trained(one_off=True)
    state = DayState.from_bundle(bundle, "c")
    reference = state.calibrator(bundle).local_sources_[f"identity {SHOP}cart"][:, 1]
    never = -np.log(ActionRarity().fit(_days(0, 16)).rates([SHOP + "cart"])["privileged_binding"].iloc[0])
    assert reference.max() >= 0.9 * never


def test_the_reference_is_judged_again_only_when_the_rates_moved():
    bundle = _trained()
    state = DayState.from_bundle(bundle, "c")
    first = state.calibrator(bundle)
    assert state.calibrator(bundle) is first
    state.rarity.partial_fit(_days(19, 1))
    assert state.calibrator(bundle) is not first


def test_a_bundle_without_held_out_windows_keeps_its_calibrator():
    bundle = _trained()
    bundle.held_out_windows = None
    state = DayState.from_bundle(bundle, "c")
    assert state.calibrator(bundle) is bundle.calibrator


def test_a_copy_of_the_state_keeps_the_reference_it_judged_and_a_saved_one_judges_again():
    """The evaluation copies a morning's state for every attack of the day: judging the held-out
    reference again for each copy was the same work every time. A copy keeps it, and judges
    exactly as the original; a saved state makes it again when loaded, as the same judgement."""
    bundle = _trained()
    state = DayState.from_bundle(bundle, "c")
    sources = _cart_hour_with_a_read(state)
    judged = state.calibrator(bundle)
    copied = copy.deepcopy(state)
    assert copied.calibrator(bundle) is judged
    loaded = pickle.loads(pickle.dumps(state))
    assert "_calibration" not in loaded.__dict__
    np.testing.assert_array_equal(
        loaded.calibrator(bundle).combined_log_p_values(sources), judged.combined_log_p_values(sources)
    )
    assert copied.rarity is not state.rarity  # what a copy learns stays its own
