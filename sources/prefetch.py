"""Run a producer on a background thread so that its work overlaps the consumer's."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order while a thread produces up to ``depth`` ahead.

    Worth it when producing releases the GIL (DuckDB, file reads, zlib). An exception in the
    producer is raised in the consumer at the same position. Closing the generator early
    stops the producer at its next item.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((item, None))
            slots.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, not swallowed
            slots.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="kaad-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def merge_parallel(tasks: list, produce, workers: int, depth: int = 8) -> Iterator[tuple]:
    """Run ``produce(task)`` (an iterator) for tasks on ``workers`` threads; yield (task, item).

    Items of one task keep their order; tasks interleave. The first exception of any worker is
    raised in the consumer; closing the generator stops the workers at their next item.
    """
    results: queue.Queue = queue.Queue(maxsize=depth)
    todo: queue.Queue = queue.Queue()
    for task in tasks:
        todo.put(task)
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            try:
                for item in produce(task):
                    if stop.is_set():
                        return
                    results.put((task, item, None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                results.put((task, None, exc))
                return

    threads = [
        threading.Thread(target=work, daemon=True, name="kaad-read") for _ in range(max(1, min(workers, len(tasks))))
    ]
    for t in threads:
        t.start()
    try:
        while True:
            try:
                task, item, error = results.get(timeout=0.2)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    return
                continue
            if error is not None:
                raise error
            yield task, item
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock producers waiting on a full queue
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass
        for t in threads:
            t.join(timeout=5)
