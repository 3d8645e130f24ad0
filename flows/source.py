"""The network evidence source for ``kaad score --flow-logs``: read, lease, join once, then
answer for each scored day (:data:`models.evidence.EvidenceSource`)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd

from flows.audit_facts import read_facts
from flows.baseline import NetworkBaseline
from flows.evidence import HISTORY_DAYS, SOURCE, day_evidence
from flows.join import SKEW, Attribution, join_flows, quality_text
from flows.leases import Leases, build_leases
from flows.parse import FlowStats
from flows.read import spill_flows
from models.evidence import DayEvidence, utc_day

#: The day state's attribute that carries the network baseline forward (saved and signed with it).
STATE_ATTRIBUTE = "network_baseline"


class NetworkEvidence:
    """Evidence from flow logs, with pod leases read from the audit inputs being scored.

    Normal is the network baseline of the model (``kaad train --flow-logs``), carried forward
    by the day state (:meth:`bind`, :meth:`learn`). Without one, the flow logs' days before the
    scored one (up to :data:`flows.evidence.HISTORY_DAYS`) are its normal days; their leases
    come from the audit inputs of those days, so give the scorer (and this source) the earlier
    days' audit logs too.
    """

    def __init__(self, flow_inputs: list[str], audit_inputs: list[str], *, flow_format: str | None = None, aws=None):
        self.flow_inputs = flow_inputs
        self.audit_inputs = audit_inputs
        self.flow_format = flow_format
        self.aws = aws
        self.stats: FlowStats | None = None
        self.leases: Leases | None = None
        self.attribution: Attribution | None = None
        self.baseline: NetworkBaseline | None = None
        self._read: tuple[pd.Timestamp, pd.Timestamp] | None = None  # the time read, when windowed

    def prepare(self, day: date | None = None) -> Attribution:
        """Read the flow logs and audit facts and join them (once).

        With ``day``, CloudWatch log groups are read for the time that day needs only: the day
        (give or take the aggregation interval) and, without a baseline, the history days before
        it (``startTime``/``endTime``, so a group of months is not read whole each morning). A later
        day outside what was read is read afresh. Files and S3 are read whole, once.
        """
        window = self._window(day)
        if self.attribution is not None and (window is None or self._read is None or _covers(self._read, window)):
            return self.attribution
        if self.leases is None:
            facts, warnings = read_facts(self.audit_inputs, self.aws)
            self.leases = build_leases(facts)
            self.leases.warnings += warnings
        aws = self.aws
        if window is not None:
            from sources.aws import AwsOptions

            aws = replace(self.aws or AwsOptions(), since=window[0].to_pydatetime(), until=window[1].to_pydatetime())
        with tempfile.TemporaryDirectory(prefix="kaad-flows-") as tmp:
            spill = Path(tmp) / "flows.parquet"
            self.stats = spill_flows(self.flow_inputs, spill, flow_format=self.flow_format, aws=aws)
            self.attribution = join_flows(spill, self.leases)
        self._read = window
        return self.attribution

    def _window(self, day: date | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The time ``day`` needs from remote flow logs (None: read everything)."""
        if day is None or not any(str(i).startswith("cloudwatch://") for i in self.flow_inputs):
            return None
        back = pd.Timedelta(0) if self.baseline is not None else pd.Timedelta(days=HISTORY_DAYS)
        # A record's event time is about its end; its start may lie an interval earlier.
        return utc_day(day) - back - pd.Timedelta(SKEW), utc_day(day) + pd.Timedelta(days=1) + pd.Timedelta(SKEW)

    def bind(self, bundle, state=None) -> None:
        """Judge against the network baseline ``state`` carries (:data:`STATE_ATTRIBUTE`), else the
        one ``bundle`` was trained with; without either, the flow logs' own earlier days."""
        saved = getattr(state, STATE_ATTRIBUTE, None)
        if saved is None:
            saved = getattr(bundle, "network_baseline", None)  # bundles before #19's baseline have none
        self.baseline = None if saved is None else NetworkBaseline.from_dict(saved)
        if self.baseline is not None and state is not None:
            self.baseline.release(set(state.held))

    def learn(self, state, result) -> None:
        """After ``result``'s day was scored: carry the baseline forward on ``state`` (saved with it).

        The day's destinations become known, except the new ones of units whose evidence named an
        identity-day the state holds back (it alerted): those wait until it is accepted.
        """
        if result.day is not None:
            self.learn_day(state, result.day, result.evidence.get(SOURCE))

    def learn_day(self, state, day: date, found: DayEvidence | None) -> None:
        """:meth:`learn` for ``day``, whose network evidence was ``found``."""
        if self.baseline is None or state is None:
            return
        named = {} if found is None else found.details.get("units", {})
        held = {unit: sorted(w for w in who if (w, day) in state.held) for unit, who in named.items()}
        conversations = self.prepare(day).conversations
        named = None if self.leases is None else self.leases.named
        self.baseline.add_day(utc_day(day), conversations, {u: w for u, w in held.items() if w}, named)
        setattr(state, STATE_ATTRIBUTE, self.baseline.as_dict())

    def __call__(self, events: Path | None, day: date) -> DayEvidence:
        attribution = self.prepare(day)
        stats = self.stats
        assert stats is not None  # prepare() read them
        found = day_evidence(attribution.conversations, self.leases, day, HISTORY_DAYS, baseline=self.baseline)
        found.details.update(
            {
                "quality": attribution.quality,
                "quality_text": quality_text(attribution.quality, stats.version),
                "read": stats.summary(),
                "rejects": [str(r) for r in stats.rejects[:20]],
                "n_rejected": stats.n_rejected,
                "leases": self.leases,
            }
        )
        return found


def learn_baseline(
    flow_inputs: list[str],
    audit_inputs: list[str],
    *,
    until: date | None = None,
    flow_format: str | None = None,
    aws=None,
) -> tuple[NetworkBaseline, NetworkEvidence]:
    """The network baseline of the flow logs' days up to ``until`` (the training end), with
    leases from the training audit inputs; also the source, whose stats say what was read."""
    source = NetworkEvidence(flow_inputs, audit_inputs, flow_format=flow_format, aws=aws)
    conv = source.prepare().conversations
    if until is not None and len(conv):
        conv = conv[conv["day"] <= utc_day(until)]
    return NetworkBaseline.learn(conv, None if source.leases is None else source.leases.named), source


def _covers(read: tuple[pd.Timestamp, pd.Timestamp], wanted: tuple[pd.Timestamp, pd.Timestamp]) -> bool:
    return read[0] <= wanted[0] and wanted[1] <= read[1]
