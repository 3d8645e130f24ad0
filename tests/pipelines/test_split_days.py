"""Which days calibrate: the held-out slice holds enough windows of every kind it will judge.

A week of history, Monday to Sunday: people work on weekdays, controllers every hour. The last
quarter of the days is the weekend, when nobody but the on-call works; calibrated on it alone,
a person's ordinary Tuesday would be judged against the controllers' windows and look like an
incident every day.
"""

from __future__ import annotations

import pandas as pd

from models.detector import DetectorParams
from pipelines.train import MIN_KIND_WINDOWS, split_days

DAYS = list(pd.date_range("2026-03-02", periods=7, freq="D", tz="UTC"))  # Monday to Sunday


def _windows(people_per_day: list[int], anonymous: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {"service_account": 500, "human": people_per_day, "anonymous": anonymous}, index=pd.DatetimeIndex(DAYS)
    )


def test_a_weekend_quarter_grows_into_friday_so_that_people_are_calibrated_against_people():
    week = _windows([40, 40, 40, 40, 40, 5, 3])
    assert MIN_KIND_WINDOWS == 48
    plain = split_days(DAYS, DetectorParams())
    assert (len(plain.warmup), len(plain.fit), len(plain.held_out)) == (2, 3, 2)  # 8 people's windows held out
    grown = split_days(DAYS, DetectorParams(), week)
    assert (len(grown.warmup), len(grown.fit), len(grown.held_out)) == (2, 2, 3)
    assert grown.held_out == DAYS[4:]  # Friday's 40 and the weekend's 8
    # Anonymous callers never act 48 times after warm-up: no slice would hold them, none is grown for them.
    assert split_days(DAYS, DetectorParams(), _windows([40] * 7, anonymous=1)).held_out == DAYS[5:]


def test_the_fit_keeps_two_days_and_an_explicit_calibration_length_is_kept():
    quiet_people = _windows([30, 30, 30, 30, 30, 0, 0])  # Friday alone is not enough: two more would be
    assert split_days(DAYS, DetectorParams(), quiet_people).fit == DAYS[2:4]
    assert split_days(DAYS, DetectorParams(calibration_days=2), quiet_people).held_out == DAYS[5:]
