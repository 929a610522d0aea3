"""Run a plan's calls, or a list of reads, against the API: concurrently, rate-limited, bounded.

Profiles are independent, so each is one unit of work for the worker pool (`pool.py`); the
calls of one profile run in order, converged by `converge.Converger`. A 401, an answer that
only a misconfiguration explains, or an API that cannot be reached at all stops every worker
at once (`Outcome.fatal`). The executor never prints: it reports to the `Observer`, which
journals, audits, updates the state and shows progress.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.answers import ProfileApi
from reconciler.converge import (
    MAX_REQUESTS_PER_PROFILE,
    MAX_ROUNDS,
    Budget,
    Converger,
    Observer,
    ReadFailed,
    Report,
    Result,
    Work,
)
from reconciler.errors import ApiError
from reconciler.model import ChannelData
from reconciler.pacing import DEFAULT_RETRY, RetryPolicy
from reconciler.pool import Gate, run_pool
from reconciler.state import Doubt

__all__ = ["MAX_REQUESTS_PER_PROFILE", "MAX_ROUNDS", "Executor", "Observer", "Outcome",
           "Report", "Result", "Work"]


@dataclass
class Outcome:
    """What a whole run came to."""

    failures: list[Report] = field(default_factory=list)
    interrupted: bool = False
    fatal: ApiError | None = None  # what stopped every worker (401, a setup error)
    finished: int = 0  # planned calls done, or found unneeded by a read-back
    requests: int = 0  # HTTP requests sent, retries and read-backs included


class Executor:
    def __init__(self, api: ProfileApi, observer: Observer, *, parallelism: int = 10,
                 rate: float | None = None, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._api = api
        self._observer = _Counting(observer)
        # `parallelism` bounds the requests in flight. Twice as many workers keep that many in
        # flight while others record what just finished (fsync, audit), instead of leaving a
        # slot idle during each worker's bookkeeping.
        self._workers = 2 * max(1, parallelism)
        self._gate = Gate(parallelism, rate)
        self._retry = retry
        self._mutex = threading.Lock()
        self._failures: list[Report] = []

    def run(self, works: Iterable[Work]) -> Outcome:
        """Converge every profile; Ctrl-C stops new calls and waits for those in flight.
        `works` may be made lazily: each is taken when a worker is free for it."""
        converger = Converger(self._api, self._observer, self._gate, self._retry,
                              self._failed)
        run_pool(works, converger.converge, self._gate, self._workers)
        return self._outcome()

    def read(self, ids: Sequence[str]) -> tuple[dict[str, ChannelData | None], Outcome]:
        """Read profiles concurrently (None: the server has no such profile), with the same
        limits, retries and Ctrl-C handling as `run`. Profiles that could not be read are
        in the outcome's failures."""
        found: dict[str, ChannelData | None] = {}
        converger = Converger(self._api, self._observer, self._gate, self._retry,
                              self._failed)

        def read_one(distinct_id: str) -> None:
            try:
                truth, _, _ = converger.read(distinct_id, Budget())
            except ReadFailed as error:
                self._failed(Report(distinct_id, "read", None, error.status, str(error),
                                    error.attempts))
                return
            found[distinct_id] = truth
            self._observer.progress(1)

        run_pool(ids, read_one, self._gate, self._workers)
        return found, self._outcome()

    def _failed(self, report: Report) -> None:
        with self._mutex:
            self._failures.append(report)

    def _outcome(self) -> Outcome:
        return Outcome(list(self._failures), self._gate.interrupted, self._gate.fatal,
                       self._observer.finished, self._gate.requests)


class _Counting:
    """Passes every event on, counting finished calls for the run's summary."""

    def __init__(self, observer: Observer) -> None:
        self._observer = observer
        self._mutex = threading.Lock()
        self.finished = 0

    def begin(self, doubt: Doubt) -> None:
        self._observer.begin(doubt)

    def abandoned(self, distinct_id: str) -> None:
        self._observer.abandoned(distinct_id)

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        self._observer.done(report, before, after)

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        self._observer.read_back(report, before, truth, explained)

    def unsettled(self, report: Report, before: ChannelData) -> None:
        self._observer.unsettled(report, before)

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        self._observer.refused(report, before, in_doubt)

    def progress(self, finished_calls: int) -> None:
        with self._mutex:
            self.finished += finished_calls
        self._observer.progress(finished_calls)

