"""Sources read in parallel hand events on in one order, whatever the reading threads do.

Scoring learns first sights in the order events come (the first call from a new address is
the new one), so an order that depends on thread timing gives scores that differ from run to
run. These tests pin the two orders: objects (and files) in key order, CloudWatch streams
merged on event time.
"""

from __future__ import annotations

import threading
import time

import pytest

from sources.cloudwatch import in_time_order
from sources.prefetch import lanes


def _slow_then_fast(task: str):
    """Task "a" is slow to produce, "b" is quick: arrival order would put b first."""
    for i in range(3):
        if task == "a":
            time.sleep(0.02)
        yield f"{task}{i}"


@pytest.mark.parametrize("all_at_once", [False, True])
def test_lanes_hand_on_each_task_in_order_however_long_each_takes(all_at_once):
    with lanes(["a", "b"], _slow_then_fast, workers=2, all_at_once=all_at_once) as each:
        assert [item for lane in each for item in lane] == ["a0", "a1", "a2", "b0", "b1", "b2"]


def test_a_producer_error_is_raised_by_its_lane_at_its_position():
    def produce(task):
        yield f"{task}0"
        if task == "b":
            raise OSError("connection reset")
        yield f"{task}1"

    with lanes(["a", "b"], produce, workers=2) as each:
        assert list(each[0]) == ["a0", "a1"]
        got = []
        with pytest.raises(OSError, match="connection reset"):
            for item in each[1]:
                got.append(item)
        assert got == ["b0"]


def test_leaving_early_stops_producers_that_wait_on_full_lanes():
    def endless(task):
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    with lanes(list(range(6)), endless, workers=2, all_at_once=True) as each:
        assert next(each[3]) == 0
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_at_most_workers_items_are_produced_at_once_even_with_a_thread_per_task():
    busy, most = [0], [0]
    lock = threading.Lock()

    def produce(task):
        for i in range(4):
            with lock:
                busy[0] += 1
                most[0] = max(most[0], busy[0])
            time.sleep(0.005)
            with lock:
                busy[0] -= 1
            yield (task, i)

    with lanes(list(range(8)), produce, workers=2, all_at_once=True) as each:
        assert [x for lane in each for x in lane] == [(t, i) for t in range(8) for i in range(4)]
    assert most[0] <= 2


def _pages(stamps: list[int], size: int, stream: str) -> list[list[dict]]:
    events = [{"timestamp": ms, "eventId": f"{stream}-{k}", "message": f"{stream}@{ms}"} for k, ms in enumerate(stamps)]
    return [events[i : i + size] for i in range(0, len(events), size)]


def test_streams_merge_on_event_time_with_ties_by_stream_then_position_whatever_the_pages():
    """Two API servers' streams, paged differently: the merge is one time line."""
    a = [1, 2, 2, 5, 9, 9, 10, 14]
    b = [2, 3, 4, 9, 11, 12]
    expected = sorted([(ms, 0, k + 1) for k, ms in enumerate(a)] + [(ms, 1, k + 1) for k, ms in enumerate(b)])
    for size_a, size_b in [(1, 1), (3, 2), (8, 6), (5, 1)]:
        runs = list(in_time_order([iter(_pages(a, size_a, "a")), iter(_pages(b, size_b, "b"))]))
        merged = [r[:3] for run in runs for r in run]
        assert merged == expected, (size_a, size_b)
        assert [r[3]["message"] for run in runs for r in run] == [f"{'ab'[s]}@{ms}" for ms, s, _ in expected]


def test_a_stream_that_ends_early_or_is_empty_does_not_hold_the_others():
    runs = list(in_time_order([iter([]), iter(_pages([5, 6], 1, "b")), iter(_pages([1], 1, "c"))]))
    assert [(r[0], r[1]) for run in runs for r in run] == [(1, 2), (5, 1), (6, 1)]
