"""Learn a rule history in training: the training events tee'd to Parquet, the rules run on them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import cast

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from events.parse import connect
from events.schema import EVENT_SCHEMA
from rules.history import RuleHistory
from rules.loading import RuleSet, load_rules
from rules.run import run_rules

#: What the metric-filter export calls writing: a request that changed a pod or secret.
WRITE_VERBS = ("create", "update", "patch")
WRITTEN = ("pods", "secrets")


def learn_history(rules: RuleSet, events: Path | None) -> RuleHistory:
    """Run ``rules`` over the training events (Parquet, event schema) and count by identity-day."""
    if events is None:
        return RuleHistory(0, {}, {r.name: {} for r in rules.runnable})
    con = connect()
    try:
        con.register("raw", ds.dataset(str(events), format="parquet", schema=EVENT_SCHEMA))
        day = "date_trunc('day', timestamp)"
        days = con.execute(
            f"SELECT identity, count(DISTINCT {day}) AS days FROM raw WHERE identity IS NOT NULL GROUP BY identity"
        ).df()
        n_days = con.execute(f"SELECT count(DISTINCT {day}) FROM raw").fetchone()
        written = con.execute(
            f"SELECT target_resource, identity, count(DISTINCT {day}) AS days FROM raw "
            "WHERE verb IN ? AND target_resource IN ? AND target_subresource IS NULL "
            "AND coalesce(response_code, 0) < 400 AND identity IS NOT NULL GROUP BY ALL",
            [list(WRITE_VERBS), list(WRITTEN)],
        ).df()
    finally:
        con.close()
    run = run_rules(rules, events)
    fired: dict[str, dict[str, int]] = {name: {} for name in run.ran}
    fired_days: dict[str, list[list[str]]] = {}
    if len(run.hits):
        hits = run.hits.dropna(subset=["identity"])
        stamps = pd.to_datetime(hits["timestamp"], utc=True).dt.normalize()
        counts = hits.assign(day=stamps).groupby(["rule", "identity"])["day"].nunique()
        for key, n in counts.items():
            rule, identity = cast(tuple[str, str], key)  # the two group keys
            fired[str(rule)][str(identity)] = int(n)
        for key, names in hits.assign(day=stamps).groupby(["identity", "day"])["rule"]:
            who = str(cast(tuple[str, pd.Timestamp], key)[0])
            fired_days.setdefault(who, []).append(sorted({str(n) for n in names}))
    writers: dict[str, dict[str, int]] = {r: {} for r in WRITTEN}
    for resource, identity, n in written.itertuples(index=False):
        writers[str(resource)][str(identity)] = int(n)
    active = {str(i): int(d) for i, d in zip(days["identity"], days["days"], strict=True)}
    return RuleHistory(int(n_days[0]) if n_days else 0, active, fired, writers, fired_days)


class RuleSpill:
    """Keep a copy of the training events while training reads them, then learn the rules' history.

    Examples
    --------
    >>> spill = RuleSpill(["kaad"])
    >>> list(spill.tee([]))
    []
    >>> spill.learn().n_days
    0
    """

    def __init__(self, directories: Iterable[str | Path]) -> None:
        self.rules = load_rules(resolve_rule_dirs(directories))
        self._dir = tempfile.TemporaryDirectory(prefix="kaad-rules-")
        self._path = Path(self._dir.name) / "history.parquet"
        self._writer: pq.ParquetWriter | None = None

    def tee(self, batches: Iterable) -> Iterator:
        for batch in batches:
            table = batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self._path), EVENT_SCHEMA)
            self._writer.write_table(table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
            yield batch

    def learn(self) -> RuleHistory:
        """The history of every rule over what was read; the copy is removed."""
        try:
            if self._writer is not None:
                self._writer.close()
            return learn_history(self.rules, self._path if self._writer is not None else None)
        finally:
            self._dir.cleanup()


def resolve_rule_dirs(directories: Iterable[str | Path]) -> list[Path]:
    """``kaad`` names kaad's own rules (loaded anyway), anything else a directory or file."""
    return [Path(d) for d in directories if str(d) != "kaad"]
