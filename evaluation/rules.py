"""The rule baseline: count the events of each window that do something new for the identity.

A fair stand-in for what a team would write without a model: an event counts when it carries
a sensitive action family (the ``action_families`` the flags set at ingest) or comes from a
source /16 network that the identity never had in training. Identities never seen in
training have no history, so every network of theirs is new.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from features.first_seen import ip_range
from features.windows import window_start

COLUMNS = ["identity", "timestamp", "source_ip", "action_families"]
_SEP = "\x1f"


def _frame(events: pa.Table | pd.DataFrame) -> pd.DataFrame:
    if isinstance(events, pa.Table):
        events = events.select(COLUMNS).to_pandas()
    return events[COLUMNS].reset_index(drop=True)


def _network_keys(events: pd.DataFrame) -> pd.Series:
    return events["identity"].astype(str) + _SEP + ip_range(events["source_ip"]).fillna("").astype(str)


def _family_keys(events: pd.DataFrame) -> pd.Series:
    """One row per (event, action family), indexed by the event's row."""
    families = events["action_families"].explode().dropna()
    return events["identity"].astype(str).loc[families.index] + _SEP + families.astype(str)


class NoveltyRule:
    """Per identity: sensitive action families and source /16 networks seen in training."""

    def fit(self, events: pa.Table | pd.DataFrame) -> NoveltyRule:
        frame = _frame(events)
        self.networks_ = set(_network_keys(frame).unique())
        self.families_ = set(_family_keys(frame).unique())
        return self

    def score(self, events: pa.Table | pd.DataFrame, freq: str) -> pd.Series:
        """New-for-this-identity events per (identity, window_start); higher is more anomalous."""
        frame = _frame(events)
        new = ~_network_keys(frame).isin(self.networks_)
        families = _family_keys(frame)
        new_family = (~families.isin(self.families_)).groupby(level=0).any()
        new = new | new_family.reindex(frame.index, fill_value=False)
        counts = new.astype(float).groupby([frame["identity"], window_start(frame["timestamp"], freq)]).sum()
        return counts.rename_axis(["identity", "window_start"]).rename("anomaly_score")
