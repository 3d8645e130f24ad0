"""Unwrap the envelopes audit events travel in, one document at a time.

The fast path in :mod:`events.parse` reads bare events. Everything else comes here:
CloudWatch Logs subscription / Firehose payloads (several may be concatenated in one line),
AKS diagnostic records (``properties.log`` as a JSON string or an object), ``EventList``
objects and JSON arrays, pretty-printed whole-file documents, invalid lines and truncated
events. The output is bare event JSON text for the same SQL normaliser, plus rejects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

import orjson

from events.salvage import salvage_event
from sources.rejects import Reject

_EXPORT_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\S+) (?=\{)")
_AKS_AUDIT_CATEGORIES = {"kube-audit", "kube-audit-admin"}
_MAX_DEPTH = 6  # envelopes nest at most three deep in practice (Firehose > logEvents > event)
_decoder = json.JSONDecoder()


@dataclass(slots=True)
class Unwrapped:
    """Bare event texts found in some documents, with where each came from."""

    texts: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    fallback_ts: list[str | None] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # read, but the user should know how
    control_messages: int = 0

    def add(self, text: str, source: str, line: int, truncated: bool, fallback_ts: str | None):
        self.texts.append(text)
        self.sources.append(source)
        self.lines.append(line)
        self.truncated.append(truncated)
        self.fallback_ts.append(fallback_ts)


def iter_documents(text: str) -> list[tuple[Any, int]]:
    """Decode one or more concatenated JSON documents; return (document, offset) pairs.

    Raises ``ValueError`` when any part is not JSON.
    """
    docs: list[tuple[Any, int]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return docs
        doc, new_pos = _decoder.raw_decode(text, pos)
        docs.append((doc, pos))
        pos = new_pos


def _epoch_ms_to_iso(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat()
    return None


def unwrap_text(
    text: str,
    source: str,
    line: int,
    out: Unwrapped,
    *,
    fallback_ts: str | None = None,
    where: str = "",
    depth: int = 0,
) -> None:
    """Find the events in one line (or message string) and add them to ``out``."""
    body = text.strip()
    if not body:
        return  # blank line: nothing to read, nothing lost
    if m := _EXPORT_LINE.match(body):
        fallback_ts = fallback_ts or m.group(1)
        body = body[m.end() :]
    try:
        docs = [(orjson.loads(body), 0)]
    except orjson.JSONDecodeError as exc:
        try:
            docs = iter_documents(body)
        except ValueError:
            _salvage_or_reject(body, source, line, out, fallback_ts, where, str(exc))
            return
    for doc, _ in docs:
        unwrap_document(doc, source, line, out, fallback_ts=fallback_ts, where=where, depth=depth)


def _salvage_or_reject(
    body: str, source: str, line: int, out: Unwrapped, fallback_ts: str | None, where: str, error: str
) -> None:
    event = salvage_event(body)
    at = f" at {where}" if where else ""
    if event is not None:
        out.add(orjson.dumps(event).decode(), source, line, True, fallback_ts)
    elif body.startswith("{") and "unexpected end" in error.lower():
        out.rejects.append(
            Reject(
                source,
                line,
                "truncated JSON",
                f"line cut off after {len(body)} characters{at}, no auditID left to salvage",
            )
        )
    else:
        out.rejects.append(Reject(source, line, "not JSON", f"{error}{at}"))


class _Nested(TypedDict):
    """The arguments every nested unwrap call passes on unchanged."""

    source: str
    line: int
    out: Unwrapped
    depth: int


def unwrap_document(
    doc: Any, source: str, line: int, out: Unwrapped, *, fallback_ts: str | None = None, where: str = "", depth: int = 0
) -> None:
    """Add the events inside one decoded JSON document to ``out``."""
    if depth > _MAX_DEPTH:
        out.rejects.append(
            Reject(source, line, "unsupported format", f"envelopes nested deeper than {_MAX_DEPTH}{where}")
        )
        return
    nested: _Nested = {"source": source, "line": line, "out": out, "depth": depth + 1}
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            unwrap_document(item, fallback_ts=fallback_ts, where=f"{where}[{i}]", **nested)
    elif not isinstance(doc, dict):
        out.rejects.append(Reject(source, line, "not an audit event", f"JSON {type(doc).__name__} {doc!r:.40}{where}"))
    elif "logEvents" in doc or "messageType" in doc:
        if doc.get("messageType") == "CONTROL_MESSAGE":
            out.control_messages += 1  # CloudWatch's own connectivity probe, not data
            return
        for i, log_event in enumerate(doc.get("logEvents") or []):
            message = log_event.get("message") if isinstance(log_event, dict) else None
            ts = _epoch_ms_to_iso(log_event.get("timestamp")) if isinstance(log_event, dict) else None
            sub = f"{where}.logEvents[{i}]"
            if isinstance(message, str):
                unwrap_text(message, fallback_ts=ts or fallback_ts, where=sub, **nested)
            else:
                unwrap_document(message, fallback_ts=ts or fallback_ts, where=sub, **nested)
    elif "records" in doc and isinstance(doc["records"], list):
        for i, record in enumerate(doc["records"]):
            unwrap_document(record, fallback_ts=fallback_ts, where=f"{where}.records[{i}]", **nested)
    elif isinstance(doc.get("properties"), dict) and "category" in doc:
        category = doc.get("category")
        log = doc["properties"].get("log")
        sub = f"{where}.properties.log"
        if category not in _AKS_AUDIT_CATEGORIES:
            out.rejects.append(
                Reject(source, line, "not an audit event", f"AKS diagnostic record of category {category!r}{where}")
            )
        elif isinstance(log, str):
            unwrap_text(log, fallback_ts=fallback_ts or doc.get("time"), where=sub, **nested)
        else:
            unwrap_document(log, fallback_ts=fallback_ts or doc.get("time"), where=sub, **nested)
    elif "protoPayload" in doc:
        out.rejects.append(
            Reject(source, line, "unsupported format", f"GKE Cloud Logging record (protoPayload){where}")
        )
    elif doc.get("kind") == "EventList" or isinstance(doc.get("items"), list):
        for i, item in enumerate(doc.get("items") or []):
            unwrap_document(item, fallback_ts=fallback_ts, where=f"{where}.items[{i}]", **nested)
    else:
        out.add(orjson.dumps(doc).decode(), source, line, False, fallback_ts)
