"""Run a plan's calls against the API: concurrently, rate-limited, retried, and never guessing.

Profiles are independent, so each is one unit of work on a thread pool; the calls of one
profile run in order (PATCH before deletes). Every answer is sorted into one of three:
- done: 2xx. The `Observer` records `after_call(before, call)` before the next call starts.
- refused: the server answered and did nothing (a 400 the API documents as a refusal, a
  429 that outlasted its retries, a connection that never opened). Recorded as unchanged.
- in doubt: no answer (timeout, reset), a 5xx, a delete answered "channel does not
  exist" (a retry whose first attempt landed, or drift), or a PATCH that re-sent a token
  (updated in place or added twice: an UNKNOWN of the API). Nothing is sent again blindly: the
  profile is read back (GET), the server's truth is recorded, and the calls still needed are
  planned from it toward the same target. At most `MAX_READ_BACKS` rounds, never forever.
Only 429 (honoring Retry-After) and unsent requests are retried as such, with exponential
backoff and full jitter; a 401 stops every worker at once. The executor never prints: it
reports to the `Observer`, which journals, audits, updates the state and shows progress.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue
from typing import Final, Protocol, TypeVar

from reconciler.answers import CHANNEL_DOES_NOT_EXIST, Answer, ProfileApi
from reconciler.effects import after_call
from reconciler.errors import ApiAuthError, NoAnswerError, NotSentError, TransportError
from reconciler.model import EMPTY, ChannelData, Token
from reconciler.pacing import DEFAULT_RETRY, RateLimiter, RetryPolicy
from reconciler.plan import Call, DeleteChannels, DeleteTokens, PatchChannels
from reconciler.planner import diff

MAX_READ_BACKS: Final = 4
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Work:
    """One profile: the plan's calls for it, what the state records, where it should end."""

    distinct_id: str
    calls: tuple[Call, ...]
    recorded: ChannelData
    target: ChannelData | None  # None: it leaves management once its channels are deleted
    read_back_first: bool = False  # unconfirmed: an earlier call's outcome is unknown


@dataclass(frozen=True, slots=True)
class Report:
    """One request as the audit ledger records it."""

    distinct_id: str
    operation: str
    request: object
    status: int | None
    message: str
    attempts: int


class Observer(Protocol):
    """Receives every event; each method returns once the event is durably recorded."""

    def begin(self, distinct_id: str) -> None: ...

    def abandoned(self, distinct_id: str) -> None:
        """The call begun for `distinct_id` was never sent: the run is stopping."""

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        """A call succeeded; `after` None: the profile left management."""

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        """The server holds `truth`; if it is none of `explained`, something else changed it."""

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        """A call failed; `in_doubt`: it may have been carried out (profile unconfirmed)."""

    def progress(self, finished_calls: int) -> None: ...


@dataclass
class Outcome:
    """What a whole run came to."""

    failures: list[Report] = field(default_factory=list)
    interrupted: bool = False
    auth_error: ApiAuthError | None = None


class _Stop(Exception):
    """Raised inside a worker when the run must stop before its next request."""


