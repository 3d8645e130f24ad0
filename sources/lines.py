"""Read a byte stream (plain or gzip) as batches of lines with their line numbers.

Lines are handed on as one Arrow string array that shares the chunk's buffer: no Python
object per line, which is what keeps ingest above the ``orjson.loads``-per-line floor.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa

#: Bytes read per batch. 64 MiB (~50k events) amortises DuckDB's per-query cost: 200k events
#: parse in 0.54 s in 64 MiB batches against 0.84 s in 16 MiB ones. Memory stays a few
#: hundred MB whatever the file size.
CHUNK_BYTES = 64 << 20
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class LineBatch:
    """Complete lines from one source: ``texts[i]`` is line ``first_line + i`` (1-based).

    A batch that merges several sources names each line's in ``sources`` and ``line_numbers``.
    """

    source: str
    first_line: int
    texts: pa.LargeStringArray
    n_bytes: int
    #: Optional per line: a timestamp to use when the event's own are lost (CloudWatch's
    #: ingestion time), and explicit locations (event ordinals for remote sources).
    fallback_ts: pa.Array | None = None
    line_numbers: np.ndarray | None = None
    #: Optional per line: the source it came from, where a batch merges several (CloudWatch streams).
    sources: pa.Array | None = None


@dataclass(frozen=True, slots=True)
class StreamProblem:
    """A fault in the byte stream itself (not in a line), reported as a reject."""

    source: str
    line: int
    kind: str
    detail: str


class GzipStream(io.RawIOBase):
    """Decompress gzip (several members too) and hand out every byte before a break.

    ``gzip.GzipFile.read`` drops what it decompressed in a call that hits a truncated end;
    reading through ``zlib`` directly keeps it, then raises ``EOFError`` on the next read.
    """

    def __init__(self, raw: BinaryIO, block: int = 1 << 20) -> None:
        self._raw = raw
        self._block = block
        self._inflate = zlib.decompressobj(wbits=31)
        self._buffer = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        while len(self._buffer) < want and not self._eof:
            data = self._raw.read(self._block)
            if not data:
                self._eof = True
                if not self._inflate.eof and (self._inflate.unconsumed_tail or self._started):
                    self._pending_error = EOFError("compressed file ended before the end-of-stream marker was reached")
                return
            self._started = True
            while data:
                self._buffer += self._inflate.decompress(data)
                if self._inflate.eof:
                    data = self._inflate.unused_data.lstrip(b"\x00")  # next member, or padding
                    self._inflate = zlib.decompressobj(wbits=31)
                    self._started = bool(data)
                else:
                    data = b""

    _started = False
    _pending_error: EOFError | None = None

    def read(self, size: int = -1) -> bytes:
        self._fill(size if size >= 0 else 1 << 62)
        if not self._buffer and self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        n = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


def open_stream(raw: BinaryIO) -> BinaryIO:
    """Wrap ``raw`` in a gzip reader when it starts with the gzip magic bytes."""
    # Any binary stream with readinto() will do (botocore's body, a socket file); typeshed
    # wants a RawIOBase.
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return GzipStream(buffered)  # type: ignore[return-value]
    return buffered


def _line_offsets(data: bytes) -> np.ndarray:
    # bytes.find in a loop beats numpy's byte compare here: it touches only the newlines.
    positions = []
    find = data.find
    i = find(b"\n")
    while i != -1:
        positions.append(i + 1)
        i = find(b"\n", i + 1)
    offsets = np.empty(len(positions) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = positions
    if offsets[-1] != len(data):
        offsets = np.append(offsets, len(data))
    return offsets


def _as_lines(data: bytes) -> pa.LargeStringArray:
    offsets = _line_offsets(data)
    arr = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        arr.validate(full=True)  # UTF-8 check; DuckDB must never see invalid text
    except pa.ArrowInvalid:
        fixed = [data[a:b].decode("utf-8", errors="replace") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        arr = pa.array(fixed, type=pa.large_string())
    return arr


def iter_line_batches(
    stream: BinaryIO, source: str, chunk_bytes: int = CHUNK_BYTES, *, head: bytes = b""
) -> Iterator[LineBatch | StreamProblem]:
    """Yield batches of complete lines, and a :class:`StreamProblem` if the stream breaks.

    A truncated gzip member keeps every line decompressed before the break; the partial last
    line is still passed on (it will be rejected or salvaged as a truncated event).
    """
    line_no = 1
    tail = b""
    first = True
    while True:
        try:
            chunk, head = (head, b"") if head else (stream.read(chunk_bytes), b"")
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            if tail:
                texts = _as_lines(tail)
                yield LineBatch(source, line_no, texts, len(tail))
                line_no += len(texts)
            kind = "truncated gzip" if isinstance(exc, EOFError) else "unreadable gzip"
            yield StreamProblem(source, line_no, kind, str(exc) or type(exc).__name__)
            return
        if first:
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
            first = False
        if not chunk:
            break
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            tail = data  # one line longer than a chunk: keep reading
            continue
        body, tail = data[:cut], data[cut:]
        texts = _as_lines(body)
        yield LineBatch(source, line_no, texts, len(body))
        line_no += len(texts)
    if tail:
        yield LineBatch(source, line_no, _as_lines(tail), len(tail))


def _is_blank(text: str) -> bool:
    return not text.strip()


def drop_leading_records(batch: LineBatch, n_records: int) -> tuple[LineBatch | None, int]:
    """Drop the first ``n_records`` non-blank lines; return the rest and how many remain to drop.

    Used to resume a file on the line path after the bulk reader stopped part-way: the bulk
    reader counts records, and it skips blank lines just as this does.
    """
    if n_records <= 0:
        return batch, 0
    texts = batch.texts
    seen = 0
    for i in range(len(texts)):
        if not _is_blank(texts[i].as_py()):
            seen += 1
            if seen == n_records:
                rest = texts[i + 1 :]
                if len(rest) == 0:
                    return None, 0
                return LineBatch(batch.source, batch.first_line + i + 1, rest, batch.n_bytes), 0
    return None, n_records - seen
