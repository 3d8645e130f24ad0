"""The network evidence source for ``kaad score --flow-logs``: read, lease, join once, then
answer for each scored day (:data:`models.evidence.EvidenceSource`)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from flows.audit_facts import read_facts
from flows.evidence import HISTORY_DAYS, day_evidence
from flows.join import Attribution, join_flows, quality_text
from flows.leases import Leases, build_leases
from flows.parse import FlowStats
from flows.read import spill_flows
from models.evidence import DayEvidence


class NetworkEvidence:
    """Evidence from flow logs, with pod leases read from the audit inputs being scored.

    The flow logs' days before the scored one (up to :data:`flows.evidence.HISTORY_DAYS`) are
    its normal days; their leases come from the audit inputs of those days, so give the
    scorer (and this source) the earlier days' audit logs too.
    """

    def __init__(self, flow_inputs: list[str], audit_inputs: list[str], *, flow_format: str | None = None, aws=None):
        self.flow_inputs = flow_inputs
        self.audit_inputs = audit_inputs
        self.flow_format = flow_format
        self.aws = aws
        self.stats: FlowStats | None = None
        self.leases: Leases | None = None
        self.attribution: Attribution | None = None

    def prepare(self) -> Attribution:
        """Read the flow logs and audit facts and join them (once)."""
        if self.attribution is None:
            facts, warnings = read_facts(self.audit_inputs, self.aws)
            self.leases = build_leases(facts)
            self.leases.warnings += warnings
            with tempfile.TemporaryDirectory(prefix="kaad-flows-") as tmp:
                spill = Path(tmp) / "flows.parquet"
                self.stats = spill_flows(self.flow_inputs, spill, flow_format=self.flow_format, aws=self.aws)
                self.attribution = join_flows(spill, self.leases)
        return self.attribution

    def __call__(self, events: Path | None, day: date) -> DayEvidence:
        attribution = self.prepare()
        stats = self.stats
        assert stats is not None  # prepare() read them
        found = day_evidence(attribution.conversations, self.leases, day, HISTORY_DAYS)
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
