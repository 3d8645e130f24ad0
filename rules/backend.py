"""pySigma's DuckDB backend, adapted to kaad's event table.

Two changes to the published backend (pysigma-backend-duckdb): string matches are Sigma's
(case-insensitive, and a literal ``%`` or ``_`` in a value stays literal: the published backend
lets ``%2fbin%2fsh`` act as wildcards), and a condition on a list column (source IPs, groups,
hostPath paths, capabilities, binding subjects) holds when it holds for any element.
"""

from __future__ import annotations

from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.conversion.state import ConversionState
from sigma.types import SigmaString
from sigma_backend_duckdb import DuckDBBackend

from rules.fields import LIST_COLUMNS, audit_pipeline

#: Every string match is ILIKE with this escape character, so values match as Sigma means.
_ESCAPE = "\\"
_ELEMENT = "element"


class AuditBackend(DuckDBBackend):
    """DuckDB SQL over the rules' view of the event table (``FROM logs``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(processing_pipeline=audit_pipeline(), collect_errors=True, **kwargs)

    def convert_condition_field_eq_val_str(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState):
        value = cond.value
        assert isinstance(value, SigmaString)  # the base class dispatches strings here
        pattern = value.convert(
            escape_char=_ESCAPE, wildcard_multi="%", wildcard_single="_", add_escaped=_ESCAPE, filter_chars=""
        )
        pattern = pattern.replace("'", "''")
        return f"{self.escape_and_quote_field(cond.field)} ILIKE '{pattern}' ESCAPE '{_ESCAPE}'"

    def convert_condition_field_eq_val(self, cond: ConditionFieldEqualsValueExpression, state: ConversionState):
        column = cond.field
        if column not in LIST_COLUMNS:
            return super().convert_condition_field_eq_val(cond, state)
        cond.field = _ELEMENT  # the condition on one element, then any element of the list
        try:
            inner = super().convert_condition_field_eq_val(cond, state)
        finally:
            cond.field = column
        return f"coalesce(list_bool_or(list_transform({column}, lambda {_ELEMENT}: {inner})), false)"
