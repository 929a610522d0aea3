"""Converge one profile: send its calls in order, and settle every doubt by reading it back.

Every answer is sorted into a `Result`:
- DONE: 2xx in Fyno's shape. The `Observer` records `after_call(before, call)` before the
  next call starts.
- REFUSED: nothing was done: a 429 that outlasted its retries, or a 400 that a read-back
  shows changed nothing. Recorded as unchanged; the profile fails.
- IN_DOUBT: no answer (timeout, reset, a deadline passed), a 5xx, a 2xx whose body is not
  Fyno's shape, or a 400 (Fyno answers 400 both to a refused write and to a delete whose lost
  first attempt already landed; its message text is an example, not an enum). Nothing is
  sent again blindly: the profile is read back (GET), the server's truth is recorded, and
  the calls still needed are planned from it toward the same target.

Bounds, per profile and run (a property test checks them): at most `MAX_ROUNDS` read-backs
after doubt, and at most `MAX_REQUESTS_PER_PROFILE` requests of any kind, retries included;
a profile that reaches either fails, in doubt, and is read back by the next apply.
A profile that is only to be read (`Work.read_only`) receives GETs and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from reconciler.answers import Answer, ProfileApi, Verdict
from reconciler.effects import after_call
from reconciler.errors import NoAnswerError, NotSentError, TransportError, UnreachableError
from reconciler.model import EMPTY, ChannelData, Token
from reconciler.pacing import RetryPolicy
from reconciler.plan import Call, CreateProfile, DeleteChannels, PatchChannels, ReAddTokens
from reconciler.planner import diff
from reconciler.pool import Gate

MAX_ROUNDS: Final = 4
"""Read-backs one profile may need, in one run, to settle answers that left doubt."""
MAX_REQUESTS_PER_PROFILE: Final = 40
"""Requests of any kind (reads, writes, retries) one profile may receive in one run. A plan
has at most 4 calls per profile (PATCH, Option 2, Option 1, re-add): even 4 rounds of doubt
with their read-backs stay far below this; only a server that keeps failing reaches it."""


class Result(Enum):
    """What one call came to."""

    DONE = "done"
    REFUSED = "refused"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True, slots=True)
class Work:
    """One profile: the plan's calls for it, what the state records, where it should end."""

    distinct_id: str
    calls: tuple[Call, ...]
    recorded: ChannelData
    target: ChannelData | None  # None: it leaves management once its channels are deleted
    read_back_first: bool = False  # unconfirmed: an earlier call's outcome is unknown
    read_only: bool = False  # not named by the plan: read back and recorded, never written


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


class ReadFailed(Exception):
    """A profile could not be read: no usable answer within its retries."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class _OverBudget(Exception):
    """The profile has had all the requests one run allows it."""


@dataclass(frozen=True, slots=True)
class _Sent:
    result: Result
    answer: Answer | None
    attempts: int
    why: str = ""


class Budget:
    """Counts one profile's requests against `MAX_REQUESTS_PER_PROFILE`."""

    __slots__ = ("left",)

    def __init__(self, requests: int = MAX_REQUESTS_PER_PROFILE) -> None:
        self.left = requests

    def spend(self) -> None:
        if self.left <= 0:
            raise _OverBudget
        self.left -= 1


