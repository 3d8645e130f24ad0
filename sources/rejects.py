"""A rejected piece of input, located by file and line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reject:
    """Input that did not become an event: where it is and why.

    ``kind`` is the short category counted in summaries ("not JSON", "missing field", ...);
    ``detail`` says exactly what was wrong.
    """

    source: str
    line: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind}: {self.detail}"

    @classmethod
    def from_reason(cls, source: str, line: int, reason: str) -> Reject:
        """Build from a ``"kind: detail"`` reason string."""
        kind, _, detail = reason.partition(": ")
        return cls(source, line, kind, detail)
