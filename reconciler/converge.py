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

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final, Protocol, TypeAlias

from reconciler.answers import Answer, ProfileApi, Verdict
from reconciler.effects import after_call
from reconciler.errors import NoAnswerError, NotSentError, TransportError, UnreachableError
from reconciler.model import EMPTY, ChannelData, Token
from reconciler.ownership import EXCLUSIVE, NO_ENTRIES, Entry, Ownership, Policy
from reconciler.pacing import RetryPolicy
from reconciler.plan import Call, CreateProfile, DeleteChannels, PatchChannels, ReAddTokens
from reconciler.planner import diff
from reconciler.pool import Gate
from reconciler.state import Doubt
from reconciler.values import same_channels
from reconciler.words import plural

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
    doubts: tuple[Doubt, ...] = ()  # the earlier run's requests of unknown outcome, if known
    # Not exclusive (`reconciler.ownership`): `target` is what the plan declares, and what
    # others hold at any moment is kept; `leaves`: then the profile leaves management.
    policy: Policy = EXCLUSIVE
    managed: frozenset[Entry] = NO_ENTRIES
    leaves: bool = False


class Outcome(Enum):
    """What a request that may have changed the server came to, as the ledger says it."""

    OK = "ok"  # 2xx in Fyno's shape: done
    REFUSED = "refused"  # the server answered that it did nothing
    UNKNOWN = "unknown"  # no answer, a 5xx, a malformed 2xx, a 400 to settle: read back


class Found(Enum):
    """What a read-back found of the requests whose outcome was unknown."""

    LANDED = "landed"
    NOT_LANDED = "not_landed"
    LANDED_PARTLY = "landed_partly"  # or something else changed the profile meanwhile

    @classmethod
    def judge(cls, truth: ChannelData, before: ChannelData, landed: ChannelData) -> Found:
        """What the server holding `truth` says of writes that led from `before` to `landed`."""
        if same_channels(truth.channels, landed.channels):
            return cls.LANDED
        return (cls.NOT_LANDED if same_channels(truth.channels, before.channels)
                else cls.LANDED_PARTLY)


@dataclass(frozen=True, slots=True)
class Report:
    """One request (or one fact, such as drift) as the audit ledger records it."""

    distinct_id: str
    operation: str
    request: object  # the request body
    status: int | None
    message: str
    attempts: int  # the attempt number of this request
    method: str = ""
    path: str = ""
    outcome: Outcome | None = None  # None: not a write (a read-back, drift, forget)
    request_id: str = ""  # names a write, so that the read-back settling it can point to it
    settles: tuple[str, ...] = ()  # a read-back: the writes of unknown outcome it settles
    found: Found | None = None  # ... and what it found of them


class Observer(Protocol):
    """Receives every event; each method returns once the event is durably recorded."""

    def begin(self, doubt: Doubt) -> None:
        """`doubt.call` is about to be sent as `doubt.request_id`: in doubt until settled."""

    def abandoned(self, distinct_id: str) -> None:
        """The call begun for `distinct_id` was never sent: the run is stopping."""

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        """A call succeeded; `after` None: the profile left management."""

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        """The server holds `truth`; if it is none of `explained`, something else changed it."""

    def unsettled(self, report: Report, before: ChannelData) -> None:
        """A write's outcome is unknown until a read-back settles it (`report.request_id`)."""

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


class _GiveUp(Exception):
    """The profile fails: `report` says why; `in_doubt`: a call may have been carried out."""

    def __init__(self, report: Report, *, in_doubt: bool, why: str = "") -> None:
        super().__init__(report.message)
        if why:
            report = Report(report.distinct_id, report.operation, report.request,
                            report.status, f"{report.message} ({why})".strip(), report.attempts)
        self.report = report
        self.in_doubt = in_doubt


@dataclass(frozen=True, slots=True)
class _Sent:
    result: Result
    answer: Answer | None
    attempts: int
    request_id: str  # as the journal's `Begun` named it
    why: str = ""


_Settles: TypeAlias = tuple[tuple[str, ...], ChannelData]
"""Writes of unknown outcome a read-back settles, and what the profile holds if all landed."""


class Budget:
    """Counts one profile's requests against `MAX_REQUESTS_PER_PROFILE`."""

    __slots__ = ("left",)

    def __init__(self, requests: int = MAX_REQUESTS_PER_PROFILE) -> None:
        self.left = requests

    def spend(self) -> None:
        if self.left <= 0:
            raise _OverBudget
        self.left -= 1


