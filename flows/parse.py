"""Turn flow log lines (or Parquet rows) into the flow table, column by column.

Lines arrive as one Arrow string array per chunk (:mod:`sources.lines`): they are split and
typed with Arrow compute kernels, never one Python object per line, which is what keeps a
day of tens of millions of records readable in minutes. A line with the wrong number of
fields or a value of the wrong shape is rejected with its file and line; the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from flows.fields import EXTRA_TYPE, FIELDS, FLOW_SCHEMA
from sources.rejects import Reject

#: Rejects kept with their text; beyond this only counted (a wrong format rejects every line).
MAX_KEPT_REJECTS = 1000
_ADDRESS = r"^[0-9A-Fa-f:.]+$"
#: Block size of the parallel split: a 64 MiB chunk of lines in a few blocks per core.
SPLIT_BLOCK = 8 << 20
_STATUSES = ("OK", "NODATA", "SKIPDATA")
_ACTIONS = ("ACCEPT", "REJECT")


@dataclass
class FlowStats:
    """What reading flow logs found: records, flows, empty intervals, rejects, formats."""

    n_records: int = 0
    n_flows: int = 0
    n_nodata: int = 0
    n_skipdata: int = 0
    n_rejected: int = 0
    n_bytes: int = 0
    rejects: list[Reject] = field(default_factory=list)
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source -> field names

    def reject(self, item: Reject) -> None:
        self.n_rejected += 1
        if len(self.rejects) < MAX_KEPT_REJECTS:
            self.rejects.append(item)

    @property
    def version(self) -> int:
        """The newest format version among the sources read (2 when none was read)."""
        from flows.fields import format_version

        return max((format_version(names) for names in self.formats.values()), default=2)

    def summary(self) -> str:
        skipped = (
            f", {self.n_skipdata:,} SKIPDATA (flows lost: capacity exceeded during those intervals)"
            if self.n_skipdata
            else ""
        )
        return (
            f"{self.n_records:,} flow log records: {self.n_flows:,} flows, {self.n_nodata:,} NODATA"
            f"{skipped}, {self.n_rejected:,} rejected; format version {self.version}"
        )


def _nulled(column: pa.Array) -> pa.Array:
    """'-' means 'not applicable': a NULL."""
    return pc.if_else(pc.equal(column, "-"), pa.scalar(None, column.type), column)


def _typed(name: str, column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The column in its flow-table type and a mask of the rows whose value has the wrong shape."""
    column = _nulled(column)
    target = FIELDS[name][1] if name in FIELDS else EXTRA_TYPE
    if pa.types.is_integer(target) or pa.types.is_timestamp(target):
        ok = pc.ascii_is_decimal(column)  # false for "" and non-ASCII digits; far cheaper than a regex
    elif name in ("srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"):
        ok = pc.match_substring_regex(column, _ADDRESS)
    elif name == "log-status":
        ok = pc.is_in(column, pa.array(_STATUSES))
    elif name == "action":
        ok = pc.is_in(column, pa.array(_ACTIONS))
    else:
        return column.cast(target), np.zeros(len(column), dtype=bool)
    bad = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(column)).to_numpy(zero_copy_only=False)
    if bad.any():
        column = pc.if_else(pa.array(bad), pa.scalar(None, column.type), column)
    if pa.types.is_timestamp(target):
        return column.cast(pa.int64()).cast(target), bad
    if pa.types.is_integer(target):
        wide = column.cast(pa.int64())
        too_big = pc.fill_null(pc.greater(wide, np.iinfo(target.to_pandas_dtype()).max), False)
        too_big = too_big.to_numpy(zero_copy_only=False)
        if too_big.any():
            bad |= too_big
            wide = pc.if_else(pa.array(too_big), pa.scalar(None, pa.int64()), wide)
        return wide.cast(target), bad
    return column, bad


