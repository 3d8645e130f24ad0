"""Run producers on background threads so that their work overlaps the consumer's."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


@contextmanager
def lanes(tasks: list, produce, workers: int, *, depth: int = 2, all_at_once: bool = False):
    """Produce ``produce(task)`` (an iterator) for each task ahead on threads; give one
    iterator per task, in task order, each yielding that task's items in order.

    Reading the lanes one after the other gives a deterministic order however the threads
    run. At most ``workers`` items are produced at once. Tasks start in order as workers free
    up, unless ``all_at_once``: then every task has a thread from the start (a caller that
    needs every lane's next item before it can go on, as a merge does, would otherwise wait
    for a task that no worker has started). Each lane holds at most ``depth`` items ahead.
    An exception in a producer is raised by its lane at the same position; leaving the
    context stops the producers at their next item.
    """
    slots: list[queue.Queue] = [queue.Queue(maxsize=depth) for _ in tasks]
    todo: queue.Queue = queue.Queue()
    for i in range(len(tasks)):
        todo.put(i)
    gate = threading.Semaphore(max(1, workers))
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            items = None
            while not stop.is_set():
                try:
                    with gate:
                        items = iter(produce(tasks[i])) if items is None else items  # starting may read too
                        item = next(items)
                except StopIteration:
                    slots[i].put((_DONE, None))
                    break
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer, not swallowed
                    slots[i].put((_DONE, exc))
                    break
                slots[i].put((item, None))

    def lane(i: int) -> Iterator:
        while True:
            item, error = slots[i].get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item

    n_threads = len(tasks) if all_at_once else max(1, min(workers, len(tasks)))
    threads = [threading.Thread(target=work, daemon=True, name="kaad-read") for _ in range(n_threads)]
    for t in threads:
        t.start()
    try:
        yield [lane(i) for i in range(len(tasks))]
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock producers waiting on a full lane
            for slot in slots:
                try:
                    slot.get_nowait()
                except queue.Empty:
                    pass
            time.sleep(0.01)
        for t in threads:
            t.join(timeout=5)
