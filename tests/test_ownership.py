"""Ownership modes: what a declaration means when a channel is shared with the app, and what
the planner makes of it (`reconciler.ownership`, `reconciler.planner`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.drift import compare
from reconciler.effects import target
from reconciler.model import ChannelData, Token
from reconciler.ownership import (
    EXCLUSIVE,
    Mode,
    Ownership,
    Policy,
    declared_part,
    effective,
    unmanaged,
    webpush_key,
)
from reconciler.plan import (
    Change,
    CreateProfile,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    Plan,
)
from reconciler.planfile import read_plan, write_plan
from reconciler.planner import diff, forgotten_without_calls
from reconciler.state import Begun, Doubt, Holds, State, apply_event

OWNED_PUSH = Policy({"push": Mode.OWNED})


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def push(*names: str) -> list[dict[str, Any]]:
    return [{"token": name} for name in names]


def test_exclusive_is_todays_meaning_the_declaration_is_complete() -> None:
    (call,) = diff({"u": data(push=push("t1"))}, {"u": data(push=push("t1", "app"))})
    assert isinstance(call, DeleteTokens) and call.body() == {"push": ["app"]}


def test_under_owned_a_token_the_app_added_is_kept_and_shown_as_unmanaged() -> None:
    recorded = data(push=push("t1", "app"))
    ownership = Ownership(OWNED_PUSH)
    assert diff({"u": data(push=push("t1"))}, {"u": recorded}, ownership=ownership,
                managed={"u": frozenset({("push", "t1")})}) == ()
    assert unmanaged(recorded, OWNED_PUSH, frozenset({("push", "t1")})) == (("push", "app"),)


def test_under_owned_a_token_the_reconciler_wrote_and_dropped_is_deleted_by_name() -> None:
    recorded = data(push=push("t1", "app"))
    (call,) = diff({"u": data()}, {"u": recorded}, ownership=Ownership(OWNED_PUSH),
                   managed={"u": frozenset({("push", "t1")})})
    assert isinstance(call, DeleteTokens) and call.body() == {"push": ["t1"]}


def test_under_owned_the_last_token_of_ours_goes_by_name_never_with_the_channel() -> None:
    # Option 1 would take whatever tokens the app registered since the last read.
    (call,) = diff({"u": data()}, {"u": data(push=push("t1"))}, ownership=Ownership(OWNED_PUSH),
                   managed={"u": frozenset({("push", "t1")})})
    assert isinstance(call, DeleteTokens) and call.body() == {"push": ["t1"]}


def test_an_explicit_removal_deletes_a_token_the_reconciler_never_owned() -> None:
    policy = Policy({"push": Mode.OWNED}, frozenset({("push", "leaked")}))
    (call,) = diff({"u": data(push=push("t1"))}, {"u": data(push=push("t1", "leaked", "app"))},
                   ownership=Ownership(profiles={"u": policy}))
    assert isinstance(call, DeleteTokens) and call.body() == {"push": ["leaked"]}


def test_an_explicit_removal_works_under_ignored_and_exclusive_too() -> None:
    for mode in (Mode.IGNORED, Mode.EXCLUSIVE):
        policy = Policy({"push": mode}, frozenset({("push", "leaked")}))
        calls = diff({"u": data(push=push("t1", "app"))},
                     {"u": data(push=push("t1", "leaked", "app"))},
                     ownership=Ownership(profiles={"u": policy}))
        assert [call.body() for call in calls] == [{"push": ["leaked"]}], mode


def test_a_removal_that_is_done_leaves_the_plan() -> None:
    policy = Policy({}, frozenset({("push", "leaked")}))
    assert diff({"u": data(push=push("t1"))}, {"u": data(push=push("t1"))},
                ownership=Ownership(profiles={"u": policy})) == ()


def test_under_ignored_nothing_is_planned_whatever_the_server_holds() -> None:
    policy = Policy({channel: Mode.IGNORED for channel in ("email", "sms", "push", "inapp")})
    assert diff({"u": data(email="a@x.io", push=push("t1"))},
                {"u": data(email="b@x.io", sms="+15550100001", inapp=push("i"))},
                ownership=Ownership(policy)) == ()


def test_under_owned_a_declared_value_replaces_what_others_wrote() -> None:
    (call,) = diff({"u": data(email="a@x.io")}, {"u": data(email="dash@x.io")},
                   ownership=Ownership(Policy({"email": Mode.OWNED})))
    assert isinstance(call, PatchChannels) and call.body() == {"channel": {"email": "a@x.io"}}


def test_under_owned_an_undeclared_value_is_deleted_only_if_ours() -> None:
    ownership = Ownership(Policy({"email": Mode.OWNED}))
    assert diff({"u": data()}, {"u": data(email="dash@x.io")}, ownership=ownership) == ()
    (call,) = diff({"u": data()}, {"u": data(email="a@x.io")}, ownership=ownership,
                   managed={"u": frozenset({("email", "a@x.io")})})
    assert isinstance(call, DeleteChannels) and call.channels() == ["email"]


def test_a_profile_leaving_the_configuration_keeps_what_others_wrote_and_is_forgotten() -> None:
    recorded = {"u": data(email="a@x.io", push=push("t1", "app"))}
    ownership = Ownership(OWNED_PUSH)
    calls = diff({}, recorded, ownership=ownership, managed={"u": frozenset({("push", "t1")})})
    assert [type(call) for call in calls] == [DeleteTokens, DeleteChannels]
    assert calls[0].body() == {"push": ["t1"]}
    assert isinstance(calls[1], DeleteChannels) and not calls[1].forget
    assert calls[1].channels() == ["email"]
    assert forgotten_without_calls({}, recorded, calls) == ("u",)


def test_declared_part_drops_only_what_is_kept_for_others() -> None:
    recorded = data(push=push("t1", "app"))
    goal = data(push=push("t1", "t2", "app"))
    assert declared_part(goal, recorded, OWNED_PUSH, frozenset({("push", "t1")})) == data(
        push=push("t1", "t2"))
    assert declared_part(goal, recorded, EXCLUSIVE, frozenset()) == goal


def test_effective_of_an_exclusive_policy_is_the_declaration() -> None:
    desired = data(email="a@x.io")
    assert effective(desired, data(push=push("x")), EXCLUSIVE, frozenset()) is desired


def test_what_a_call_of_ours_wrote_becomes_managed_and_leaves_with_the_entry() -> None:
    state = State("l", 1, "FYW", "live", profiles={"u": data(push=push("app"))})
    call = PatchChannels("u", (Change("push", None, Token("t1")),
                               Change("email", None, "A@Example.COM")))
    apply_event(state, Begun("u", Doubt("ab" * 16, call)))
    apply_event(state, Holds("u", data(email="A@example.com", push=push("app", "t1"))))
    assert state.managed["u"] == {("push", "t1"), ("email", "A@example.com")}
    apply_event(state, Holds("u", data(push=push("app"))))  # deleted by someone: not ours
    assert "u" not in state.managed


def test_a_created_profile_is_ours() -> None:
    state = State("l", 1, "FYW", "live")
    apply_event(state, Begun("u", Doubt("ab" * 16, CreateProfile("u", (
        Change("sms", None, "+1 555 010 0001"),)))))
    apply_event(state, Holds("u", data(sms="+15550100001")))
    assert state.managed["u"] == {("sms", "+15550100001")}


def test_refresh_reports_what_others_wrote_in_shared_channels_as_foreign_not_drift() -> None:
    drift = compare("u", data(push=push("t1"), email="a@x.io"),
                    data(push=push("t1", "app"), email="b@x.io"),
                    policy=Policy({"push": Mode.OWNED}), managed=frozenset({("push", "t1")}))
    assert drift is not None and drift.is_drift  # the exclusive email changed: drift
    assert [change.channel for change in drift.changes] == ["email"]
    assert [change.after for change in drift.foreign] == [Token("app")]
    gone = compare("u", data(push=push("t1")), data(), policy=OWNED_PUSH,
                   managed=frozenset({("push", "t1")}))
    assert gone is not None and gone.is_drift  # a token of ours was deleted: drift


def test_a_saved_plan_carries_its_policies(tmp_path: Path) -> None:
    policy = Policy({"push": Mode.OWNED, "sms": Mode.IGNORED},
                    frozenset({("push", "leaked"), ("email", "old@x.io")}))
    plan = Plan(plan_id="p", created_at="2026-11-30T00:00:00Z", workspace="FYW",
                version="live", lineage=None, serial=0, config_digest="sha256:" + "0" * 64,
                recorded_entries=0, calls=(), policies={"u": policy})
    write_plan(plan, tmp_path / "plan.json")
    assert read_plan(tmp_path / "plan.json").policies == {"u": policy}


def test_a_web_push_token_listed_for_removal_is_deleted_in_a_call_of_its_own() -> None:
    subscription = {"endpoint": "https://push.example.com/x", "keys": {"auth": "a"}}
    held = ChannelData.from_json({"push": [{"token": "t1"}, {"token": "t2"}], "webpush": [
        {"token": subscription, "status": 1}, {"token": {"endpoint": "https://other"}}]})
    policy = Policy({}, frozenset({("webpush", webpush_key(subscription)),
                                   ("push", "t1")}))
    want = {"u": data(push=push("t2"))}
    calls = diff(want, {"u": held}, ownership=Ownership(profiles={"u": policy}))
    assert [call.body() for call in calls] == [{"push": ["t1"]}, {"webpush": [subscription]}]
    after = target(held, calls)
    assert after.unmanaged == {"webpush": [{"token": {"endpoint": "https://other"}}]}
    # Done: nothing more to plan; and never planned without being listed.
    assert diff(want, {"u": after}, ownership=Ownership(profiles={"u": policy})) == ()
    assert [call.body() for call in diff(want, {"u": held})] == [{"push": ["t1"]}]


def test_a_web_push_removal_survives_a_saved_plan(tmp_path: Path) -> None:
    policy = Policy({}, frozenset({("webpush", webpush_key({"endpoint": "e"})),
                                   ("webpush", webpush_key("plain"))}))
    held = ChannelData.from_json({"webpush": [{"token": {"endpoint": "e"}}, {"token": "plain"}]})
    calls = diff({"u": data()}, {"u": held}, ownership=Ownership(profiles={"u": policy}))
    plan = Plan(plan_id="p", created_at="2026-11-30T00:00:00Z", workspace="FYW",
                version="live", lineage=None, serial=0, config_digest="sha256:" + "0" * 64,
                recorded_entries=0, calls=calls, policies={"u": policy})
    write_plan(plan, tmp_path / "plan.json")
    again = read_plan(tmp_path / "plan.json")
    assert again.policies == {"u": policy}
    assert [call.body() for call in again.calls] == [{"webpush": [{"endpoint": "e"}, "plain"]}]
