"""Write every reject to a CSV file as it happens, so none is lost however many there are."""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import TextIO

from safe_text import csv_cell, printable
from sources.rejects import Reject


class RejectWriter:
    """Context manager yielding a callback that appends a reject to ``path`` (or does nothing)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: TextIO | None = None

    def __enter__(self):
        if self.path is None:
            return lambda reject: None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = handle = open(self.path, "w", newline="", encoding="utf-8")
        writer = csv.writer(handle)
        writer.writerow(["source", "line", "kind", "detail"])

        def write(reject: Reject) -> None:
            writer.writerow(
                [csv_cell(printable(reject.source)), reject.line, reject.kind, csv_cell(printable(reject.detail))]
            )

        return write

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.close()
