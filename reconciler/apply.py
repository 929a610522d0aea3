"""Apply a plan: run its calls through the executor, and record every outcome as it happens.

Each event the executor reports is written, before the next call counts as done, to the
state backend's journal (so `kill -9` loses nothing: the next load folds it in) and to the
audit ledger; the in-memory state is kept in step and saved once at the end. The caller
holds the state lock for the whole run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass

from reconciler.answers import ProfileApi
from reconciler.audit import AuditContext, AuditEntry, record_lost_requests
from reconciler.drift import ProfileDrift, compare
from reconciler.effects import target
from reconciler.executor import Executor, Outcome, Report, Work
from reconciler.model import EMPTY, ChannelData
from reconciler.ownership import EXCLUSIVE, NO_ENTRIES, Policy, declared_part
from reconciler.pacing import DEFAULT_RETRY, RetryPolicy
from reconciler.plan import Call, DeleteChannels, Plan
from reconciler.preflight import preflight
from reconciler.state import (
    Begun,
    Doubt,
    Event,
    EventLog,
    Forgotten,
    Holds,
    State,
    StateBackend,
    Unchanged,
    apply_event,
)


@dataclass(frozen=True)
class ApplyResult:
    """What `apply` did: the outcome of the executor, and the state saved afterwards."""

    outcome: Outcome
    state: State
    calls: int
    seconds: float
    drift: tuple[ProfileDrift, ...] = ()


def plan_works(plan: Plan, state: State) -> Iterator[Work]:
    """One unit of work per profile the plan names, plus unconfirmed profiles to read back.

    A reviewed plan is the whole set of writes: a profile it does not name is never written.
    An unconfirmed profile outside it (an earlier run died mid-call) is only read back, so
    that the state records its truth.

    Made lazily, as the executor takes them: 100,000 works with their targets cost 50 MB
    next to the plan. Which profiles there are, and which were unconfirmed or in doubt, is
    fixed now; what else a work reads of the state is its own profile's, which only its own
    work changes, so it reads the same whenever it is made.
    """
    by_profile: dict[str, list[Call]] = {}
    for call in plan.calls:
        by_profile.setdefault(call.distinct_id, []).append(call)
    named = by_profile.keys() | set(plan.forget)
    unconfirmed, doubts = set(state.unconfirmed), dict(state.doubts)
    return _works(plan, state, by_profile, sorted(named | unconfirmed), named, unconfirmed,
                  doubts)


def _works(plan: Plan, state: State, by_profile: dict[str, list[Call]], ids: list[str],
           named: Set[str], unconfirmed: Set[str],
           doubts: Mapping[str, tuple[Doubt, ...]]) -> Iterator[Work]:
    """The works of `plan_works`, each made when the executor takes it."""
    for distinct_id in ids:
        calls = tuple(by_profile.pop(distinct_id, ()))
        recorded = state.profiles.get(distinct_id, EMPTY)
        leaves = distinct_id in plan.forget or any(
            isinstance(call, DeleteChannels) and call.forget for call in calls)
        policy = plan.policies.get(distinct_id, EXCLUSIVE)
        managed = state.managed.get(distinct_id, NO_ENTRIES)
        goal: ChannelData | None = target(recorded, calls)
        if policy.is_exclusive:
            goal = None if leaves else goal
        else:
            assert goal is not None
            goal = declared_part(goal, recorded, policy, managed)
        # A whole-channel delete where others write too: the value may be theirs by now.
        look_first = not policy.is_exclusive and any(
            isinstance(call, DeleteChannels) for call in calls)
        yield Work(distinct_id, calls, recorded, goal,
                   read_back_first=distinct_id in unconfirmed or look_first,
                   read_only=distinct_id not in named, doubts=doubts.get(distinct_id, ()),
                   policy=policy, managed=managed, leaves=leaves)


def run_apply(plan: Plan, state: State, backend: StateBackend, api: ProfileApi, *,
              context: AuditContext, parallelism: int = 10,
              rate: float | None = None, retry: RetryPolicy = DEFAULT_RETRY,
              progress: Callable[[int], None] = lambda calls: None,
              on_report: Callable[[Report], None] = lambda report: None) -> ApplyResult:
    """Execute `plan` against `api`, journaling and auditing every event; save the state.
    `on_report` sees each record once it is in the ledger (from the executor's threads)."""
    started = time.monotonic()
    preflight(api, retry)  # a wrong URL, key or workspace stops us before anything is written
    _ready_ledger(plan, state, backend, context)
    if state.lineage is None:
        state = backend.save(state)  # the journal extends a saved version
    works = plan_works(plan, state)
    doubts = dict(state.doubts), set(state.unconfirmed)
    log = backend.open_journal(state)
    recorder = _Recorder(state, log, context, progress, on_report, plan.policies)
    try:
        outcome = Executor(api, recorder, parallelism=parallelism, rate=rate,
                           retry=retry).run(works)
    finally:
        # Nothing changed (e.g. the first calls met a 401): the state stays byte for byte.
        # A request left in doubt (its read-back never came) is a change: it must be kept.
        changed = recorder.changed or doubts != (state.doubts, state.unconfirmed)
        log.close(discard=not changed)
    saved = backend.save(state) if changed else state
    drift = tuple(sorted(recorder.drift, key=lambda item: item.distinct_id))
    return ApplyResult(outcome, saved, len(plan.calls), time.monotonic() - started, drift)


def _ready_ledger(plan: Plan, state: State, backend: StateBackend,
                  context: AuditContext) -> None:
    """Check the ledger, make the data keys of the profiles of the plan, and record what an
    earlier run lost. Its own ledger object, gone once ready: the journal's ledger loads the
    keys again, and two copies of 100,000 keys cost 50 MB more for the whole run."""
    with backend.ledger(durable=True) as ledger:
        ledger.check()  # a ledger that cannot take records must stop us before the first call
        # every profile apply may write a record of: the plan's, and those a read-back settles
        ledger.prepare((state.workspace, state.version, distinct_id) for distinct_id in
                       sorted({call.distinct_id for call in plan.calls} | state.unconfirmed
                              | state.doubts.keys()))
        record_lost_requests(state, ledger, context)


class _Recorder:
    """The executor's `Observer`. A request is journaled (`Begun`) before it is sent, and
    its ledger record is written before the journal settles it: a crash at any instant
    leaves the request either in the ledger or in the state's doubts, from which the next
    command that settles the profile records it (`record_lost_requests`)."""

    def __init__(self, state: State, log: EventLog, context: AuditContext,
                 progress: Callable[[int], None], on_report: Callable[[Report], None],
                 policies: Mapping[str, Policy]) -> None:
        self._state = state
        self._on_report = on_report
        self._policies = policies
        self._log = log
        self._context = context
        self._progress = progress
        self._mutex = threading.Lock()
        self.changed = False  # whether the state must be saved
        self.drift: list[ProfileDrift] = []  # read-backs that found changes made elsewhere

    def begin(self, doubt: Doubt) -> None:
        self._note(Begun(doubt.call.distinct_id, doubt), changes=False)

    def abandoned(self, distinct_id: str) -> None:
        self._note(Unchanged(distinct_id), changes=False)

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        distinct_id = report.distinct_id
        self._note(Forgotten(distinct_id) if after is None else Holds(distinct_id, after),
                   [(report, before, after)])

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        records = [(report, before, truth)]
        distinct_id = report.distinct_id
        drift = None if explained is None or any(
            compare(distinct_id, state, truth) is None for state in explained
        ) else compare(distinct_id, before, truth,
                       policy=self._policies.get(distinct_id, EXCLUSIVE),
                       managed=self._state.managed.get(distinct_id, NO_ENTRIES))
        if drift is not None and drift.is_drift:
            with self._mutex:
                self.drift.append(drift)
            # Recorded as what it is: a change made outside reconciler, not by it.
            records.append((Report(report.distinct_id, "drift", None, None,
                                   "changed outside reconciler", 0), before, truth))
        self._note(Holds(report.distinct_id, truth), records)

    def unsettled(self, report: Report, before: ChannelData) -> None:
        # the request is on record before anything settles it
        self._note(None, [(report, before, None)], changes=False)

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        # Refused: the profile holds what it held. In doubt: what it holds is unknown.
        if in_doubt:
            self._note(None, [(report, before, None)], changes=False)
            self.changed = True  # the profile stays unconfirmed, which the state must say
        else:
            self._note(Unchanged(report.distinct_id), [(report, before, before)],
                       changes=False)

    def progress(self, finished_calls: int) -> None:
        self._progress(finished_calls)

    def _note(self, event: Event | None,
              records: Sequence[tuple[Report, ChannelData, ChannelData | None]] = (), *,
              changes: bool = True) -> None:
        """Put `records` on record and journal `event` (the log does both, in that order),
        then apply the event to the state in memory: the same function that folds the
        journal after a crash (`apply_event`)."""
        self._log.record(event, [self._entry(*record) for record in records])
        for report, *_ in records:
            self._on_report(report)
        if event is None:
            return
        with self._mutex:
            apply_event(self._state, event)
            self.changed = self.changed or changes

    def _entry(self, report: Report, before: ChannelData,
               after: ChannelData | None) -> AuditEntry:
        return self._context.entry(
            report.distinct_id, report.operation, request=report.request,
            status=report.status, message=report.message, attempts=report.attempts,
            before=before.to_json(), after=None if after is None else after.to_json(),
            method=report.method or None, path=report.path or None,
            outcome=None if report.outcome is None else report.outcome.value,
            request_id=report.request_id or None, settles=report.settles,
            found=None if report.found is None else report.found.value)
