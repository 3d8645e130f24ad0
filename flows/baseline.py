"""The network baseline: which external destinations the cluster's units used, and their unit-days.

Two small tables. ``destinations``: one row per unit (a workload, else a pod, or a node for
SNATed traffic), remote end (the address, or ``aws:S3`` for a shared AWS service's address,
:func:`flows.evidence.destination_keys`) and port, with the first and last day it was used and, for
a destination an alerting identity-day introduced, who is holding it back. ``unit_days``: per
unit and day, the measure of each term of :mod:`flows.evidence`, the history its nats are
computed against. ``kaad train --flow-logs`` learns it from the training days and keeps it in
the model bundle; scored day after day it moves with the day state
(:class:`models.day_state.DayState`) as first-seen values do: a benign new destination is new
once, and one that an alerting identity-day introduced stays new until the finding is accepted.
A destination no unit used for :data:`FORGET_AFTER` is forgotten: new again, and dropped from
the table, which would otherwise grow with every address ever contacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

#: The longest gap of routine traffic: a monthly job's (31 days), plus a day for a run that
#: slipped past midnight. A destination unused for longer is not part of the routine.
FORGET_AFTER = timedelta(days=32)
#: The destinations table's columns; ``held_by``/``held_day`` are empty for a learned destination.
DESTINATION_COLUMNS = ["unit", "remote", "port", "first_day", "last_day", "held_by", "held_day"]


@dataclass
class NetworkBaseline:
    """External destinations per unit, and per unit-day the measure of each network term."""

    destinations: pd.DataFrame
    unit_days: pd.DataFrame  # columns unit, day and one per term

    @classmethod
    def empty(cls) -> NetworkBaseline:
        return cls(pd.DataFrame(columns=DESTINATION_COLUMNS), pd.DataFrame(columns=["unit", "day"]))

    @classmethod
    def learn(cls, conversations: pd.DataFrame, named: pd.DataFrame | None = None) -> NetworkBaseline:
        """The baseline of every day in ``conversations`` (attributed, :func:`flows.join.join_flows`),
        with the addresses the audit log ``named`` on those days (:attr:`flows.leases.Leases.named`)."""
        from flows.evidence import unit_days

        base = cls.empty()
        if len(conversations):
            measures, _ = unit_days(conversations, named=named)
            base.unit_days = measures.reset_index()
            base.destinations = _destinations(conversations)
        return base

    def days(self) -> list[pd.Timestamp]:
        return sorted(set(pd.to_datetime(self.unit_days["day"], utc=True))) if len(self.unit_days) else []

    def known(self, day: pd.Timestamp) -> set[tuple[str, int]]:
        """(remote, port) seen in the cluster before ``day``, not held back nor forgotten."""
        d = self.destinations
        if d.empty:
            return set()
        ok = (pd.to_datetime(d["first_day"], utc=True) < day) & d["held_by"].isna() & _recent(d, day)
        return set(zip(d.loc[ok, "remote"], d.loc[ok, "port"].astype(int), strict=True))

    def used(self, day: pd.Timestamp) -> dict[str, set[tuple[str, int]]]:
        """Per unit, the (remote, port) it used before ``day`` (not held back nor forgotten)."""
        d = self.destinations
        if d.empty:
            return {}
        ok = d[(pd.to_datetime(d["first_day"], utc=True) < day) & d["held_by"].isna() & _recent(d, day)]
        out: dict[str, set[tuple[str, int]]] = {}
        for unit, remote, port in zip(ok["unit"], ok["remote"], ok["port"].astype(int), strict=True):
            out.setdefault(str(unit), set()).add((remote, port))
        return out

    def has_past(self, day: pd.Timestamp) -> bool:
        """Whether any day before ``day`` was learned (without one nothing can be new)."""
        return any(d < day for d in self.days())

    def history(self, day: pd.Timestamp, n_days: int) -> pd.DataFrame:
        """The unit-days of the last ``n_days`` learned days before ``day``, indexed (unit, day)."""
        before = [d for d in self.days() if d < day][-n_days:]
        if not before:
            return pd.DataFrame()
        frame = self.unit_days.copy()
        frame["day"] = pd.to_datetime(frame["day"], utc=True)
        return frame[frame["day"].isin(before)].set_index(["unit", "day"])

    def add_day(
        self,
        day: pd.Timestamp,
        conversations: pd.DataFrame,
        held: dict[str, list[str]],
        named: pd.DataFrame | None = None,
    ) -> None:
        """Learn ``day`` (its conversations); the new destinations of the units in ``held`` are held
        back by those identities. Learning a day again replaces what it taught; an earlier day
        than the last learned one teaches nothing (a forced rerun of the past)."""
        from flows.evidence import unit_days

        learned = self.days()
        if learned and day < learned[-1]:
            return
        self.forget(day)
        if len(self.destinations):  # the forgotten ones go (held ones wait for their finding)
            d = self.destinations
            self.destinations = d[_recent(d, day) | d["held_by"].notna()].reset_index(drop=True)
        today = conversations[conversations["day"] == day] if len(conversations) else conversations
        if not len(today):
            return
        measures, _ = unit_days(today, known=self.known(day), named=named, used=self.used(day))
        self.unit_days = pd.concat([self.unit_days, measures.reset_index()], ignore_index=True)
        new = _destinations(today)
        if new.empty:
            return
        old = self.destinations.copy()
        key = ["unit", "remote", "port"]
        seen = new.merge(old[key].drop_duplicates(), on=key, how="left", indicator=True)["_merge"] == "both"
        # Known ones get a later last day; the others are new, held back when an alerting identity-day named them.
        last = old.merge(new[[*key, "last_day"]], on=key, how="left", suffixes=("", "_new"))
        old["last_day"] = last["last_day_new"].fillna(last["last_day"]).to_numpy()
        fresh = new[~seen.to_numpy()]
        rows = []
        for r in fresh.to_dict("records"):
            who = held.get(r["unit"], [])
            rows += [{**r, "held_by": w, "held_day": day} for w in who] or [r]
        self.destinations = pd.concat([old, pd.DataFrame(rows, columns=DESTINATION_COLUMNS)], ignore_index=True)

    def forget(self, day: pd.Timestamp) -> None:
        """Drop what ``day`` taught (before learning it again)."""
        if len(self.unit_days):
            self.unit_days = self.unit_days[pd.to_datetime(self.unit_days["day"], utc=True) != day]
        if len(self.destinations):
            self.destinations = self.destinations[pd.to_datetime(self.destinations["first_day"], utc=True) != day]

    def release(self, still_held: set) -> None:
        """Learn the destinations whose holding identity-day is no longer held (accepted)."""
        d = self.destinations.copy()
        if d.empty:
            return
        keys = zip(d["held_by"], pd.to_datetime(d["held_day"], utc=True).dt.date, strict=True)
        gone = d["held_by"].notna().to_numpy() & [k not in still_held for k in keys]
        d.loc[gone, ["held_by", "held_day"]] = None
        self.destinations = d

    def summary(self) -> str:
        d = self.destinations
        external = d[["remote", "port"]].drop_duplicates() if len(d) else d
        return (
            f"network baseline: {len(external):,} external destinations (address or AWS service, and port) of "
            f"{d['unit'].nunique() if len(d) else 0:,} units over {len(self.days())} days"
        )

    def as_dict(self) -> dict:
        """Plain tables for the model bundle."""
        return {"destinations": self.destinations.copy(), "unit_days": self.unit_days.copy()}

    @classmethod
    def from_dict(cls, saved: dict) -> NetworkBaseline:
        return cls(saved["destinations"].copy(), saved["unit_days"].copy())


def _recent(d: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    """Destinations used within :data:`FORGET_AFTER` before ``day``."""
    return pd.to_datetime(d["last_day"], utc=True) >= day - FORGET_AFTER


def _destinations(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per unit, external destination and port: first and last day used (accepted egress)."""
    from flows.evidence import _units

    eg = _units(conversations)
    used = eg[eg["external"] & (eg["action"] != "REJECT")]
    if used.empty:
        return pd.DataFrame(columns=DESTINATION_COLUMNS)
    keyed = used.assign(remote=used["destination"])  # the address, or aws:SERVICE
    out = keyed.groupby(["unit", "remote", "port"], as_index=False)["day"].agg(first_day="min", last_day="max")
    out["port"] = out["port"].astype(int)
    out["held_by"] = None
    out["held_day"] = None
    return pd.DataFrame(out[DESTINATION_COLUMNS])
