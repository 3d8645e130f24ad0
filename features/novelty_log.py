"""NoveltyLog: the values each window introduced, as FirstSeenEncoder's ``transform`` flagged them."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of a :class:`NoveltyLog` frame: which window, which encoder set, which key.
LOG_COLUMNS = ("identity", "window_start", "column", "key")


class NoveltyLog:
    """What ``transform`` flagged new, window by window: the values each window introduced.

    A sink, not state: an encoder copied with :func:`copy.deepcopy` writes to the same log, so
    the daily job can learn afterwards only the values of the windows it chose
    (:meth:`FirstSeenEncoder.fold`), whichever copies scoring made. Values are kept as the
    encoder's 64-bit keys (an (identity, value) hash), never as text.
    """

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def __deepcopy__(self, memo) -> NoveltyLog:
        return self

    def record(self, identity: pd.Series, window: np.ndarray, column: int, keys: np.ndarray, rows: np.ndarray) -> None:
        if len(rows):
            self._parts.append(
                pd.DataFrame(
                    {
                        "identity": identity.to_numpy(dtype=object)[rows].astype(str),
                        "window_start": (
                            pd.DatetimeIndex(window[rows]).as_unit("ns").asi8
                            if window.dtype == object
                            else np.asarray(window[rows], dtype=np.int64)
                        ),
                        "column": np.full(len(rows), column, dtype=np.int64),
                        "key": keys[rows].astype(np.uint64),
                    }
                )
            )

    def extend(self, rows: pd.DataFrame) -> None:
        """Add rows of another log's :meth:`frame`."""
        if len(rows):
            self._parts.append(rows[list(LOG_COLUMNS)].reset_index(drop=True))

    def frame(self) -> pd.DataFrame:
        """Every (identity, window_start in ns, column, key) flagged new, once."""
        if not self._parts:
            return pd.DataFrame(
                {c: pd.Series(dtype=t) for c, t in zip(LOG_COLUMNS, (str, np.int64, np.int64, np.uint64), strict=True)}
            )
        return pd.concat(self._parts, ignore_index=True).drop_duplicates(ignore_index=True)
