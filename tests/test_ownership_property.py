"""Ownership as a property: for random modes, removals, desired states, server contents that
hold entries others wrote (the app's tokens, a value changed in the dashboard) and faults,
executing the plan against a model of the API deletes no value or token that the reconciler
does not own or was not told to remove."""

from __future__ import annotations

from typing import Any

from fakeapi import FAULTS, FakeApi, Switches, random_faults
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_executor_property import Tracker

from reconciler.apply import plan_works
from reconciler.executor import Executor
from reconciler.model import ChannelData
from reconciler.ownership import Entry, Mode, Ownership, Policy, entries
from reconciler.pacing import RetryPolicy
from reconciler.plan import Plan
from reconciler.planner import diff, forgotten_without_calls
from reconciler.state import State

FAST = RetryPolicy(attempts=3, base=0.0001, cap=0.001, max_wait=0.01)
IDS = ("a", "b", "c")
CHANNELS = ("email", "sms", "push", "inapp")
OURS = ["t1", "t2"]
THEIRS = ["app1", "app2"]
tokens = st.lists(st.fixed_dictionaries(
    {"token": st.sampled_from(OURS)}, optional={"status": st.sampled_from([0, 1])}),
    max_size=2, unique_by=lambda item: item["token"])
channels = st.fixed_dictionaries({}, optional={
    "email": st.sampled_from(["x@y.io", "z@y.io"]), "sms": st.sampled_from(["+15550100001"]),
    "push": tokens, "inapp": tokens})
modes = st.dictionaries(st.sampled_from(CHANNELS), st.sampled_from(list(Mode)), max_size=4)
removable: list[Entry] = [("push", "t1"), ("push", "app1"), ("inapp", "app2"),
                          ("email", "x@y.io"), ("email", "dashboard@y.io"), ("sms", "+15550100001")]
policies = st.builds(Policy, modes, st.frozensets(st.sampled_from(removable), max_size=2))


@st.composite
def others_wrote(draw: st.DrawFn, channel: dict[str, Any]) -> dict[str, Any]:
    """What the server holds: the recorded channel, plus what the app and the dashboard
    wrote behind the reconciler's back."""
    server = {name: list(value) if isinstance(value, list) else value
              for name, value in channel.items()}
    for name in ("push", "inapp"):
        for token in draw(st.lists(st.sampled_from(THEIRS), unique=True, max_size=2)):
            server.setdefault(name, []).append({"token": token, "status": 1})
    if draw(st.booleans()):
        server["email"] = "dashboard@y.io"
    return server


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(),
       recorded=st.dictionaries(st.sampled_from(IDS), channels, max_size=3),
       desired=st.dictionaries(st.sampled_from(IDS), channels, max_size=3),
       default=modes, profile_policies=st.dictionaries(st.sampled_from(IDS), policies),
       switches=st.builds(Switches,
                          resend_token=st.sampled_from(["update", "duplicate", "ignore", "merge"]),
                          delete_empty=st.sampled_from(["fail-whole", "fail-partial", "succeed"]),
                          absent_token=st.sampled_from(["fail", "succeed"])),
       seed=st.integers(0, 2**16), rate=st.sampled_from([0.0, 0.3, 0.7]))
def test_nothing_others_wrote_is_deleted_unless_listed(
        data: st.DataObject, recorded: dict[str, dict[str, Any]],
        desired: dict[str, dict[str, Any]], default: dict[str, Mode],
        profile_policies: dict[str, Policy], switches: Switches, seed: int,
        rate: float) -> None:
    ownership = Ownership(Policy(default), {name: policy for name, policy in
                                            profile_policies.items() if name in desired})
    have = {name: ChannelData.from_json(channel) for name, channel in recorded.items()}
    want = {name: ChannelData.from_json(channel) for name, channel in desired.items()}
    # What calls of ours wrote earlier: any part of what the state records.
    managed = {name: frozenset(data.draw(st.sets(st.sampled_from(sorted(entries(channel))))
                                         if entries(channel) else st.just(set())))
               for name, channel in have.items()}
    server = {name: data.draw(others_wrote(channel)) for name, channel in recorded.items()}
    before = {name: entries(ChannelData.from_json(channel)) for name, channel in server.items()}

    calls = diff(want, have, ownership=ownership, managed=managed)
    plan = Plan(plan_id="p", created_at="", workspace="FYW", version="live", lineage="l",
                serial=1, config_digest="", recorded_entries=0, calls=calls,
                forget=forgotten_without_calls(want, have, calls),
                policies={name: policy for name in have.keys() | want.keys()
                          if not (policy := ownership.policy(name)).is_exclusive})
    state = State("l", 1, "FYW", "live", profiles=dict(have), managed=managed)
    api = FakeApi(server, switches=switches,
                  random_faults=random_faults(seed, rate, FAULTS[2:]))
    Executor(api, Tracker(), parallelism=2, retry=FAST).run(plan_works(plan, state))

    for name, held in before.items():
        policy = ownership.policy(name)
        after = entries(ChannelData.from_json(api.profiles.get(name, {})))
        ours = managed.get(name, frozenset())
        for entry in held - after:
            channel = entry[0]
            mode = policy.mode(channel)
            if mode is Mode.EXCLUSIVE or entry in ours or entry in policy.remove:
                continue
            if mode is Mode.OWNED and channel in ("email", "sms") and name in want and \
                    channel in want[name].channels:
                continue  # a declared value replaces whatever others wrote there
            if mode is Mode.OWNED and name in want and any(
                    token.token == entry[1] for token in want[name].channels.get(channel, ())
                    if not isinstance(token, str)):
                continue  # a declared token takes its declared fields: delete and re-add
            raise AssertionError(f"{name}: {entry} deleted, written by others, under "
                                 f"{mode.value}, not listed for removal")
