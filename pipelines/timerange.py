"""Parse the times users type: ISO dates and times, or durations ago like 24h, 7d, 30min."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from errors import KaadError

_AGO = re.compile(r"^(\d+)\s*(min|m|h|d|w)$")
_UNITS = {"min": "minutes", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """Return an aware UTC datetime for ``2026-03-01``, ``2026-03-01T12:00Z`` or ``7d`` (ago)."""
    text = value.strip()
    if m := _AGO.match(text):
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KaadError(
            f"{value!r} is not a time: use an ISO date/time (2026-03-01T12:00Z) or a duration ago (24h, 7d, 30min)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
