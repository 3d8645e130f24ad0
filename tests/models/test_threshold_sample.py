"""A threshold set on a small held-out sample says so, in MLflow's metrics and in what `kaad train` prints.

The narrated three days (tests/data/audit/normal_3days.jsonl: cart, a kubelet and alice) give
one warm-up day, one fit day and one held-out day: 3 identity-days to set "one alert a day" on.
One in three is the asked rate per identity-day; a 95% bound on it needs 8 identity-days (the
rule of three), so the user is told the threshold cannot promise the rate.
"""

from __future__ import annotations

from rich.console import Console

from models.detector import DetectorParams
from pipelines.train import TrainConfig, train
from reports.train_summary import render_training


def test_three_narrated_days_are_too_few_and_training_says_so():
    result = train(["tests/data/audit/normal_3days.jsonl"], TrainConfig(params=DetectorParams(seed=0)))
    metrics = result.metrics()
    assert metrics["held_out_id_days"] == 3.0
    assert metrics["id_days_needed"] == 8.0
    assert metrics["held_out_too_small"] == 1.0
    low, high = metrics["alerts_per_day_low"], metrics["alerts_per_day_high"]
    assert low == 0.0 and 2.0 < high < 2.2  # 0 of 3 alerting bounds the chance below 0.71: 2.1 a day
    console = Console(width=200, record=True)
    console.print(render_training(result, "model.joblib", "0" * 64, None))
    printed = console.export_text()
    assert "warning" in printed and "3 identity-days on 1 day(s)" in printed and "needs 8" in printed
