"""One very sure source carries a window, however its Fisher statistic ranks among a few peers.

The story (the 50-node evaluation's seed 3, made small): the platform admins' sessions have a
hundred held-out windows between them, and their forest and rarity scores go together (a busy
admin hour is both). A stolen admin session edits aws-auth, which no admin ever did: its rarity
lies far beyond every admin window, its forest score is ordinary. Ranked among the admins'
Fisher statistics, with a tail fitted on the top half of them, the combination came out at
one in 50,000 while the rarity alone said one in 10^8: a developer's busy hour outranked it.
Whatever the sources' dependence, k times the smallest of k p-values is a p-value
(Bonferroni), so the combination is never weaker than that.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models.calibration import TailCalibrator, left_out_log_p_values, log_tail_p_values

ROLE = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PlatformAdmin"
ADMINS = [f"{ROLE}/{n}" for n in ("aiko", "lucas", "elena")]


def admins_held_out() -> pd.DataFrame:
    """34 hours of each of three admins: forest and rarity scores that rise together."""
    rng = np.random.default_rng(3)
    busy = rng.exponential(size=3 * 34)
    index = pd.MultiIndex.from_product([ADMINS, range(34)], names=["identity", "window_start"])
    return pd.DataFrame({"forest": 0.4 + 0.05 * busy, "rarity": 1.5 * busy}, index=index)


def test_a_first_aws_auth_edit_by_an_admin_is_as_rare_as_its_rarity_says():
    held_out = admins_held_out()
    calibrator = TailCalibrator(min_reference=48).fit(held_out)
    index = pd.MultiIndex.from_tuples([(ADMINS[0], 99)], names=["identity", "window_start"])
    edit = pd.DataFrame({"forest": [0.45], "rarity": [35.0]}, index=index)

    combined = calibrator.combined_log_p_values(edit)[0]
    # The rarity alone, among the cluster's held-out windows and among the admins' (the same here).
    among_admins = log_tail_p_values(held_out["rarity"], [35.0], tail_size=calibrator.tail_size)[0]
    rarity_alone = max(calibrator.log_p_values(edit)[0, 1], among_admins)
    assert rarity_alone < math.log(1e-6)
    assert combined <= math.log(2) + rarity_alone


def test_held_out_windows_are_judged_the_same_way_so_the_threshold_means_what_it_did():
    """The threshold is set on the held-out windows, each judged against the others as a new one
    would be. An admin's one-off in the held-out days (a webhook written once) gets the same
    bound as a new window would; ordinary admin hours, sure of nothing, are not made rarer."""
    held_out = admins_held_out()
    held_out.iloc[10] = [0.45, 35.0]
    calibrator = TailCalibrator(min_reference=48).fit(held_out)
    left_out = left_out_log_p_values(calibrator, held_out)

    others = held_out["rarity"].drop(held_out.index[10])
    rarity_alone = log_tail_p_values(others, [35.0], tail_size=calibrator.tail_size)[0]
    assert left_out[10] <= math.log(2) + rarity_alone + 0.1  # judged among 101 others, not 102
    ordinary = (calibrator.log_p_values(held_out) > math.log(0.2)).all(axis=1)
    assert ordinary.sum() > 10
    assert (left_out[ordinary] > math.log(0.05)).all()