class Converger:
    """Converges profiles one at a time per worker; shared by all workers of a run."""

    def __init__(self, api: ProfileApi, observer: Observer, gate: Gate,
                 retry: RetryPolicy, failed: Callable[[Report], None]) -> None:
        self._api = api
        self._observer = observer
        self._gate = gate
        self._retry = retry
        self._failed = failed

    def converge(self, work: Work) -> None:
        budget = Budget()
        current = work.recorded
        absent = False  # the last read-back found no such profile: a PATCH must create it
        try:
            rounds = 0
            if work.read_only or work.read_back_first:
                # The unknown call either landed or not: both ends are explained, not drift.
                # For a profile outside the plan that end is unknown: nothing is judged.
                explained = None if work.read_only else (current, work.target or EMPTY)
                current, absent = self._resync(work.distinct_id, current, explained, budget)
                if work.read_only:
                    return
                pending = self._still_needed(work, current, len(work.calls))
                rounds = 1
            else:
                pending = list(work.calls)
            rechecks = 0
            while True:
                if not pending:
                    if not rounds:
                        break  # no doubt arose: the plan's calls were the whole story
                    # After a read-back, confirm from what is now known that nothing more is
                    # needed (a token the server held twice is deleted, then added once).
                    pending = self._still_needed(work, current, 0)
                    rechecks += 1
                    if not pending:
                        break
                    if rechecks > MAX_ROUNDS:
                        self._fail(Report(work.distinct_id, "converge", None, None,
                                          "the calls planned do not converge", 0),
                                   current, in_doubt=False)
                        return
                call = pending.pop(0)
                if absent and isinstance(call, PatchChannels):
                    call = CreateProfile.instead_of(call)
                sent = self._send(work.distinct_id, call, budget)
                report = _report(work.distinct_id, call, sent)
                if sent.result is Result.DONE:
                    leaves = isinstance(call, DeleteChannels) and call.forget
                    after = after_call(current, call)
                    self._observer.done(report, current, None if leaves else after)
                    self._observer.progress(1)
                    if leaves:
                        return
                    current, absent = after, False
                    if _resends_a_token(call):
                        # Only a plan saved by an older version re-sends a held token; what
                        # the server did with it is an UNKNOWN of the API: look, within bounds.
                        rounds += 1
                        if rounds > MAX_ROUNDS:
                            self._fail(report, current, in_doubt=True,
                                       why=f"still unsettled after {MAX_ROUNDS} read-backs")
                            return
                        current, absent = self._resync(work.distinct_id, current, None, budget)
                        pending = self._still_needed(work, current, len(pending))
                    continue
                if sent.result is Result.REFUSED:
                    self._fail(report, current, in_doubt=False)
                    return
                rounds += 1
                if rounds > MAX_ROUNDS:
                    self._fail(report, current, in_doubt=True,
                               why=f"still in doubt after {MAX_ROUNDS} read-backs")
                    return
                before = current
                current, absent = self._resync(
                    work.distinct_id, current, (current, after_call(current, call)), budget)
                refused = sent.answer is not None and sent.answer.verdict is Verdict.REFUSED
                if refused and not absent and current.channels == before.channels:
                    # Fyno said no, and the read-back shows that nothing happened.
                    self._fail(report, current, in_doubt=False)
                    return
                pending = self._still_needed(work, current, len(pending) + 1)
            if work.target is None:  # leaving management with nothing (left) to delete
                self._observer.done(Report(work.distinct_id, "forget", None, None,
                                           "no managed channel left", 0), current, None)
        except ReadFailed as error:
            self._fail(Report(work.distinct_id, "read_back", None, error.status, str(error),
                              error.attempts), current, in_doubt=True)
        except _OverBudget:
            self._fail(Report(work.distinct_id, "read_back", None, None,
                              f"gave up after {MAX_REQUESTS_PER_PROFILE} requests", 0),
                       current, in_doubt=True)

    def read(self, distinct_id: str, budget: Budget) -> tuple[ChannelData | None, Answer, int]:
        """GET a profile (None: the server has no such profile); `ReadFailed` if no usable
        answer came. A read changes nothing, so it is retried on any transient answer."""
        attempts = 0
        while True:
            attempts += 1
            budget.spend()
            try:
                answer = self._gate.request(lambda: self._api.get_profile(distinct_id))
            except NotSentError as error:
                self._unreachable_after(attempts, error)
                continue
            except NoAnswerError as error:
                if attempts >= self._retry.attempts:
                    raise ReadFailed(str(error), None, attempts) from None
                self._gate.sleep(_first(self._retry.delay(attempts), 0.0))
                continue
            if answer.verdict is Verdict.OK:
                return ChannelData.from_json(answer.body["channel"]), answer, attempts
            if answer.verdict is Verdict.REFUSED:
                return None, answer, attempts
            if answer.verdict is Verdict.MALFORMED:
                raise ReadFailed(f"GET {distinct_id}: answered {answer.status}, but "
                                 f"{answer.problem}; nothing recorded", answer.status, attempts)
            delay = self._retry.delay(attempts, answer.retry_after)
            # a read changes nothing: more patience with a busy server costs nothing
            if delay is None or attempts >= 2 * self._retry.attempts:
                raise ReadFailed(f"GET {distinct_id}: answered {answer.status} {answer.message}"
                                 f"{_waited(answer)} {attempts} time(s)".strip(),
                                 answer.status, attempts)
            self._gate.sleep(delay)

    # --- one profile --------------------------------------------------------------------------

    def _resync(self, distinct_id: str, current: ChannelData,
                explained: tuple[ChannelData, ...] | None,
                budget: Budget) -> tuple[ChannelData, bool]:
        """Read the profile back and record the server's truth; (truth, whether absent).

        `explained`: what the server may hold because of our own doubtful call (it landed or
        not); anything else is drift. None: do not judge.
        """
        truth, answer, attempts = self.read(distinct_id, budget)
        self._observer.read_back(
            Report(distinct_id, "read_back", None, answer.status, answer.message, attempts),
            current, truth or EMPTY, explained)
        return truth or EMPTY, truth is None

    def _still_needed(self, work: Work, current: ChannelData, planned: int) -> list[Call]:
        """The calls that lead from `current` to the work's target; progress counts the
        `planned` calls they replace as finished."""
        desired = {} if work.target is None else {work.distinct_id: work.target}
        remaining = list(diff(desired, {work.distinct_id: current}))
        finished = planned - len(remaining)
        if finished > 0:
            self._observer.progress(finished)
        return remaining

    # --- one call ---------------------------------------------------------------------------

    def _send(self, distinct_id: str, call: Call, budget: Budget) -> _Sent:
        """Send one call, retrying only what certainly did not reach the server."""
        self._observer.begin(distinct_id)
        request = call.request()
        attempts = 0
        try:
            while True:
                attempts += 1
                budget.spend()
                try:
                    answer = self._gate.request(lambda: self._api.send(request))
                except NotSentError as error:
                    self._unreachable_after(attempts, error)
                    continue
                except NoAnswerError as error:
                    return _Sent(Result.IN_DOUBT, None, attempts, str(error))
                if answer.verdict is Verdict.OK:
                    return _Sent(Result.DONE, answer, attempts)
                if answer.verdict is Verdict.THROTTLED:
                    delay = self._retry.delay(attempts, answer.retry_after)
                    if delay is None or attempts >= self._retry.attempts:
                        return _Sent(Result.REFUSED, answer, attempts,
                                     f"throttled{_waited(answer)} {attempts} time(s)")
                    self._gate.sleep(delay)
                    continue
                return _Sent(Result.IN_DOUBT, answer, attempts, answer.problem)
        except BaseException:
            # Stopped, or over budget, before this attempt was sent (or answered with a
            # refusal): the profile holds what it held.
            self._observer.abandoned(distinct_id)
            raise

    def _unreachable_after(self, attempts: int, error: TransportError) -> None:
        """A request that never left is sent again; when it never does, nothing can be
        done anywhere: the run stops, saying why."""
        if attempts >= self._retry.attempts:
            self._gate.fail(UnreachableError(f"{error} (after {attempts} attempts)"))
        self._gate.sleep(_first(self._retry.delay(attempts), 0.0))

    def _fail(self, report: Report, current: ChannelData, *, in_doubt: bool,
              why: str = "") -> None:
        if why:
            report = Report(report.distinct_id, report.operation, report.request,
                            report.status, f"{report.message} ({why})".strip(), report.attempts)
        self._observer.refused(report, current, in_doubt)
        self._failed(report)


def _resends_a_token(call: Call) -> bool:
    """A PATCH that sends a token the profile holds (a re-add sends one it just deleted)."""
    return isinstance(call, PatchChannels) and not isinstance(call, ReAddTokens) and any(
        isinstance(change.before, Token) for change in call.changes)


def _report(distinct_id: str, call: Call, sent: _Sent) -> Report:
    answer = sent.answer
    request = call.request()
    body = request.body
    if answer is None:
        return Report(distinct_id, call.operation, body, None, sent.why or "no answer",
                      sent.attempts)
    message = answer.message
    if sent.why and sent.why not in message:
        message = f"{message} ({sent.why})" if message else sent.why
    return Report(distinct_id, call.operation, body, answer.status, message, sent.attempts)


def _waited(answer: Answer) -> str:
    if answer.retry_after is None:
        return ""
    return f" (Retry-After {answer.retry_after:g} s)"


def _first(value: float | None, default: float) -> float:
    return default if value is None else value
