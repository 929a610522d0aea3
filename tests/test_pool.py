"""The worker pool: items taken as workers free up, and a bug anywhere stops the run."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from reconciler.pool import Gate, run_pool


def test_a_lazy_iterable_is_taken_one_item_per_free_worker() -> None:
    made: list[int] = []
    done: list[int] = []
    in_hand = [0]
    mutex = threading.Lock()

    def items() -> Iterator[int]:
        for number in range(300):
            made.append(number)
            yield number

    def handle(number: int) -> None:
        with mutex:
            in_hand[0] = max(in_hand[0], len(made) - len(done))
            done.append(number)

    run_pool(items(), handle, Gate(4, None), workers=4)
    assert sorted(done) == list(range(300))
    assert in_hand[0] <= 4  # never the whole plan's works at once


def test_an_error_from_the_iterable_stops_the_run_and_is_raised() -> None:
    def items() -> Iterator[int]:
        yield from range(3)
        raise ValueError("a bug while making the next item")

    with pytest.raises(ValueError, match="a bug while making"):
        run_pool(items(), lambda number: None, Gate(2, None), workers=2)
