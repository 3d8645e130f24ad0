"""`make test -q` shows progress dots, not tables: a test speaks only when it fails.

pytest captures what tests print; only a test that turns capture off (``capsys.disabled()``)
can write between the dots. What such a test wants to show belongs in its assertion message.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
UNCAPTURED = re.compile(r"\b(capsys|capfd|capsysbinary|capfdbinary)\.disabled\(\)")


def _offenders(root: Path) -> list[str]:
    here = Path(__file__).resolve()  # this file names the pattern it looks for
    return [
        f"{p.relative_to(root)}:{n}"
        for p in sorted(root.rglob("*.py"))
        if p.resolve() != here
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if UNCAPTURED.search(line)
    ]


def test_no_test_turns_output_capture_off():
    assert _offenders(TESTS) == []


def test_the_check_finds_a_test_that_prints_past_capture(tmp_path):
    (tmp_path / "test_loud.py").write_text("def test_x(capsys):\n    with capsys.disabled():\n        print('table')\n")
    assert _offenders(tmp_path) == ["test_loud.py:2"]
