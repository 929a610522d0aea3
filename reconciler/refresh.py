"""Learning the state from the server: `import` and `refresh`, and `--refresh` before a plan.

Profiles are read concurrently (GET, with apply's limits and retries) and recorded exactly
as the server holds them; a profile the server does not have is recorded as missing, and
nothing is planned for it. What the server holds differently from the record is drift:
changes made outside reconciler (the app's SDKs, the dashboard), reported per channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from reconciler.answers import ProfileApi
from reconciler.audit import Fact
from reconciler.converge import Found, doubted_states
from reconciler.drift import DriftReport, ProfileDrift, compare
from reconciler.executor import Executor, Report
from reconciler.heap import collector_paused
from reconciler.model import EMPTY, ChannelData
from reconciler.ownership import EVERYTHING_EXCLUSIVE, NO_ENTRIES, Ownership
from reconciler.pacing import DEFAULT_RETRY, RetryPolicy
from reconciler.preflight import preflight
from reconciler.state import Doubt, Holds, Missing, State, apply_event


@dataclass(frozen=True)
class Reading:
    """What the server answered for each profile read (None: it has no such profile)."""

    found: dict[str, ChannelData | None]
    failures: list[Report]
    interrupted: bool


class _ProgressOnly:
    """The executor's observer for a run that only reads: there is nothing to record but
    progress (reads are never journaled: a refresh that dies is simply run again)."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self._progress = progress

    def begin(self, doubt: Doubt) -> None:
        pass

    def abandoned(self, distinct_id: str) -> None:
        pass

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        pass

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        pass

    def unsettled(self, report: Report, before: ChannelData) -> None:
        pass

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        pass

    def progress(self, finished_calls: int) -> None:
        self._progress(finished_calls)


def read_profiles(api: ProfileApi, ids: Iterable[str], *, parallelism: int = 10,
                  rate: float | None = None, retry: RetryPolicy = DEFAULT_RETRY,
                  progress: Callable[[int], None] = lambda count: None) -> Reading:
    """Read `ids`; raise the error that stopped the reads, if one did (nothing is returned
    then, so nothing can be recorded from a run whose answers cannot be trusted)."""
    preflight(api, retry)
    executor = Executor(api, _ProgressOnly(progress), parallelism=parallelism, rate=rate,
                        retry=retry)
    found, outcome = executor.read(sorted(set(ids)))
    if outcome.fatal is not None:
        raise outcome.fatal
    return Reading(found, outcome.failures, outcome.interrupted)


def managed_ids(state: State, targets: Iterable[str] = ()) -> set[str]:
    """The profiles a refresh reads: every one the state records (or knows missing)."""
    ids = state.profiles.keys() | state.missing
    wanted = set(targets)
    return ids & wanted if wanted else set(ids)


def settled_by(state: State, found: Mapping[str, ChannelData | None]) -> list[Fact]:
    """The ledger's read-back records for what `found` settles of the requests `state` holds
    in doubt (call it before `record_reading`, which drops the doubts it settles)."""
    facts = []
    for distinct_id in sorted(found.keys() & state.doubts.keys()):
        doubts = state.doubts[distinct_id]
        before = state.profiles.get(distinct_id, EMPTY)
        truth = found[distinct_id] or EMPTY
        judged = Found.judge(truth, before, doubted_states(before, doubts)[-1])
        facts.append(Fact(distinct_id, "read_back", f"read back: {judged.value.replace('_', ' ')}",
                          before=before, after=found[distinct_id],
                          settles=tuple(doubt.request_id for doubt in doubts),
                          found=judged.value))
    return facts


def record_reading(state: State, found: Mapping[str, ChannelData | None],
                   ownership: Ownership = EVERYTHING_EXCLUSIVE) -> list[ProfileDrift]:
    """Make `state` say what the server answered; return how that differs from the record
    in ways no request of ours explains (a request in doubt may have landed). Under a
    policy that shares channels, what others wrote there is `foreign`, not drift."""
    drifted = []
    with collector_paused():
        for distinct_id in sorted(found):
            server = found[distinct_id]
            recorded = state.profiles.get(distinct_id)
            doubts = state.doubts.get(distinct_id, ())
            explained = server is not None and any(
                compare(distinct_id, held, server) is None
                for held in doubted_states(recorded or EMPTY, doubts)[1:])
            drift = None if explained else compare(
                distinct_id, recorded, server, recorded_missing=distinct_id in state.missing,
                policy=ownership.policy(distinct_id),
                managed=state.managed.get(distinct_id, NO_ENTRIES))
            if drift is not None:
                drifted.append(drift)
            apply_event(state, Missing(distinct_id) if server is None
                        else Holds(distinct_id, server))
    return drifted


def drift_report(state: State, drifted: list[ProfileDrift], checked: int) -> DriftReport:
    return DriftReport(state.workspace, state.version, tuple(drifted), checked)
