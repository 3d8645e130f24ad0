"""Run converted rules over an event table in Parquet (the scorer's spill file) with DuckDB."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds

from events.parse import connect
from events.schema import EVENT_SCHEMA
from rules.fields import LIST_COLUMNS
from rules.loading import Rule, RuleSet

#: What a hit shows of its event: enough to find it again and to judge it.
HIT_COLUMNS = (
    "audit_id",
    "timestamp",
    "identity",
    "verb",
    "target_resource",
    "target_subresource",
    "target_namespace",
    "target_name",
    "request_uri",
    "response_code",
    "source_ip",
    "user_agent",
    "source_file",
    "source_line",
)
_STORED_LISTS = sorted(LIST_COLUMNS - {"subject_names"})
# Binding subjects are kept as 'Kind:namespace/name'; Sigma's requestObject.subjects.name is the name.
_SUBJECT_NAME = r"^[^:]*:([^/]*/)?"


@dataclass
class RuleRun:
    """The hits of every rule that ran (one row per rule and event), and the rules that failed."""

    hits: pd.DataFrame
    failed: dict[str, str] = field(default_factory=dict)  # rule name -> DuckDB's reason
    ran: list[str] = field(default_factory=list)

    def of(self, name: str) -> pd.DataFrame:
        return self.hits[self.hits["rule"] == name]


def empty_hits() -> pd.DataFrame:
    return pd.DataFrame({"rule": pd.Series(dtype="string")} | {c: pd.Series(dtype=object) for c in HIT_COLUMNS})


def _view_sql(day: date | None) -> str:
    lists = ", ".join(f"CASE WHEN len({c}) > 0 THEN {c} END AS {c}" for c in _STORED_LISTS)
    where = ""
    if day is not None:
        start = datetime.combine(day, time(), tzinfo=UTC)
        end = start + timedelta(days=1)
        where = f" WHERE timestamp >= TIMESTAMPTZ '{start.isoformat()}' AND timestamp < TIMESTAMPTZ '{end.isoformat()}'"
    return (
        f"CREATE OR REPLACE TEMP VIEW logs AS SELECT * REPLACE ({lists}), "
        "CASE WHEN len(subjects) > 0 THEN "
        f"list_transform(subjects, lambda s: regexp_replace(s, '{_SUBJECT_NAME}', '')) END AS subject_names "
        f"FROM raw{where}"
    )


def run_rules(rules: RuleSet | list[Rule], events: Path | None, day: date | None = None) -> RuleRun:
    """Every converted rule's hits among ``events`` (Parquet in the event schema), of ``day`` only if given.

    A rule whose query DuckDB refuses (a value of the wrong type, say) is reported in
    ``failed`` with DuckDB's reason; the others still run.
    """
    runnable = rules.runnable if isinstance(rules, RuleSet) else [r for r in rules if r.converted]
    if events is None or not runnable:
        return RuleRun(empty_hits(), ran=[r.name for r in runnable])
    con = connect()
    try:
        # A lazy dataset: DuckDB scans the file per query, the day is never held in memory whole.
        con.register("raw", ds.dataset(str(events), format="parquet", schema=EVENT_SCHEMA))
        con.execute(_view_sql(day))
        parts, failed, ran = [], {}, []
        columns = ", ".join(HIT_COLUMNS)
        for rule in runnable:
            try:
                found = con.execute(f"SELECT ? AS rule, {columns} FROM ({rule.query}) AS hit", [rule.name]).df()
            except duckdb.Error as exc:
                failed[rule.name] = str(exc).splitlines()[0]
                continue
            ran.append(rule.name)
            if len(found):
                parts.append(found)
    finally:
        con.close()
    hits = pd.concat(parts, ignore_index=True) if parts else empty_hits()
    return RuleRun(hits.sort_values(["rule", "timestamp"], kind="stable", ignore_index=True), failed, ran)
