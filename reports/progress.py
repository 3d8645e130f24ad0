"""Progress bars on stderr for long reads, silent when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn


@contextmanager
def byte_progress(total: int, description: str) -> Iterator[Callable[[int, str], None]]:
    """Yield an ``advance(n_bytes, source)`` callback drawing a bar of ``total`` bytes."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n, source: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total or None)
        yield lambda n, source: progress.advance(task, n)


@contextmanager
def count_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback drawing a bar of ``total`` steps."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def step(description: str) -> Iterator[None]:
    """Show ``description`` with a spinner on stderr while a step of unknown length runs."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(description):
        yield
