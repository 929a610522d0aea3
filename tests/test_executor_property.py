"""Property: for random plans, and a server drawn from every switch of the API's UNKNOWNs with
answers that fail, get lost or come back malformed at random, the executor

- terminates, with no profile receiving more than `MAX_REQUESTS_PER_PROFILE` requests;
- writes to no profile the plan does not name (unconfirmed ones outside it are only read);
- records nothing the server did not confirm: every profile it settles holds on the server
  exactly what it recorded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fakeapi import FAULTS, FakeApi, Switches, random_faults
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.apply import plan_works
from reconciler.converge import MAX_REQUESTS_PER_PROFILE, Report
from reconciler.executor import Executor
from reconciler.model import ChannelData
from reconciler.pacing import RetryPolicy
from reconciler.plan import Plan
from reconciler.planner import diff, forgotten_without_calls
from reconciler.state import Doubt, State

FAST = RetryPolicy(attempts=4, base=0.0001, cap=0.001, max_wait=0.01)
IDS = ("a", "b", "c", "d")

single = st.sampled_from(["+15550001", "+15550002", "x@y.io"])
token = st.fixed_dictionaries(
    {"token": st.sampled_from(["t1", "t2", "t3"])},
    optional={"integration_id": st.sampled_from(["I1", "I2"]), "status": st.sampled_from([0, 1])})
channels = st.fixed_dictionaries({}, optional={
    "sms": single, "email": single, "teams": single,
    "push": st.lists(token, max_size=3, unique_by=lambda item: item["token"]),
    "inapp": st.lists(token, max_size=2, unique_by=lambda item: item["token"]),
})
switches = st.builds(
    Switches,
    resend_token=st.sampled_from(["update", "duplicate", "ignore", "merge"]),
    delete_empty=st.sampled_from(["fail-whole", "fail-partial", "succeed"]),
    absent_token=st.sampled_from(["fail", "succeed"]),
    empty_channels=st.sampled_from(["omit", "empty"]),
)


@dataclass
class Tracker:
    """An observer that keeps, per profile, the last thing recorded and whether it is sure."""

    recorded: dict[str, ChannelData | None] = field(default_factory=dict)
    unsure: set[str] = field(default_factory=set)

    def begin(self, doubt: Doubt) -> None:
        self.unsure.add(doubt.call.distinct_id)

    def abandoned(self, distinct_id: str) -> None:
        self.unsure.discard(distinct_id)

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        self.recorded[report.distinct_id] = after
        self.unsure.discard(report.distinct_id)

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        self.recorded[report.distinct_id] = truth
        self.unsure.discard(report.distinct_id)

    def unsettled(self, report: Report, before: ChannelData) -> None:
        pass

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        if not in_doubt:
            self.unsure.discard(report.distinct_id)

    def progress(self, finished_calls: int) -> None:
        pass


def normal(channel: dict[str, Any] | ChannelData | None) -> dict[str, Any]:
    data = channel if isinstance(channel, ChannelData) else ChannelData.from_json(channel or {})
    return {name: value if isinstance(value, str) else sorted(value)
            for name, value in data.channels.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recorded=st.dictionaries(st.sampled_from(IDS), channels, max_size=4),
    desired=st.dictionaries(st.sampled_from(IDS), channels, max_size=4),
    targets=st.lists(st.sampled_from(IDS), max_size=2, unique=True),
    unconfirmed=st.sets(st.sampled_from(IDS), max_size=2),
    landed=st.dictionaries(st.sampled_from(IDS), channels, max_size=2),
    server_switches=switches,
    seed=st.integers(0, 2**16),
    rate=st.sampled_from([0.0, 0.2, 0.5, 0.9]),
    fatal=st.booleans(),
)
def test_the_executor_is_bounded_stays_in_the_plan_and_records_only_the_truth(
        recorded: dict[str, dict[str, Any]], desired: dict[str, dict[str, Any]],
        targets: list[str], unconfirmed: set[str], landed: dict[str, dict[str, Any]],
        server_switches: Switches, seed: int, rate: float, fatal: bool) -> None:
    have = {name: ChannelData.from_json(channel) for name, channel in recorded.items()}
    want = {name: ChannelData.from_json(channel) for name, channel in desired.items()}
    unconfirmed &= have.keys()
    # The server holds what the state records, except where an earlier call of unknown
    # outcome (an unconfirmed profile) may have landed.
    server = {name: dict(channel) for name, channel in recorded.items()}
    server.update({name: landed.get(name, {}) for name in unconfirmed if name in landed})
    faults = random_faults(seed, rate, FAULTS if fatal else FAULTS[2:])
    api = FakeApi(server, switches=server_switches, random_faults=faults)
    calls = diff(want, have, targets)
    plan = Plan(plan_id="p", created_at="", workspace="W", version="live", lineage="l",
                serial=1, config_digest="", recorded_entries=0, calls=calls,
                targets=tuple(targets), forget=forgotten_without_calls(want, have, calls, targets))
    state = State("l", 1, "W", "live", profiles=dict(have), unconfirmed=set(unconfirmed))
    named = {call.distinct_id for call in plan.calls} | set(plan.forget)
    tracker = Tracker()

    outcome = Executor(api, tracker, parallelism=3, retry=FAST).run(plan_works(plan, state))

    per_profile = Counter(distinct_id for _kind, distinct_id in api.requests)
    assert max(per_profile.values(), default=0) <= MAX_REQUESTS_PER_PROFILE
    writes = {distinct_id for kind, distinct_id in api.requests if kind != "get"}
    assert writes <= named, "a write outside the reviewed plan"
    if outcome.fatal is None and not outcome.interrupted:
        assert set(per_profile) <= named | unconfirmed
    for distinct_id, data in tracker.recorded.items():
        if distinct_id in tracker.unsure:
            continue
        on_server = api.profiles.get(distinct_id)
        if data is None:  # left management: nothing managed is left on the server
            assert normal(on_server) == {}, distinct_id
        else:
            assert normal(on_server) == normal(data), distinct_id
