"""What scoring a day returns: identity-day findings, their windows, and the day's tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from models.evidence import DayEvidence
from models.explain import Reason
from pipelines.allowlist import Entry
from pipelines.ingest import IngestStats


@dataclass
class WindowFinding:
    """One window of a finding, with its own reasons and the API calls behind it."""

    rank: int  # among all the day's windows
    identity: str
    kind: str
    window_start: pd.Timestamp
    anomaly_score: float  # the window's evidence, -log of its calibrated p-value
    percentile: float
    is_unusual: bool  # its p-value is below the identity-day floor: it adds to its identity-day
    is_anomaly: bool  # unusual, and its identity-day is above the threshold
    requests: int
    reasons: list[Reason]
    calls: pd.DataFrame
    suppressed_by: Entry | None = None
    is_alert: bool = False  # an unusual window of an alerting identity-day
    allowlist_note: str = ""  # an entry matched but could not hide this window, and why


@dataclass
class Finding:
    """One identity-day: its score, the terms behind it, and its windows nested below."""

    rank: int
    identity: str
    kind: str
    day: pd.Timestamp
    anomaly_score: float  # evidence summed over its unusual windows (models.identity_day)
    percentile: float  # among the held-out normal identity-days
    is_anomaly: bool  # anomaly_score above the threshold
    is_alert: bool  # is_anomaly, or at or above --fail-on
    n_windows: int
    n_unusual: int
    requests: int
    reasons: list[Reason]
    windows: list[WindowFinding]
    suppressed_by: Entry | None = None
    allowlist_note: str = ""
    #: Against its identity's open finding (models/open_findings.py): "new", "worse" or
    #: "repeat" ("" when it does not alert); a repeat is reported, not paged.
    status: str = ""
    first_seen: date | None = None  # the open finding's first alerting day (this day when new)
    days_open: int = 0  # the finding's alerting days, this one included
    finding_note: str = ""

    @property
    def pages(self) -> bool:
        """Alerting, unsuppressed, and not a repeat of an open finding: what --fail-on and SNS act on."""
        return self.is_alert and self.suppressed_by is None and self.status != "repeat"

    @property
    def window_start(self) -> pd.Timestamp:
        """The start of its most telling window."""
        return self.windows[0].window_start if self.windows else self.day

    @property
    def calls(self) -> pd.DataFrame:
        """The API calls of its most telling window."""
        return self.windows[0].calls if self.windows else pd.DataFrame()


@dataclass
class ScoreResult:
    """Everything the daily report shows."""

    day: date | None
    # features + anomaly_score (window evidence), percentile (100 * (1 - p)), is_unusual,
    # is_anomaly and is_alert (unusual, of an anomalous / alerting identity-day), suppressed,
    # suppressed_by, suppressed_reason, allowlist_note; highest first
    windows: pd.DataFrame
    findings: list[Finding]  # every alerting identity-day and the top ones, explained, by rank
    # identity-days: identity, day, anomaly_score, percentile, is_alert, n_windows, n_unusual,
    # suppressed, reasons; highest first
    identities: pd.DataFrame
    stats: IngestStats
    threshold: float  # on identity-day scores
    activity: dict[str, pd.DataFrame] = field(default_factory=dict)  # identity -> requests per window
    expired_allowlist: list[Entry] = field(default_factory=list)
    #: Events read but not scored because they are not of ``day`` (one day is scored per run).
    n_other_days: int = 0
    #: Where ``threshold`` sits among the held-out identity-days' scores (0-100).
    threshold_percentile: float = float("nan")
    #: Evidence from outside the windows (rule hits, network flows), by source.
    evidence: dict[str, DayEvidence] = field(default_factory=dict)

    @property
    def n_suppressed(self) -> int:
        return int(self.windows["suppressed"].sum())

    @property
    def n_alerts(self) -> int:
        """Identity-days that alert and are not suppressed: what --notify publishes."""
        if self.identities.empty:
            return 0
        return int((self.identities["is_alert"] & ~self.identities["suppressed"]).sum())

    @property
    def n_repeats(self) -> int:
        """Alerting identity-days that repeat an open finding: reported, not paged."""
        if self.identities.empty:
            return 0
        return int((self.identities["finding"] == "repeat").sum())

    @property
    def n_new_findings(self) -> int:
        """Alerting identity-days that are new findings or make an open one worse: what pages."""
        return self.n_alerts - self.n_repeats

    def n_at_or_above(self, percentile: float) -> int:
        """Unsuppressed identity-days at or above ``percentile`` that are not repeats of an open
        finding (the CLI's --fail-on)."""
        if self.identities.empty:
            return 0
        live = self.identities[~self.identities["suppressed"] & (self.identities["finding"] != "repeat")]
        return int((live["percentile"] >= percentile).sum())
