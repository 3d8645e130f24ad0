"""Local inputs: files, directories, globs and stdin, each read as lines or as documents."""

from __future__ import annotations

import glob
import gzip
import json
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import json5
import orjson

from errors import InputNotFoundError, KaadError
from events.salvage import salvage_event
from sources.lines import BOM, CHUNK_BYTES, GzipStream, LineBatch, StreamProblem, iter_line_batches, open_stream
from sources.rejects import Reject
from sources.wrappers import Unwrapped, iter_documents, unwrap_document

#: In a directory, only files that look like logs are read (a simulator output folder also
#: holds labels.csv). Files named explicitly are always read.
LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".log", ".gz", ".txt", ".parquet")
REMOTE = ("s3://", "cloudwatch://", "eks://")
#: A file whose first line is not JSON but which starts like a document ('{' or '[') is
#: tried as whole-file JSON (pretty-printed samples). Above this size it is read as lines.
MAX_DOCUMENT_BYTES = 256 << 20


@dataclass(frozen=True, slots=True)
class BulkFile:
    """A plain JSON-lines file (maybe gzip) that DuckDB can read by itself, in parallel."""

    source: str
    gzip: bool
    n_bytes: int


#: Files smaller than this go through the line path: per-query overhead outweighs the gain.
BULK_MIN_BYTES = 8 << 20
_WRAPPER_KEYS = ("records", "logEvents", "items", "protoPayload", "messageType", "properties")


def _bulk_candidate(path: str) -> BulkFile | None:
    """Return a :class:`BulkFile` when the file starts like clean JSON lines of bare events."""
    try:
        size = os.path.getsize(path)
        if size < BULK_MIN_BYTES:
            return None
        with open(path, "rb") as raw:
            stream = open_stream(raw)
            head = stream.read(1 << 16)
            is_gzip = isinstance(stream, GzipStream)
    except (OSError, EOFError, zlib.error):
        return None
    first = head.split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return None  # BOM, blank first line, export-line prefix: the line path handles those
    try:
        doc = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or any(k in doc for k in _WRAPPER_KEYS):
        return None
    return BulkFile(path, is_gzip, size)


@dataclass(frozen=True, slots=True)
class ParquetFile:
    """An event table kaad wrote (``--out``): read back by DuckDB, no parsing needed."""

    source: str
    n_bytes: int


@dataclass(frozen=True, slots=True)
class DocumentBatch:
    """Events found by decoding a whole file as JSON documents."""

    source: str
    unwrapped: Unwrapped
    n_bytes: int


def expand_inputs(inputs: list[str]) -> list[str]:
    """Resolve paths, directories (recursively) and globs into an ordered list of files.

    ``-`` stands for standard input. Raises :class:`InputNotFoundError` for an input that
    matches nothing.
    """
    files: list[str] = []
    for item in inputs:
        if item == "-":
            files.append(item)
        elif item.startswith(REMOTE):
            files.append(item)
        elif os.path.isdir(item):
            found = sorted(
                str(p)
                for p in Path(item).rglob("*")
                if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(LOG_SUFFIXES)
            )
            if not found:
                raise InputNotFoundError(
                    f"{item!r}: directory holds no log files (looked for {', '.join(LOG_SUFFIXES)})"
                )
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                raise InputNotFoundError(f"{item!r}: pattern matches no files")
            files.extend(found)
        else:
            raise InputNotFoundError(f"{item!r}: no such file or directory")
    return files


def _looks_like_document(head: bytes) -> bool:
    for raw in head.split(b"\n"):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith((b"{", b"[")):
            return False
        try:
            orjson.loads(line)
            return False  # a complete JSON line: read as lines
        except orjson.JSONDecodeError:
            return True
    return False


