"""The state owns its changes: one function applies an event, while applying and when a
journal is folded in after a crash; both ways must give exactly the same state."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fakeapi import FakeApi, Switches, random_faults
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.apply import run_apply
from reconciler.audit import AuditContext
from reconciler.model import ChannelData, Token
from reconciler.pacing import RetryPolicy
from reconciler.plan import (
    Call,
    Change,
    CreateProfile,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    Plan,
    ReAddTokens,
)
from reconciler.planner import diff
from reconciler.preflight import PROBE_ID
from reconciler.state import (
    Begun,
    Doubt,
    Forgotten,
    Holds,
    LocalStateFile,
    Missing,
    State,
    Unchanged,
    apply_event,
)
from reconciler.state.events import from_json, to_json
from reconciler.state.journal import replay

FAST = RetryPolicy(attempts=3, base=0.0001, cap=0.001, max_wait=0.01)
IDS = ("a", "b", "c")
emails = st.sampled_from(["x@y.io", "z@y.io"])
channels = st.fixed_dictionaries({}, optional={
    "email": emails, "sms": st.sampled_from(["+1555", "+1666"]),
    "push": st.lists(st.fixed_dictionaries({"token": st.sampled_from(["t1", "t2"])},
                                           optional={"status": st.sampled_from([0, 1])}),
                     max_size=2, unique_by=lambda item: item["token"])})


def sent_calls(distinct_id: str) -> st.SearchStrategy[Call]:
    """Calls of every kind, as a journal's `Begun` names them."""
    token = Token("t1", "I1", 1)
    return st.sampled_from([
        PatchChannels(distinct_id, (Change("email", None, "x@y.io"),)),
        CreateProfile(distinct_id, (Change("push", None, token),)),
        DeleteTokens(distinct_id, (Change("push", token, None),)),
        DeleteChannels(distinct_id, (Change("sms", "+1555", None),), forget=True),
        ReAddTokens(distinct_id, (Change("push", token, token._replace(status=0)),)),
    ])


begun = st.sampled_from(IDS).flatmap(lambda name: st.builds(
    Begun, st.just(name), st.none() | st.builds(Doubt, st.uuids().map(lambda u: u.hex),
                                                sent_calls(name))))
events = st.one_of(
    begun, st.builds(Unchanged, st.sampled_from(IDS)),
    st.builds(Forgotten, st.sampled_from(IDS)), st.builds(Missing, st.sampled_from(IDS)),
    st.builds(Holds, st.sampled_from(IDS), channels.map(ChannelData.from_json)))


def same(one: State, other: State) -> bool:
    return (one.profiles, one.unconfirmed, one.missing, one.doubts) == (
        other.profiles, other.unconfirmed, other.missing, other.doubts)


@given(st.lists(events, max_size=20))
def test_every_event_survives_its_journal_line(sequence: list[Any]) -> None:
    direct, folded = State.new("W", "live"), State.new("W", "live")
    for event in sequence:
        apply_event(direct, event)
        apply_event(folded, from_json(to_json(event)))
    assert same(direct, folded)


class _KeepJournal(LocalStateFile):
    """A state file that keeps a copy of the journal its save is about to drop."""

    def save(self, state: State) -> State:
        if self.journal_path.exists():
            shutil.copy(self.journal_path, self.path.with_name("journal.copy"))
        return super().save(state)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(recorded=st.dictionaries(st.sampled_from(IDS), channels, max_size=3),
       desired=st.dictionaries(st.sampled_from(IDS), channels, max_size=3),
       seed=st.integers(0, 2**16), rate=st.sampled_from([0.0, 0.3, 0.7]),
       resend=st.sampled_from(["update", "duplicate", "ignore", "merge"]))
# A lost answer, then a read-back that never gets through: the request stays in doubt, and
# the state must say so although nothing else changed.
@example(recorded={}, desired={"a": {"email": "x@y.io"}}, seed=639, rate=0.7, resend="update")
def test_the_journal_folds_into_exactly_the_state_the_running_apply_saved(
        tmp_path_factory: Any, recorded: dict[str, dict[str, Any]],
        desired: dict[str, dict[str, Any]], seed: int, rate: float, resend: str) -> None:
    folder: Path = tmp_path_factory.mktemp("events")
    backend = _KeepJournal(folder / "W-live.json")
    have = {name: ChannelData.from_json(channel) for name, channel in recorded.items()}
    want = {name: ChannelData.from_json(channel) for name, channel in desired.items()}
    with backend.lock("apply"):
        start = backend.load("W", "live")
        start.profiles.update(have)
        start = backend.save(start)
        initial = LocalStateFile(backend.path).load("W", "live")
        plan = Plan(plan_id="p", created_at="", workspace="W", version="live",
                    lineage=start.lineage, serial=start.serial, config_digest="",
                    recorded_entries=0, calls=diff(want, have))
        faults = random_faults(seed, rate)
        api = FakeApi({name: dict(channel) for name, channel in recorded.items()},
                      switches=Switches(resend_token=resend),
                      random_faults=lambda kind, name: None if name == PROBE_ID
                      else faults(kind, name))
        context = AuditContext("tester", None, "p", "W", "live")
        result = run_apply(plan, start, backend, api, context=context, parallelism=2,
                           retry=FAST)
    copy = folder / "journal.copy"
    if not copy.exists():  # nothing changed: nothing journaled, the state stands
        assert same(result.state, initial)
        return
    assert replay(copy, initial) == "folded"
    assert same(initial, result.state)