@dataclass
class _Profile:
    """Where one profile stands while it converges."""

    work: Work
    current: ChannelData  # what the server holds, as far as is known
    pending: list[Call]  # the calls still to send, in order
    budget: Budget = field(default_factory=Budget)
    absent: bool = False  # the last read-back found no such profile: a PATCH must create it
    rounds: int = 0  # read-backs so far, at most MAX_ROUNDS
    rechecks: int = 0  # times the calls ran out after a read-back and were planned again


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
        profile = _Profile(work, work.recorded, list(work.calls))
        try:
            if work.read_only or work.read_back_first:
                self._read_back(profile, *_earlier_doubts(work))
                if work.read_only:
                    return
                self._replan(profile, len(work.calls))
            while (call := self._next_call(profile)) is not None:
                sent = self._send(work.distinct_id, call, profile.budget)
                report = _report(work.distinct_id, call, sent)
                if sent.result is Result.DONE:
                    if self._done(profile, call, report):
                        return  # the profile left management
                elif sent.result is Result.REFUSED:
                    raise _GiveUp(report, in_doubt=False)
                else:
                    self._settle_doubt(profile, call, sent, report)
            if work.target is None or work.leaves:  # leaving, with nothing (left) to delete
                self._observer.done(Report(work.distinct_id, "forget", None, None,
                                           "no managed channel left", 0), profile.current, None)
        except _GiveUp as stop:
            self._fail(stop.report, profile.current, in_doubt=stop.in_doubt)
        except ReadFailed as error:
            self._fail(Report(work.distinct_id, "read_back", None, error.status, str(error),
                              error.attempts), profile.current, in_doubt=True)
        except _OverBudget:  # only from `_send`, before a request: nothing was sent
            self._fail(Report(work.distinct_id, "converge", None, None,
                              f"gave up after {MAX_REQUESTS_PER_PROFILE} requests", 0),
                       profile.current, in_doubt=False)

    def _next_call(self, profile: _Profile) -> Call | None:
        """The next call to send, None when the profile is done.

        After any read-back, what is now known is checked once more when the calls run out
        (a token the server held twice is deleted by one call, then added by the next plan).
        """
        if not profile.pending and profile.rounds:
            profile.rechecks += 1
            self._replan(profile, 0)
            if profile.pending and profile.rechecks > MAX_ROUNDS:
                raise _GiveUp(Report(profile.work.distinct_id, "converge", None, None,
                                     "the calls planned do not converge", 0), in_doubt=False)
        if not profile.pending:
            return None
        call = profile.pending.pop(0)
        if profile.absent and isinstance(call, PatchChannels):
            return CreateProfile.instead_of(call)
        return call

    def _done(self, profile: _Profile, call: Call, report: Report) -> bool:
        """Record a call that succeeded; True when the profile left management with it."""
        leaves = isinstance(call, DeleteChannels) and call.forget
        after = after_call(profile.current, call)
        self._observer.done(report, profile.current, None if leaves else after)
        self._observer.progress(1)
        if leaves:
            return True
        profile.current, profile.absent = after, False
        if _resends_a_token(call):
            # Only a plan saved by an older version re-sends a held token; what the server
            # did with it is an UNKNOWN of the API: look, within bounds.
            self._read_back(profile, None, None, report)
            self._replan(profile, len(profile.pending))
        return False

    def _settle_doubt(self, profile: _Profile, call: Call, sent: _Sent, report: Report) -> None:
        """Record the write whose outcome is unknown, read back to settle it, and plan what
        is still needed from there."""
        before = profile.current
        self._observer.unsettled(report, before)
        landed = after_call(before, call)
        self._read_back(profile, (before, landed), ((report.request_id,), landed), report)
        refused = sent.answer is not None and sent.answer.verdict is Verdict.REFUSED
        if refused and not profile.absent and same_channels(profile.current.channels,
                                                            before.channels):
            raise _GiveUp(report, in_doubt=False)  # Fyno said no, and nothing happened
        self._replan(profile, len(profile.pending) + 1)

    def _read_back(self, profile: _Profile, explained: tuple[ChannelData, ...] | None,
                   settles: _Settles | None = None, report: Report | None = None) -> None:
        """One more read-back round for `profile`, within `MAX_ROUNDS`; `settles`: the writes
        of unknown outcome it settles, and what the profile holds if they all landed."""
        profile.rounds += 1
        if profile.rounds > MAX_ROUNDS and report is not None:
            raise _GiveUp(report, in_doubt=True,
                          why=f"still in doubt after {MAX_ROUNDS} read-backs")
        profile.current, profile.absent = self._resync(
            profile.work.distinct_id, profile.current, explained, profile.budget, settles)

    def _replan(self, profile: _Profile, planned: int) -> None:
        """Plan from what is now known; progress counts the `planned` calls replaced."""
        profile.pending = self._still_needed(profile.work, profile.current, planned)

    def read(self, distinct_id: str, budget: Budget) -> tuple[ChannelData | None, Answer, int]:
        """GET a profile (None: the server has no such profile); `ReadFailed` if no usable
        answer came. A read changes nothing, so it is retried on any transient answer."""
        attempts = 0
        while True:
            attempts += 1
            try:
                budget.spend()
            except _OverBudget:
                raise ReadFailed(f"GET {distinct_id}: gave up after "
                                 f"{MAX_REQUESTS_PER_PROFILE} requests", None, attempts) from None
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
                                 f"{_waited(answer)} {plural(attempts, 'time')}".strip(),
                                 answer.status, attempts)
            self._gate.sleep(delay)

    # --- one profile --------------------------------------------------------------------------

    def _resync(self, distinct_id: str, current: ChannelData,
                explained: tuple[ChannelData, ...] | None, budget: Budget,
                settles: _Settles | None = None) -> tuple[ChannelData, bool]:
        """Read the profile back and record the server's truth; (truth, whether absent).

        `explained`: what the server may hold because of our own calls (a doubtful one landed
        or not); anything else is drift. None: do not judge.
        """
        held, answer, attempts = self.read(distinct_id, budget)
        truth = held or EMPTY
        report = Report(distinct_id, "read_back", None, answer.status, answer.message, attempts,
                        method="GET")
        if settles is not None:
            request_ids, landed = settles
            report = replace(report, settles=request_ids,
                             found=Found.judge(truth, current, landed))
        self._observer.read_back(report, current, truth, explained)
        return truth, held is None

    def _still_needed(self, work: Work, current: ChannelData, planned: int) -> list[Call]:
        """The calls that lead from `current` to the work's target; progress counts the
        `planned` calls they replace as finished."""
        desired = {} if work.target is None else {work.distinct_id: work.target}
        remaining = list(diff(desired, {work.distinct_id: current},
                              ownership=Ownership(profiles={work.distinct_id: work.policy}),
                              managed={work.distinct_id: work.managed}))
        finished = planned - len(remaining)
        if finished > 0:
            self._observer.progress(finished)
        return remaining

    # --- one call ---------------------------------------------------------------------------

    def _send(self, distinct_id: str, call: Call, budget: Budget) -> _Sent:
        """Send one call, retrying only what certainly did not reach the server."""
        request_id = uuid.uuid4().hex
        self._observer.begin(Doubt(request_id, call))
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
                    return _Sent(Result.IN_DOUBT, None, attempts, request_id, str(error))
                if answer.verdict is Verdict.OK:
                    return _Sent(Result.DONE, answer, attempts, request_id)
                if answer.verdict is Verdict.THROTTLED:
                    delay = self._retry.delay(attempts, answer.retry_after)
                    if delay is None or attempts >= self._retry.attempts:
                        return _Sent(Result.REFUSED, answer, attempts, request_id,
                                     f"throttled{_waited(answer)} {plural(attempts, 'time')}")
                    self._gate.sleep(delay)
                    continue
                return _Sent(Result.IN_DOUBT, answer, attempts, request_id, answer.problem)
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

    def _fail(self, report: Report, current: ChannelData, *, in_doubt: bool) -> None:
        self._observer.refused(report, current, in_doubt)
        self._failed(report)


