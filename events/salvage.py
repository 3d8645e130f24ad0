"""Recover the core fields of an audit event whose JSON was cut off.

CloudWatch Logs caps an event at 256 KiB and some shippers cut long lines; the fields we need
most (auditID, verb, user, objectRef, sourceIPs) come first in the API server's field order,
while the request body and the timestamps come last. A cut event keeps what survived.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STRING = r'"((?:[^"\\]|\\.)*)"'
_TOP_FIELDS = (
    "auditID",
    "stage",
    "verb",
    "requestURI",
    "level",
    "userAgent",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "timestamp",
)
_OBJECT_REF_FIELDS = ("resource", "subresource", "namespace", "name", "apiGroup", "apiVersion")


def _unescape(raw: str) -> str:
    return json.loads(f'"{raw}"')


def _field(text: str, name: str) -> str | None:
    m = re.search(rf'"{name}"\s*:\s*{_STRING}', text)
    return _unescape(m.group(1)) if m else None


def _object(text: str, name: str) -> str | None:
    """Return the flat body of ``"name": {...}`` up to its first closing brace."""
    m = re.search(rf'"{name}"\s*:\s*\{{([^{{}}]*)', text)
    return m.group(1) if m else None


def salvage_event(text: str) -> dict[str, Any] | None:
    """Rebuild a minimal event dict from a truncated line; None when nothing usable is left."""
    if not text.lstrip().startswith("{") or '"auditID"' not in text:
        return None
    event: dict[str, Any] = {"kind": "Event"}
    for name in _TOP_FIELDS:
        value = _field(text, name)
        if value is not None:
            event[name] = value
    user = _object(text, "user")
    if user is not None and (username := _field(user, "username")) is not None:
        event["user"] = {"username": username}
    # The whole list: the last address is the peer, the others a client-set header.
    ips = re.search(r'"sourceIPs"\s*:\s*\[([^\]]*)\]', text)
    if ips and (found := re.findall(_STRING, ips.group(1))):
        event["sourceIPs"] = [_unescape(ip) for ip in found]
    ref = _object(text, "objectRef")
    if ref is not None:
        event["objectRef"] = {k: v for k in _OBJECT_REF_FIELDS if (v := _field(ref, k)) is not None}
    status = re.search(r'"responseStatus"\s*:\s*\{[^{}]*?"code"\s*:\s*(\d+)', text)
    if status:
        event["responseStatus"] = {"code": int(status.group(1))}
    return event
