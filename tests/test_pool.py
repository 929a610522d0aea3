"""The worker pool: items taken as workers free up, and a bug anywhere stops the run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

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


def test_the_pace_is_taken_with_a_slot_held_so_waiting_for_slots_makes_no_burst(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that waited for a slot behind slow answers must not then start together:
    each takes its turn of the rate once it holds its slot, just before it starts."""
    gate = Gate(2, 10.0)
    held_when_paced: list[int] = []
    real_wait = gate._rate.wait

    def wait() -> None:
        held_when_paced.append(2 - gate._slots._value)  # type: ignore[attr-defined]
        real_wait()

    monkeypatch.setattr(gate._rate, "wait", wait)
    release = threading.Event()
    sent: list[int] = []

    def send(number: int) -> Any:
        if number < 2:
            release.wait(5)  # two slow answers hold both slots
        sent.append(number)
        return None

    threads = [threading.Thread(target=gate.request, args=(lambda n=n: send(n),))
               for n in range(4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(sent) == [0, 1, 2, 3]
    assert len(held_when_paced) == 4 and all(held >= 1 for held in held_when_paced)
