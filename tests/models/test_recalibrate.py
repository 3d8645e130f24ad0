"""A routine action stays routine while the day state's rates move.

The narrated cluster, hourly windows: the namespace ``shop`` has three service accounts.
``cart`` reads its secret in 3 of every 10 hours, ``checkout`` and ``payments`` in 9 of 10.
The action rarity learns 14 days, the calibration holds out the next 5 (each judged with the
rates of the days before it, as training does), and the day state then learns 3 more days.

A share below its peers' is shrunk toward them less with every day learned, so ``cart``'s
rate falls a little each day and its surprisal rises: today's ordinary hour with a secret read
is a hair above every held-out one. Observed on 50 nodes (seeds 1 and 2): ingress-nginx's
reads, 0.3911 nats against at most 0.39 held out, got ``p = e^-15`` from its own reference,
and cert-manager alerted at 10 nats on an ordinary day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.first_seen import FirstSeenEncoder
from models.calibration import TailCalibrator
from models.day_state import DayState
from models.persistence import ModelBundle
from models.rarity import ActionRarity

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


def _trained() -> ModelBundle:
    rarity = ActionRarity().fit(_days(0, 14))
    held, parts = [], []
    for day in range(14, 19):  # held out one day at a time, as pipelines/train.py does
        windows = _days(day, 1)
        held.append(windows)
        rarity_score = -rarity.score_samples_shared(windows)
        parts.append(pd.DataFrame({"forest": 0.0, "rarity": rarity_score}, index=windows.index))
        rarity.partial_fit(windows)
    return ModelBundle(
        detector=None,
        encoder=FirstSeenEncoder(),
        feature_names=["n_secret_names", "n_admin_bindings"],
        window="1h",
        threshold=1.0,
        train_scores=np.zeros(1),
        params={},
        rarity=rarity,
        calibrator=TailCalibrator().fit(pd.concat(parts)),
        held_out_windows=pd.concat(held),
        held_out_forest=np.zeros(sum(len(h) for h in held)),
    )


def _cart_hour_with_a_read(state: DayState) -> pd.DataFrame:
    today = _days(22, 1)
    window = today.loc[[(SHOP + "cart", START + pd.Timedelta(hours=530))]]  # 530 % 10 < 3: a read
    assert window["n_secret_names"].iloc[0] == 1.0
    return pd.DataFrame({"forest": 0.0, "rarity": -state.rarity.score_samples_shared(window)}, index=window.index)


def test_an_ordinary_hour_is_judged_against_the_reference_with_todays_rates():
    bundle = _trained()
    state = DayState.from_bundle(bundle, "c")
    for day in range(19, 22):
        state.rarity.partial_fit(_days(day, 1))
    sources = _cart_hour_with_a_read(state)
    held = bundle.calibrator.local_sources_[f"identity {SHOP}cart"][:, 1]
    assert sources["rarity"].iloc[0] > held.max()  # the drift: beyond every held-out hour
    stale = bundle.calibrator.combined_log_p_values(sources)[0]
    fresh = state.calibrator(bundle).combined_log_p_values(sources)[0]
    assert stale < np.log(1 / 100)  # what scoring did: rarer than any held-out hour (-7.4)
    # cart read its secret in 3 of 10 held-out hours: about that common, not rarer.
    assert fresh > np.log(0.2)  # -1.18


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
