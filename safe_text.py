"""Make attacker-controlled text inert before it reaches a terminal, a CSV cell or HTML.

User agents, usernames, object names and URIs are chosen by whoever calls the API server,
including an attacker. Each output format has its own way to turn text into action: ANSI
escape sequences and rich markup in a terminal, formulas in a spreadsheet, tags in HTML.
"""

from __future__ import annotations

import html
import re

from rich.text import Text

# C0 and C1 control characters and DEL; tab and newline included, so one value stays one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(value: object, max_len: int | None = None) -> str:
    """Return ``value`` as one line of plain text with control characters shown as ``\\xNN``."""
    text = _CONTROL.sub(_visible, "" if value is None else str(value))
    if max_len is not None and len(text) > max_len:
        text = text[: max_len - 1] + "\u2026"
    return text


def terminal_text(value: object, max_len: int | None = None, style: str = "") -> Text:
    """Return a rich ``Text`` that renders ``value`` literally: no markup, no escape codes."""
    return Text(printable(value, max_len), style=style)


def csv_cell(value: object) -> str:
    """Return ``value`` safe for a CSV cell: a leading formula character is quoted with '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def html_text(value: object) -> str:
    """Return ``value`` escaped for HTML text and attribute values."""
    return html.escape(printable(value), quote=True)