class Executor:
    def __init__(self, api: ProfileApi, observer: Observer, *, parallelism: int = 10,
                 rate: float | None = None, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self._api = api
        self._observer = observer
        self._parallelism = max(1, parallelism)
        # `parallelism` bounds the requests in flight. Twice as many workers keep that many in
        # flight while others record what just finished (fsync, audit), instead of leaving a
        # slot idle during each worker's bookkeeping.
        self._slots = threading.BoundedSemaphore(self._parallelism)
        self._rate = RateLimiter(rate)
        self._retry = retry
        self._stop = threading.Event()
        self._outcome = Outcome()
        self._mutex = threading.Lock()
        # Profiles a read-back found missing on the server; each is touched by one worker only.
        self._absent: set[str] = set()
        self._crash: BaseException | None = None

    def run(self, works: Sequence[Work]) -> Outcome:
        """Converge every profile; Ctrl-C stops new calls and waits for those in flight."""
        self._pool(works, self._converge)
        return self._outcome

    def read(self, ids: Sequence[str]) -> tuple[dict[str, ChannelData | None], Outcome]:
        """Read profiles concurrently (None: the server has no such profile), with the same
        limits, retries and Ctrl-C handling as `run`. Profiles that could not be read are
        in the outcome's failures."""
        found: dict[str, ChannelData | None] = {}

        def read_one(distinct_id: str) -> None:
            try:
                truth, answer, _ = self._read(distinct_id)
            except _Stop:
                return
            except TransportError as error:
                with self._mutex:
                    self._outcome.failures.append(
                        Report(distinct_id, "read", None, None, str(error), 0))
                return
            found[distinct_id] = None if answer is not None and answer.no_such_profile \
                else truth
            self._count(1)

        self._pool(ids, read_one)
        return found, self._outcome

    def _pool(self, items: Sequence[T], handle: Callable[[T], None]) -> None:
        """Run `handle` over `items` on the workers; Ctrl-C stops them taking new items.

        A fixed set of workers takes items off one queue: waiting on one future per item
        would cost the main thread O(n) per finished item, O(n^2) in all.
        """
        queue: SimpleQueue[T] = SimpleQueue()
        for item in items:
            queue.put(item)
        workers = [threading.Thread(target=self._worker, args=(queue, handle),
                                    name=f"apply-{n}", daemon=True)
                   for n in range(min(2 * self._parallelism, len(items)))]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.2)  # a timed join lets Ctrl-C reach the main thread
        except KeyboardInterrupt:
            self._stop.set()
            self._outcome.interrupted = True
            for worker in workers:
                worker.join()
        if self._crash is not None:
            raise self._crash

    def _worker(self, queue: SimpleQueue[T], handle: Callable[[T], None]) -> None:
        while not self._stop.is_set():
            try:
                item = queue.get_nowait()
            except Empty:
                return
            try:
                handle(item)
            except BaseException as error:  # a bug: stop everything and show it in main
                self._crash = self._crash or error
                self._stop.set()
                return

    # --- one profile ----------------------------------------------------------------------

    def _converge(self, work: Work) -> None:
        current = work.recorded
        pending = list(work.calls)
        rounds = 0  # read-backs and re-plans: bounded, so that no profile loops forever
        self._absent.discard(work.distinct_id)
        try:
            if work.read_back_first:
                # The unknown call either landed or not: both ends are explained, not drift.
                current = self._resync(work, current, (current, work.target or EMPTY))
                pending = self._still_needed(work, current, len(pending))
                rounds = 1
            while True:
                if not pending:
                    if not rounds:
                        break  # no doubt arose: the plan's calls were the whole story
                    # After a read-back, confirm that nothing more is needed (e.g. a server
                    # that duplicated a re-sent token needs that token deleted, then re-added).
                    pending = self._still_needed(work, current, 0)
                    if not pending:
                        break
                call = pending.pop(0)
                result, answer, attempts = self._send(work.distinct_id, call, current)
                report = _report(work.distinct_id, call.operation, call.body(), answer, attempts)
                if result == "done":
                    leaves = isinstance(call, DeleteChannels) and call.forget
                    after = after_call(current, call)
                    self._observer.done(report, current, None if leaves else after)
                    self._count(1)
                    if leaves:
                        return
                    current = after
                    if _resends_a_token(call):
                        # Whether a re-sent token is updated in place or added again is an
                        # UNKNOWN of the API: look rather than assume.
                        rounds += 1
                        current = self._resync(work, current, None)
                        pending = self._still_needed(work, current, len(pending))
                    continue
                if result == "refused":
                    self._fail(report, current, in_doubt=False)
                    return
                rounds += 1
                if rounds > MAX_READ_BACKS:
                    self._fail(report, current, in_doubt=True,
                               why=f"still in doubt after {MAX_READ_BACKS} read-backs")
                    return
                current = self._resync(work, current, (current, after_call(current, call)))
                pending = self._still_needed(work, current, len(pending) + 1)
            if work.target is None:  # leaving management with nothing (left) to delete
                self._observer.done(Report(work.distinct_id, "forget", None, None,
                                           "no managed channel left", 0), current, None)
        except _Stop:
            return
        except TransportError as error:  # a read-back that got no answer at all
            self._fail(Report(work.distinct_id, "read_back", None, None, str(error), 0),
                       current, in_doubt=True)

    def _resync(self, work: Work, current: ChannelData,
                explained: tuple[ChannelData, ...] | None) -> ChannelData:
        """Read the profile back and record the server's truth.

        `explained`: what the server may hold because of our own doubtful call (it landed or
        not); anything else is drift. None: do not judge (an UNKNOWN of the API at play).
        """
        truth, answer, attempts = self._read(work.distinct_id)
        if answer is not None and answer.no_such_profile:
            self._absent.add(work.distinct_id)  # a PATCH would be refused: create instead
        else:
            self._absent.discard(work.distinct_id)
        self._observer.read_back(
            _report(work.distinct_id, "read_back", None, answer, attempts), current, truth,
            explained)
        return truth

    def _still_needed(self, work: Work, current: ChannelData, planned: int) -> list[Call]:
        """The calls that lead from `current` to the work's target; progress counts the
        `planned` calls they replace as finished."""
        desired = {} if work.target is None else {work.distinct_id: work.target}
        remaining = list(diff(desired, {work.distinct_id: current}))
        self._count(max(0, planned - len(remaining)))
        return remaining

    # --- requests ---------------------------------------------------------------------------

    def _send(self, distinct_id: str, call: Call,
              current: ChannelData) -> tuple[str, Answer | None, int]:
        """Send one call; returns ("done" | "refused" | "in doubt", the answer, attempts).

        A PATCH of a profile the server lacks turns into creating it with the same data.
        """
        self._observer.begin(distinct_id)
        try:
            return self._attempt(distinct_id, call, current)
        except _Stop:
            # The run is stopping: the last attempt was never sent, or was answered with a
            # refusal (429, unsent, 401), so nothing changed.
            self._observer.abandoned(distinct_id)
            raise

    def _attempt(self, distinct_id: str, call: Call,
                 current: ChannelData) -> tuple[str, Answer | None, int]:
        creating = isinstance(call, PatchChannels) and distinct_id in self._absent
        attempts = 0
        while True:
            attempts += 1
            try:
                answer = self._request(functools.partial(self._dispatch, call, creating))
            except NotSentError:
                if attempts < self._retry.attempts:
                    self._sleep(self._retry.delay(attempts))
                    continue
                return "refused", None, attempts
            except NoAnswerError:
                return "in doubt", None, attempts
            if answer.ok:
                return "done", answer, attempts
            if answer.status == 401:  # refused, and the run stops: nothing was done
                self._fail(_report(distinct_id, call.operation, call.body(), answer, attempts),
                           current, in_doubt=False)
                raise _Stop
            if answer.status == 429:
                if attempts < self._retry.attempts:
                    self._sleep(self._retry.delay(attempts, answer.retry_after))
                    continue
                return "refused", answer, attempts
            if answer.status >= 500:
                return "in doubt", answer, attempts
            if isinstance(call, PatchChannels) and not creating and answer.no_such_profile:
                creating = True  # refused, so nothing happened: create is the first write
                continue
            if creating and answer.status == 400:
                return "in doubt", answer, attempts  # it exists after all: look
            if isinstance(call, DeleteChannels | DeleteTokens) and (
                    answer.message == CHANNEL_DOES_NOT_EXIST or answer.no_such_profile):
                return "in doubt", answer, attempts
            return "refused", answer, attempts

    def _dispatch(self, call: Call, creating: bool) -> Answer:
        if creating:
            return self._api.create_profile(call.distinct_id, call.body()["channel"])
        if isinstance(call, PatchChannels):
            return self._api.patch_channel(call.distinct_id, call.body())
        return self._api.delete_channel(call.distinct_id, call.body())

    def _read(self, distinct_id: str) -> tuple[ChannelData, Answer | None, int]:
        """GET a profile, retrying freely: a read is safe to repeat. Absent: no channels."""
        limit = 2 * self._retry.attempts  # reads change nothing: more patience is free
        attempts = 0
        while True:
            attempts += 1
            try:
                answer = self._request(lambda: self._api.get_profile(distinct_id))
            except TransportError:
                if attempts >= limit:
                    raise
                self._sleep(self._retry.delay(attempts))
                continue
            if answer.status == 401:
                raise _Stop
            if answer.ok and isinstance(answer.body, dict):
                channel = answer.body.get("channel")
                return ChannelData.from_json(channel if isinstance(channel, dict) else {}), \
                    answer, attempts
            if answer.no_such_profile:
                return EMPTY, answer, attempts
            if attempts >= limit:
                raise NoAnswerError(f"GET profile {distinct_id}: answered {answer.status} "
                                    f"{answer.message}".strip())
            self._sleep(self._retry.delay(attempts, answer.retry_after))

    def _request(self, send: Callable[[], Answer]) -> Answer:
        if self._stop.is_set():
            raise _Stop
        self._rate.wait()
        with self._slots:
            if self._stop.is_set():
                raise _Stop
            try:
                return send()
            except ApiAuthError as error:
                self._stop.set()
                with self._mutex:
                    self._outcome.auth_error = self._outcome.auth_error or error
                return Answer(401, "Invalid API details", None)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stop

    def _fail(self, report: Report, current: ChannelData, *, in_doubt: bool,
              why: str = "") -> None:
        if why:
            report = Report(report.distinct_id, report.operation, report.request,
                            report.status, f"{report.message} ({why})".strip(), report.attempts)
        self._observer.refused(report, current, in_doubt)
        with self._mutex:
            self._outcome.failures.append(report)

    def _count(self, calls: int) -> None:
        if calls:
            self._observer.progress(calls)


def _resends_a_token(call: Call) -> bool:
    return isinstance(call, PatchChannels) and any(
        isinstance(change.before, Token) for change in call.changes)


def _report(distinct_id: str, operation: str, request: object, answer: Answer | None,
            attempts: int) -> Report:
    if answer is None:
        return Report(distinct_id, operation, request, None, "no answer", attempts)
    return Report(distinct_id, operation, request, answer.status, answer.message, attempts)
