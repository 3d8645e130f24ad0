"""The exponential tail beyond a reference is fitted on the reference's tail, not on its bulk.

A peer group's reference is about a hundred held-out windows, more than half of them at 0
nats of rarity (an admin's ordinary hour) and the rest a few nats. Beyond the largest, the
p-value is extrapolated with an exponential whose scale is the mean excess of the top values:
fitted on the top 50 of 98, those values were the bulk (the zeros included), and a window far
beyond every admin window came out as only about as rare as a few admin windows in a row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.calibration import TailCalibrator
from models.tail import log_tail_p_values, tail_count


def _admin_like_reference(rng: np.random.Generator, n: int = 98) -> np.ndarray:
    """More than half the windows at 0, the others 1.4 nats plus an exponential of scale 0.5."""
    busy = rng.random(n) < 0.45
    return np.where(busy, 1.4 + rng.exponential(0.5, size=n), 0.0)


def _true_log_survival(x: float) -> float:
    return math.log(0.45) - (x - 1.4) / 0.5


def test_a_window_beyond_a_small_reference_is_as_rare_as_the_references_tail_says():
    """Twenty references drawn alike; a window at 10 nats has a true tail probability of
    exp(-18). Its extrapolated log p-value is within 3 nats of that in the median reference
    (ten values leave each one's scale uncertain by a third); fitted on the top half it was
    about 9 nats too common."""
    errors = []
    for seed in range(20):
        reference = _admin_like_reference(np.random.default_rng(seed))
        (log_p,) = log_tail_p_values(reference, [10.0], tail_size=50)
        errors.append(log_p - _true_log_survival(10.0))
    assert abs(float(np.median(errors))) < 3.0


@pytest.mark.parametrize("seed", range(5))
def test_an_admin_reference_of_a_hundred_windows_no_longer_caps_a_window_far_beyond_it(seed):
    """An admin's 98 held-out windows (more than half at 0 nats, none above ~5) and 3,000 other
    windows in the cluster. Her new window has 34 nats of rarity, the first aws-auth edit in
    the cluster: its evidence is the weaker of the cluster's and her reference's. Her reference
    fitted its tail on its top 50, i.e. on its zeros, and held her at 17-22 nats; fitted on its
    top tenth it says what the cluster says, above 30."""
    rng = np.random.default_rng(seed)
    identities = ["admin"] * 98 + [f"service-{i % 30}" for i in range(3000)]
    rarity = np.concatenate([_admin_like_reference(rng), rng.exponential(0.8, size=3000)])
    index = pd.MultiIndex.from_arrays([identities, range(len(identities))], names=["identity", "window_start"])
    held_out = pd.DataFrame({"forest": rng.normal(size=len(identities)), "rarity": rarity}, index=index)
    calibrator = TailCalibrator().fit(held_out)
    new = pd.DataFrame(
        {"forest": [0.0], "rarity": [34.0]},
        index=pd.MultiIndex.from_arrays([["admin"], [len(identities)]], names=["identity", "window_start"]),
    )
    assert -calibrator.combined_log_p_values(new)[0] > 30.0


def test_the_tail_is_the_top_tenth_of_a_reference_but_never_fewer_than_ten_values():
    """Ten values give a scale with a standard error of about a third; a large reference (the
    cluster's thousands of windows) keeps the top ``tail_size``."""
    assert tail_count(98, 50) == 10
    assert tail_count(300, 50) == 30
    assert tail_count(20_000, 50) == 50
    assert tail_count(8, 50) == 7  # one value stays below, as the threshold
    assert tail_count(98, None) == 0