def _documents(data: bytes, source: str) -> DocumentBatch | None:
    """Decode a whole file as JSON documents; None when it reads better as lines."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out = Unwrapped()
    try:
        docs = iter_documents(text)
    except json.JSONDecodeError as exc:
        return _not_strict_json(text, source, exc, len(data))
    except ValueError:
        return None
    for doc, offset in docs:
        line = text.count("\n", 0, offset) + 1
        unwrap_document(doc, source, line, out)
    return DocumentBatch(source, out, len(data))


def _not_strict_json(text: str, source: str, error: json.JSONDecodeError, n_bytes: int) -> DocumentBatch | None:
    """A document that is not strict JSON: JSON5 as pasted from docs (comments, trailing
    commas) is read with a warning; anything else is ONE reject at its first error, not one
    per line. Returns None when the file is JSON lines after all (some line parses alone)."""
    out = Unwrapped()
    try:
        doc = json5.loads(text)
    except ValueError as exc5:
        if any(_is_event_line(line) for line in text.splitlines()[:1000]):
            return None  # JSON lines with broken or cut lines: the line path handles each
        out.rejects.append(
            Reject(
                source,
                error.lineno,
                "not JSON",
                f"{error.msg} at line {error.lineno} column {error.colno} "
                f"(not JSON5 either: {str(exc5).splitlines()[0]})",
            )
        )
        return DocumentBatch(source, out, n_bytes)
    out.warnings.append(
        f"{source}:{error.lineno}: not strict JSON ({error.msg} at line "
        f"{error.lineno} column {error.colno}); read as JSON5, as pasted from "
        "documentation (comments, trailing commas)"
    )
    start = len(text) - len(text.lstrip())
    unwrap_document(doc, source, text.count("\n", 0, start) + 1, out)
    return DocumentBatch(source, out, n_bytes)


def _is_event_line(line: str) -> bool:
    """A line that is a JSON object, or an event cut off that salvage can read."""
    line = line.strip()
    if not line.startswith("{"):
        return False
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return salvage_event(line) is not None


def read_stream(
    raw: BinaryIO, source: str, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[LineBatch | StreamProblem | DocumentBatch]:
    """Read one byte stream, detecting gzip, a BOM and whole-file JSON documents."""
    stream = open_stream(raw)
    try:
        head = stream.read(chunk_bytes)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        kind = "truncated gzip" if isinstance(exc, EOFError) else "unreadable gzip"
        yield StreamProblem(source, 1, kind, str(exc) or type(exc).__name__)
        return
    if head.startswith(BOM):
        head = head[len(BOM) :]
    if _looks_like_document(head):
        rest = b""
        try:
            rest = stream.read(MAX_DOCUMENT_BYTES)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError):
            pass  # the line reader below reports the broken stream
        whole = head + rest
        if len(rest) < MAX_DOCUMENT_BYTES and (batch := _documents(whole, source)) is not None:
            yield batch
            return
        head, stream = whole, stream
    yield from iter_line_batches(stream, source, chunk_bytes, head=head)


def read_file(name: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineBatch | StreamProblem | DocumentBatch]:
    """Read one local file on the line path; an unreadable file becomes a StreamProblem."""
    try:
        handle = open(name, "rb")  # noqa: SIM115 - closed below, after the generator drains
    except OSError as exc:
        yield StreamProblem(name, 0, "unreadable file", exc.strerror or str(exc))
        return
    with handle:
        yield from read_stream(handle, name, chunk_bytes)


def read_inputs(
    files: list[str], chunk_bytes: int = CHUNK_BYTES, *, bulk: bool = True, aws=None, checkpoints: dict | None = None
) -> Iterator[LineBatch | StreamProblem | DocumentBatch | BulkFile | ParquetFile]:
    """Read each input in turn; an unreadable file is reported, the others are still read.

    With ``bulk``, large clean-looking JSON-lines files come out as :class:`BulkFile` for
    DuckDB to read directly; kaad's own Parquet as :class:`ParquetFile`; S3 objects and
    CloudWatch streams are read with ``aws`` options (a :class:`sources.aws.AwsOptions`), and
    the CloudWatch checkpoints used are left in ``checkpoints`` for the caller to save.
    """
    for name in files:
        if name.startswith(REMOTE):
            yield from _read_remote(name, aws, checkpoints)
        elif name.endswith(".parquet"):
            yield ParquetFile(name, os.path.getsize(name))
        elif name == "-":
            yield from read_stream(sys.stdin.buffer, "<stdin>", chunk_bytes)
        elif bulk and (candidate := _bulk_candidate(name)) is not None:
            yield candidate
        else:
            yield from read_file(name, chunk_bytes)


def _read_remote(name: str, aws, checkpoints: dict | None):
    from sources.aws import AwsOptions

    aws = aws or AwsOptions()
    if name.startswith("s3://"):
        from sources.s3 import read_s3

        yield from read_s3(name, aws)
        return
    from sources.cloudwatch import Checkpoint, read_cloudwatch

    if checkpoints is not None and aws.checkpoint and checkpoints:
        raise KaadError("one --checkpoint file serves one CloudWatch source; read them one at a time")
    checkpoint = Checkpoint.load(aws.checkpoint, name)
    if checkpoints is not None:
        checkpoints[name] = checkpoint
    yield from read_cloudwatch(name, aws, checkpoint)