def _resends_a_token(call: Call) -> bool:
    """A PATCH that sends a token the profile holds (a re-add sends one it just deleted)."""
    return isinstance(call, PatchChannels) and not isinstance(call, ReAddTokens) and any(
        isinstance(change.before, Token) for change in call.changes)


def _earlier_doubts(work: Work) -> tuple[tuple[ChannelData, ...] | None, _Settles | None]:
    """What may explain a profile an earlier run left in doubt, and what that read-back
    settles: the server may hold the record, what the doubtful writes led to, or (when the
    plan repeats the calls that run had yet to confirm) what any prefix of the plan leads to.
    A profile outside the plan whose doubts are not known is not judged."""
    recorded = work.recorded
    doubted = doubted_states(recorded, work.doubts)
    settles = ((tuple(doubt.request_id for doubt in work.doubts), doubted[-1])
               if work.doubts else None)
    if work.read_only:
        return (doubted if work.doubts else None), settles
    return prefixes(recorded, work.calls) + doubted[1:], settles


def doubted_states(recorded: ChannelData, doubts: tuple[Doubt, ...]) -> tuple[ChannelData, ...]:
    """What the profile holds if none, the first, ..., or all of `doubts` landed."""
    return prefixes(recorded, tuple(doubt.call for doubt in doubts))


def prefixes(recorded: ChannelData, calls: tuple[Call, ...]) -> tuple[ChannelData, ...]:
    """What the profile holds after each prefix of `calls` (none of them included)."""
    states = [recorded]
    for call in calls:
        states.append(after_call(states[-1], call))
    return tuple(states)


def _report(distinct_id: str, call: Call, sent: _Sent) -> Report:
    """The ledger's record of the request `call` was sent as, and its answer."""
    answer = sent.answer
    request = call.request()
    if sent.result is Result.DONE:
        outcome = Outcome.OK
    elif sent.result is Result.REFUSED or (
            answer is not None and answer.verdict is Verdict.REFUSED):
        outcome = Outcome.REFUSED
    else:
        outcome = Outcome.UNKNOWN
    if answer is None:
        status, message = None, sent.why or "no answer"
    else:
        status, message = answer.status, answer.message
        if sent.why and sent.why not in message:
            message = f"{message} ({sent.why})" if message else sent.why
    return Report(distinct_id, call.operation, request.body, status, message, sent.attempts,
                  method=request.method, path=request.path, outcome=outcome,
                  request_id=sent.request_id)


def _waited(answer: Answer) -> str:
    if answer.retry_after is None:
        return ""
    return f" (Retry-After {answer.retry_after:g} s)"


def _first(value: float | None, default: float) -> float:
    return default if value is None else value
