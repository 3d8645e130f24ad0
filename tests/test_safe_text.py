"""Attacker-controlled strings stay text in every output format."""

from __future__ import annotations

from rich.console import Console

from safe_text import csv_cell, html_text, printable, terminal_text


def test_control_characters_are_shown_not_obeyed():
    assert printable("a\x1b[2Jb\nc\x9b") == "a\\x1b[2Jb\\x0ac\\x9b"


def test_rich_markup_is_printed_literally():
    console = Console(record=True, width=200, color_system=None)
    console.print(terminal_text("[bold red]x[/bold red] [link=http://e]y[/link]"))
    assert console.export_text().strip() == "[bold red]x[/bold red] [link=http://e]y[/link]"


def test_formulas_are_defused_in_csv_cells():
    for hostile in ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]:
        assert csv_cell(hostile).startswith("'")
    assert csv_cell("kubectl/v1.29") == "kubectl/v1.29"


def test_html_has_no_live_tags():
    assert html_text("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert html_text('" onmouseover="x') == "&quot; onmouseover=&quot;x"
