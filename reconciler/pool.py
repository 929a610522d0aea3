"""The workers of one run, and the gate every request of the run passes through.

`Gate` owns what all workers share: the bound on requests in flight, the rate limit, and the
stop signal (Ctrl-C, or a fatal answer such as 401 or a 404 that only a misconfiguration
explains, which must stop every worker at once). `run_pool` runs a handler over items on a
fixed set of worker threads. Neither knows what a profile or a call is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sized
from itertools import islice
from typing import NoReturn, TypeVar

from reconciler.answers import Answer
from reconciler.errors import ApiAuthError, ApiError, UnexpectedAnswerError
from reconciler.pacing import RateLimiter

T = TypeVar("T")


class Stopped(Exception):
    """Raised inside a worker when the run must stop before its next request."""


class Gate:
    """Requests in flight (`parallelism`), their rate, and the run's stop signal."""

    def __init__(self, parallelism: int, rate: float | None) -> None:
        self._slots = threading.BoundedSemaphore(max(1, parallelism))
        self._rate = RateLimiter(rate)
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self.fatal: ApiError | None = None  # the first error that stopped the run
        self.interrupted = False
        self.requests = 0  # every request sent, retries included

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request(self, send: Callable[[], Answer]) -> Answer:
        """Send one request when a slot and the rate allow; raise `Stopped` if the run stops.

        A 401 or an answer that is not Fyno's stops the whole run: it says the setup is
        wrong, so every further request would meet it too. The pace is taken once a slot is
        held, just before the request starts: taken before, requests that then waited for
        slots (behind a slow answer) would start together when the slots freed, faster than
        the rate. So the wait for the pace is bounded too: `parallelism` intervals at most.
        """
        if self._stop.is_set():
            raise Stopped
        with self._slots:
            if self._stop.is_set():
                raise Stopped
            self._rate.wait()
            if self._stop.is_set():
                raise Stopped
            with self._mutex:
                self.requests += 1
            try:
                return send()
            except (ApiAuthError, UnexpectedAnswerError) as error:
                self.fail(error)

    def fail(self, error: ApiError) -> NoReturn:
        """Stop the run because of `error` (the first one is kept); raises `Stopped`."""
        with self._mutex:
            self.fatal = self.fatal or error
        self._stop.set()
        raise Stopped

    def sleep(self, seconds: float) -> None:
        """Wait before a retry; raise `Stopped` at once if the run stops meanwhile."""
        if self._stop.wait(seconds):
            raise Stopped

    def interrupt(self) -> None:
        """Ctrl-C: start no new request; those in flight finish and are recorded."""
        self.interrupted = True
        self._stop.set()

    def halt(self) -> None:
        """Stop the run for a reason the caller reports itself (a bug)."""
        self._stop.set()


def run_pool(items: Iterable[T], handle: Callable[[T], None], gate: Gate,
             workers: int) -> None:
    """Run `handle` over `items` on `workers` threads; Ctrl-C stops them taking new items.

    A fixed set of workers takes items one at a time from one shared iterator: waiting on
    one future per item would cost the main thread O(n) per finished item, O(n^2) in all,
    and an item made lazily (apply's work for one profile) exists only while it is handled,
    not all 100,000 next to the plan. A worker's exception that is not `Stopped` (the
    iterator's included) is a bug: the run stops and it is raised here.
    """
    source = iter(items)
    taking = threading.Lock()  # an iterator, a generator above all, is not thread-safe
    crash: list[BaseException] = []

    def work() -> None:
        try:
            while not gate.stopping:
                with taking:
                    item = list(islice(source, 1))
                if not item:
                    return
                handle(item[0])
        except Stopped:
            return
        except BaseException as error:  # a bug: stop everything and show it in main
            crash.append(error)
            gate.halt()

    count = min(workers, len(items)) if isinstance(items, Sized) else workers
    threads = [threading.Thread(target=work, name=f"worker-{n}", daemon=True)
               for n in range(count)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # a timed join lets Ctrl-C reach the main thread
    except KeyboardInterrupt:
        gate.interrupt()
        for thread in threads:
            thread.join()
    if crash:
        raise crash[0]
