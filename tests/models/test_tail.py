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


def test_a_machine_that_does_the_same_every_hour_still_has_a_tail():
    """A monitoring service account's 72 held-out windows: 64 of them the same (forest 0.318,
    rarity 0.4 nats: its hourly list), 8 quieter. Its top tenth is one value repeated, so the
    mean excess was 0, there was no tail, and its cluster-admin binding (94 nats of rarity) was
    held at one in 73, 4.3 nats: on the real API server it fell from rank 2 to rank 8."""
    rng = np.random.default_rng(0)
    monitor = "system:serviceaccount:kube-system:monitor"
    identities = [monitor] * 72 + [f"service-{i % 30}" for i in range(3000)]
    forest = np.concatenate([np.r_[np.full(64, 0.318), np.full(8, 0.30)], rng.normal(0.3, 0.05, size=3000)])
    rarity = np.concatenate([np.r_[np.full(64, 0.4), np.full(8, 0.18)], rng.exponential(0.8, size=3000)])
    index = pd.MultiIndex.from_arrays([identities, range(len(identities))], names=["identity", "window_start"])
    calibrator = TailCalibrator().fit(pd.DataFrame({"forest": forest, "rarity": rarity}, index=index))
    binding = pd.DataFrame(
        {"forest": [0.8], "rarity": [94.0]},
        index=pd.MultiIndex.from_arrays([[monitor], [len(identities)]], names=["identity", "window_start"]),
    )
    assert -calibrator.combined_log_p_values(binding)[0] > 30.0


def test_a_reference_with_no_spread_at_its_top_falls_by_one_unit():
    """A reference whose top tenth and the value below it are one value (the same hourly job, or
    nothing rare in any held-out window) says nothing about how fast its tail falls. A scale of
    0 gave it no tail: everything beyond tied at 1 / (n + 1). Measuring from the next lower value
    instead made the scale that step, however small (a CI deployer 3 units beyond came out at
    exp(-100)). With one unit of decay a score 3 beyond is 3 nats rarer than the top."""
    reference = np.r_[np.zeros(80), np.full(20, 5.0)]
    log_p = log_tail_p_values(reference, [5.0 + 3.0], tail_size=50)[0]
    assert log_p == pytest.approx(-3.0 - np.log(len(reference) + 1.0))
    flat = log_tail_p_values(np.zeros(60), [2.0], tail_size=50)[0]
    assert flat == pytest.approx(-2.0 - np.log(61.0))


@pytest.mark.parametrize("min_scale", [0.0, 1.0])
@pytest.mark.parametrize("shape", ["admin", "clumped"])
def test_a_member_judged_left_out_is_judged_as_the_others_would_judge_it_new(shape, min_scale):
    """The threshold is set on held-out windows each judged against the others
    (``left_out_log_tail_p``) because scoring judges a new window against all of them: the two
    must agree, value for value, for every member, the top one's extrapolated tail included,
    with and without the least scale of a tail in nats."""
    from models.tail import left_out_log_tail_p

    if shape == "admin":
        reference = _admin_like_reference(np.random.default_rng(3))
    else:  # eleven values 0.005 nats apart and a one-off above: the others' scale is 0.03
        reference = np.r_[np.zeros(42), 1.17 + 0.005 * np.arange(11), 3.16]
    left_out = left_out_log_tail_p(reference, reference, 50, min_scale=min_scale)
    as_new = [
        log_tail_p_values(np.delete(reference, i), reference[i : i + 1], tail_size=50, min_scale=min_scale)[0]
        for i in range(len(reference))
    ]
    np.testing.assert_allclose(left_out, as_new, rtol=1e-12)