def to_flow_table(
    columns: dict[str, pa.Array], lines: np.ndarray, source: str, stats: FlowStats, texts: pa.Array | None = None
) -> pa.Table:
    """Type named columns, reject rows with a bad value, count and drop NODATA/SKIPDATA rows."""
    n = len(lines)
    typed: dict[str, pa.Array] = {}
    bad_any = np.zeros(n, dtype=bool)
    first_bad: dict[int, str] = {}
    for name, column in columns.items():
        out, bad = _typed(name, column)
        if bad.any():
            for i in np.flatnonzero(bad & ~bad_any)[: MAX_KEPT_REJECTS - len(stats.rejects) + 1]:
                first_bad[int(i)] = f"{name} {columns[name][int(i)].as_py()!r:.60} is not a valid {name}"
            bad_any |= bad
        if name in FIELDS:
            typed[FIELDS[name][0]] = out
    for i in np.flatnonzero(bad_any):
        detail = first_bad.get(int(i), "a field has the wrong shape")
        stats.reject(Reject(source, int(lines[i]), "bad flow record", detail))
    keep = ~bad_any
    status = typed.get("log_status")
    if status is not None:
        nodata = pc.fill_null(pc.equal(status, "NODATA"), False).to_numpy(zero_copy_only=False) & keep
        skipdata = pc.fill_null(pc.equal(status, "SKIPDATA"), False).to_numpy(zero_copy_only=False) & keep
        stats.n_nodata += int(nodata.sum())
        stats.n_skipdata += int(skipdata.sum())
        keep &= ~(nodata | skipdata)
    stats.n_flows += int(keep.sum())
    mask = pa.array(keep)
    arrays = []
    for f in FLOW_SCHEMA:
        if f.name in typed:
            arrays.append(typed[f.name].filter(mask))
        elif f.name == "source_file":
            arrays.append(pa.array([source], pa.string()).take(pa.array(np.zeros(int(keep.sum()), dtype=np.int32))))
        elif f.name == "source_line":
            arrays.append(pa.array(lines[keep], pa.int64()))
        else:
            arrays.append(pa.nulls(int(keep.sum()), f.type))
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


def parse_lines(texts: pa.Array, lines: np.ndarray, names: tuple[str, ...], source: str, stats: FlowStats) -> pa.Table:
    """Parse record lines (no header) in the format ``names``; empty lines are skipped.

    ``texts`` shares one buffer (as :mod:`sources.lines` hands lines on): Arrow's CSV reader
    splits it on spaces in one pass, and reports each line with the wrong number of fields.
    """
    texts = texts.cast(pa.large_string())
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + len(texts) + 1]
    raw = np.frombuffer(texts.buffers()[2], dtype=np.uint8) if len(texts) else np.zeros(0, np.uint8)
    ends = offsets[1:]
    lengths = np.diff(offsets) - (raw[ends - 1] == 10 if len(ends) else 0)
    blank = (lengths == 0) | ((lengths == 1) & (raw[np.maximum(offsets[:-1], 0)] == 13) if len(raw) else True)
    stats.n_records += int((~blank).sum())
    if blank.all():
        return to_flow_table({}, lines[:0], source, stats)
    body = texts.buffers()[2][int(offsets[0]) : int(offsets[-1])]
    wrong: list[tuple[int, int]] = []

    def _wrong(row) -> str:
        wrong.append((row.number, row.actual_columns))
        return "skip"

    def split(threads: bool) -> pa.Table:
        return csv.read_csv(
            pa.BufferReader(body),
            read_options=csv.ReadOptions(
                column_names=list(names), use_threads=threads, block_size=SPLIT_BLOCK if threads else 1 << 30
            ),
            parse_options=csv.ParseOptions(
                delimiter=" ", quote_char=False, ignore_empty_lines=True, invalid_row_handler=_wrong
            ),
            convert_options=csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )

    # Split on every core; a chunk with a line of the wrong width is split again on one thread,
    # where the reader knows each line's number (in parallel it may not).
    table = split(threads=True)
    if wrong:
        wrong.clear()
        table = split(threads=False)
    present = lines[~blank]  # the CSV reader numbers the lines it did not skip, from 1
    good = np.ones(len(present), dtype=bool)
    for number, width in wrong:
        good[number - 1] = False
        stats.reject(
            Reject(
                source,
                int(present[number - 1]),
                "bad flow record",
                f"{width} fields where the format has {len(names)} ({' '.join(names[:4])} ...)",
            )
        )
    columns = {name: table.column(name).combine_chunks() for name in names}
    return to_flow_table(columns, present[good], source, stats)


def parse_parquet_batch(batch: pa.RecordBatch, first_row: int, source: str, stats: FlowStats) -> pa.Table:
    """Rows of a ``.log.parquet`` file (underscore column names, typed by AWS) to the flow table."""
    columns = {}
    for name in batch.schema.names:
        key = name.replace("_", "-")
        columns[key] = batch.column(name).cast(pa.string())
    stats.n_records += batch.num_rows
    return to_flow_table(columns, np.arange(first_row, first_row + batch.num_rows), source, stats)
