"""Specifications of the planner: one test per rule of "Semantics of a plan"."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.effects import target
from reconciler.model import SINGLE_VALUE_CHANNELS, TOKEN_CHANNELS, ChannelData, Token
from reconciler.ownership import EXCLUSIVE, Ownership
from reconciler.plan import (
    Change,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    Plan,
    ReAddTokens,
    summarize,
)
from reconciler.planner import diff, forgotten_without_calls
from reconciler.state.base import State


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def test_identical_desired_and_recorded_plan_nothing() -> None:
    profile = data(email="a@example.com", push=[{"token": "t1"}])
    assert diff({"u1": profile}, {"u1": profile}) == ()


def test_channel_recorded_but_not_declared_is_deleted_whole_with_option_1() -> None:
    calls = diff({"u1": data(email="a@x.io")}, {"u1": data(email="a@x.io", sms="+1555")})
    assert len(calls) == 1
    assert isinstance(calls[0], DeleteChannels)
    assert calls[0].body() == {"channel": ["sms"]}
    assert not calls[0].forget


def test_all_undeclared_channels_of_a_profile_go_in_one_option_1_call() -> None:
    recorded = data(sms="+1555", email="a@x.io", push=[{"token": "t1"}, {"token": "t2"}])
    calls = diff({"u1": data()}, {"u1": recorded})
    assert [call.body() for call in calls] == [{"channel": ["sms", "email", "push"]}]
    assert [change.action for change in calls[0].changes] == ["-", "-", "-", "-"]


def test_token_channel_declared_empty_is_deleted_whole() -> None:
    calls = diff({"u1": data(push=[])}, {"u1": data(push=[{"token": "t1"}])})
    assert [call.body() for call in calls] == [{"channel": ["push"]}]


def test_removed_token_is_deleted_with_option_2() -> None:
    recorded = data(push=[{"token": "keep"}, {"token": "gone"}])
    calls = diff({"u1": data(push=[{"token": "keep"}])}, {"u1": recorded})
    assert len(calls) == 1
    assert isinstance(calls[0], DeleteTokens)
    assert calls[0].body() == {"push": ["gone"]}


def test_option_2_body_has_only_the_keys_that_have_tokens() -> None:
    recorded = data(push=[{"token": "p1"}, {"token": "p2"}],
                    inapp=[{"token": "i1"}, {"token": "i2"}])
    desired = data(push=[{"token": "p1"}], inapp=[{"token": "i1"}, {"token": "i2"}])
    (call,) = diff({"u1": desired}, {"u1": recorded})
    assert call.body() == {"push": ["p2"]}
    both = diff({"u1": data(push=[{"token": "p1"}], inapp=[{"token": "i2"}])}, {"u1": recorded})
    assert both[0].body() == {"push": ["p2"], "inapp": ["i1"]}


def test_new_and_changed_values_go_in_one_patch() -> None:
    recorded = data(email="old@x.io", push=[{"token": "t1"}])
    desired = data(email="new@x.io", sms="+1555", push=[{"token": "t1"}, {"token": "t2"}])
    (call,) = diff({"u1": desired}, {"u1": recorded})
    assert isinstance(call, PatchChannels)
    assert call.body() == {"channel": {"sms": "+1555", "email": "new@x.io",
                                       "push": [{"token": "t2", "status": 1}]}}
    assert [change.action for change in call.changes] == ["+", "~", "+"]


def test_status_flip_is_deleted_with_option_2_then_re_added() -> None:
    old, new = Token("t1", None, 1), Token("t1", None, 0)
    recorded = data(push=[{"token": "t1", "status": 1}, {"token": "t2"}])
    desired = data(push=[{"token": "t1", "status": 0}, {"token": "t2"}])
    calls = diff({"u1": desired}, {"u1": recorded})
    change = Change("push", old, new)
    assert calls == (DeleteTokens("u1", (change,)), ReAddTokens("u1", (change,)))
    assert change.action == "~"
    assert calls[0].body() == {"push": ["t1"]}
    assert calls[1].body() == {"channel": {"push": [{"token": "t1", "status": 0}]}}


def test_integration_id_change_is_deleted_with_option_2_then_re_added() -> None:
    recorded = data(inapp=[{"token": "i1", "integration_id": "I1"}])
    desired = data(inapp=[{"token": "i1", "integration_id": "I2"}])
    delete, readd = diff({"u1": desired}, {"u1": recorded})
    assert isinstance(delete, DeleteTokens) and isinstance(readd, ReAddTokens)
    assert delete.changes == readd.changes == (
        Change("inapp", Token("i1", "I1", 1), Token("i1", "I2", 1)),)
    assert delete.body() == {"inapp": ["i1"]}
    assert readd.body() == {"channel": {"inapp": [{"token": "i1", "integration_id": "I2",
                                                   "status": 1}]}}
    assert readd.request().method == "PATCH"
    assert readd.path() == "/profiles/u1/channel"


def test_integration_id_dropped_is_a_field_change_too() -> None:
    recorded = data(push=[{"token": "t1", "integration_id": "I1"}])
    (_, readd) = diff({"u1": data(push=[{"token": "t1"}])}, {"u1": recorded})
    assert readd.body() == {"channel": {"push": [{"token": "t1", "status": 1}]}}


def test_a_patch_never_sends_a_token_the_record_holds() -> None:
    recorded = data(email="a@x.io", push=[{"token": "t1"}])
    desired = data(email="b@x.io", push=[{"token": "t1", "status": 0}, {"token": "t2"}])
    patch, delete, readd = diff({"u1": desired}, {"u1": recorded})
    assert type(patch) is PatchChannels
    assert patch.body() == {"channel": {"email": "b@x.io",
                                        "push": [{"token": "t2", "status": 1}]}}
    assert delete.body() == {"push": ["t1"]}
    assert readd.body() == {"channel": {"push": [{"token": "t1", "status": 0}]}}


def test_removed_and_changed_tokens_share_one_option_2_call() -> None:
    recorded = data(push=[{"token": "gone"}, {"token": "flip"}, {"token": "kept"}],
                    inapp=[{"token": "i1", "status": 0}])
    desired = data(push=[{"token": "flip", "status": 0}, {"token": "kept"}],
                   inapp=[{"token": "i1", "status": 1}])
    delete, readd = diff({"u1": desired}, {"u1": recorded})
    assert delete.body() == {"push": ["gone", "flip"], "inapp": ["i1"]}
    assert [change.action for change in delete.changes] == ["-", "~", "~"]
    assert readd.body() == {"channel": {"push": [{"token": "flip", "status": 0}],
                                        "inapp": [{"token": "i1", "status": 1}]}}


def test_a_channel_whose_every_token_changes_is_emptied_by_option_2_then_refilled() -> None:
    recorded = data(push=[{"token": "t1"}, {"token": "t2"}, {"token": "gone"}])
    desired = data(push=[{"token": "t1", "status": 0}, {"token": "t2", "integration_id": "I"}])
    delete, readd = diff({"u1": desired}, {"u1": recorded})
    assert isinstance(delete, DeleteTokens)
    assert delete.body() == {"push": ["t1", "t2", "gone"]}
    assert isinstance(readd, ReAddTokens)
    assert readd.body() == {"channel": {"push": [
        {"token": "t1", "status": 0}, {"token": "t2", "integration_id": "I", "status": 1}]}}


def test_changed_token_counts_once_as_a_change_never_as_a_removal() -> None:
    recorded = data(push=[{"token": "t1"}])
    calls = diff({"u1": data(push=[{"token": "t1", "status": 0}])}, {"u1": recorded})
    summary = summarize(calls)
    assert (summary.add, summary.change, summary.remove) == (0, 1, 0)
    assert summary.calls == {"patch_channel": 0, "delete_tokens": 1, "delete_channels": 0,
                             "readd_tokens": 1}
    assert summary.profiles == 1


def test_status_flips_do_not_trip_the_safety_rail() -> None:
    tokens = [{"token": f"t{index:02}", "status": 1} for index in range(20)]
    recorded = {"u1": data(push=tokens)}
    desired = {"u1": data(push=[{**token, "status": 0} for token in tokens])}
    plan = Plan(plan_id="p", created_at="2024-05-01T10:00:00Z", workspace="FY1",
                version="live", lineage="l", serial=1, config_digest="sha256:00",
                recorded_entries=20, calls=diff(desired, recorded))
    assert [type(call) for call in plan.calls] == [DeleteTokens, ReAddTokens]
    assert len(plan.calls[0].body()["push"]) == 20
    assert (plan.summary.change, plan.deletions) == (20, 0)
    assert plan.check_deletions(30, force=False) is plan


def test_token_without_status_equals_recorded_status_1() -> None:
    assert diff({"u1": data(push=[{"token": "t1"}])},
                {"u1": data(push=[{"token": "t1", "status": 1}])}) == ()


def test_replacement_token_is_added_before_the_old_one_is_deleted() -> None:
    calls = diff({"u1": data(push=[{"token": "new"}])}, {"u1": data(push=[{"token": "old"}])})
    assert [type(call) for call in calls] == [PatchChannels, DeleteTokens]


def test_patch_precedes_option_2_precedes_option_1_within_a_profile() -> None:
    recorded = data(sms="+1555", push=[{"token": "a"}, {"token": "b"}])
    desired = data(email="e@x.io", push=[{"token": "a"}])
    calls = diff({"u1": desired}, {"u1": recorded})
    assert [type(call) for call in calls] == [PatchChannels, DeleteTokens, DeleteChannels]


def test_re_add_comes_last_within_a_profile_after_every_delete() -> None:
    recorded = data(sms="+1555", push=[{"token": "a"}, {"token": "b"}, {"token": "c"}])
    desired = data(email="e@x.io", push=[{"token": "a", "status": 0}, {"token": "b"},
                                         {"token": "new"}])
    calls = diff({"u0": data(email="x@x.io"), "u1": desired, "u2": data(push=[{"token": "p"}])},
                 {"u1": recorded, "u2": data(push=[{"token": "p", "status": 0}])})
    assert [(call.distinct_id, type(call)) for call in calls] == [
        ("u0", PatchChannels),
        ("u1", PatchChannels), ("u1", DeleteTokens), ("u1", DeleteChannels),
        ("u1", ReAddTokens),
        ("u2", DeleteTokens), ("u2", ReAddTokens),
    ]
    assert [call.rank for call in calls[1:5]] == [0, 1, 2, 3]
    assert calls[1].body() == {"channel": {"email": "e@x.io",
                                           "push": [{"token": "new", "status": 1}]}}
    assert calls[2].body() == {"push": ["a", "c"]}
    assert calls[3].body() == {"channel": ["sms"]}
    assert calls[4].body() == {"channel": {"push": [{"token": "a", "status": 0}]}}


def test_calls_are_ordered_by_distinct_id() -> None:
    desired = {name: data(email=f"{name}@x.io") for name in ("b", "a", "c")}
    assert [call.distinct_id for call in diff(desired, {})] == ["a", "b", "c"]


def test_profile_no_longer_declared_is_deleted_and_forgotten() -> None:
    recorded = {"gone": data(sms="+1555", push=[{"token": "t"}], webpush=["kept"])}
    (call,) = diff({}, recorded)
    assert isinstance(call, DeleteChannels)
    assert call.forget
    assert call.body() == {"channel": ["sms", "push"]}


def test_profile_declared_empty_and_not_recorded_needs_no_call() -> None:
    assert diff({"u-1002": data()}, {}) == ()


def test_unmanaged_channels_are_never_planned_for_deletion() -> None:
    recorded = data(email="a@x.io", webpush=[{"token": "w"}])
    assert diff({"u1": data(email="a@x.io")}, {"u1": recorded}) == ()


def test_target_restricts_the_plan_to_those_profiles() -> None:
    desired = {"a": data(email="a@x.io"), "b": data(email="b@x.io")}
    recorded = {"c": data(email="c@x.io")}
    assert [call.distinct_id for call in diff(desired, recorded, targets=["b", "c"])] == ["b", "c"]
    assert diff(desired, recorded, targets=["nobody"]) == ()


def test_distinct_id_is_one_percent_encoded_path_segment() -> None:
    (call,) = diff({"a/b?c#d %": data(email="e@x.io")}, {})
    assert call.path() == "/profiles/a%2Fb%3Fc%23d%20%25/channel"


# --- property: executing the plan against a model of the API yields the desired state -------

def api_model_execute(server: dict[str, dict[str, Any]], call: Any) -> None:
    """Fyno's documented semantics: PATCH replaces values and INSERTS tokens; Option 1 removes
    whole channels; Option 2 removes tokens by string. What a PATCH does with a token already
    held is an UNKNOWN of the API, so a plan must never rely on it."""
    profile = server.setdefault(call.distinct_id, {})
    body = call.body()
    if isinstance(call, PatchChannels):
        for channel, value in body["channel"].items():
            if channel in TOKEN_CHANNELS:
                held = {item["token"] for item in profile.get(channel, [])}
                assert not held & {item["token"] for item in value}, "re-sent a held token"
                profile[channel] = [*profile.get(channel, []), *value]
            else:
                profile[channel] = value
    elif isinstance(call, DeleteChannels):
        for channel in body["channel"]:
            profile.pop(channel)
    else:
        for channel, names in body.items():
            profile[channel] = [t for t in profile[channel] if t["token"] not in names]
            if not profile[channel]:
                del profile[channel]


tokens_strategy = st.lists(
    st.builds(Token, st.sampled_from(["t1", "t2", "t3", "t4"]),
              st.sampled_from([None, "I1"]), st.sampled_from([0, 1])),
    max_size=4, unique_by=lambda token: token.token,
).map(tuple)

channel_data_strategy = st.builds(
    lambda singles, tokens: ChannelData({**singles, **{k: v for k, v in tokens.items() if v}}),
    st.dictionaries(st.sampled_from(SINGLE_VALUE_CHANNELS), st.sampled_from(["x", "y"]),
                    max_size=4),
    st.dictionaries(st.sampled_from(TOKEN_CHANNELS), tokens_strategy, max_size=2),
)
profiles_strategy = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), channel_data_strategy,
                                    max_size=4)


def as_server(profiles: dict[str, ChannelData]) -> dict[str, dict[str, Any]]:
    return {name: profile.to_json() for name, profile in profiles.items()}


@settings(max_examples=400)
@given(desired=profiles_strategy, recorded=profiles_strategy)
def test_plan_executed_against_the_api_model_yields_exactly_the_desired_state(
    desired: dict[str, ChannelData], recorded: dict[str, ChannelData]
) -> None:
    server = as_server(recorded)
    calls = diff(desired, recorded)
    for call in calls:
        api_model_execute(server, call)
    result = {name: ChannelData.from_json(body) for name, body in server.items()}
    for name in desired.keys() | recorded.keys():
        expected = desired.get(name, ChannelData())
        got = result.get(name, ChannelData())
        assert ignoring_token_order(got) == ignoring_token_order(expected)


@settings(max_examples=400)
@given(desired=profiles_strategy, recorded=profiles_strategy)
def test_effects_of_the_plan_calls_in_order_yield_exactly_the_desired_state(
    desired: dict[str, ChannelData], recorded: dict[str, ChannelData]
) -> None:
    calls = diff(desired, recorded)
    for name in desired.keys() | recorded.keys():
        mine = [call for call in calls if call.distinct_id == name]
        got = target(recorded.get(name, ChannelData()), mine)
        if name not in desired and mine:
            assert isinstance(mine[-1], DeleteChannels) and mine[-1].forget
        expected = desired.get(name, ChannelData())
        assert ignoring_token_order(got) == ignoring_token_order(expected)


@settings(max_examples=300)
@given(desired=profiles_strategy, recorded=profiles_strategy)
def test_summary_counts_each_entry_once_by_what_happens_to_it(
    desired: dict[str, ChannelData], recorded: dict[str, ChannelData]
) -> None:
    add = change = remove = 0
    for name in desired.keys() | recorded.keys():
        want = entries(desired.get(name, ChannelData()))
        have = entries(recorded.get(name, ChannelData()))
        add += len(want.keys() - have.keys())
        remove += len(have.keys() - want.keys())
        change += sum(want[key] != have[key] for key in want.keys() & have.keys())
    summary = summarize(diff(desired, recorded))
    assert (summary.add, summary.change, summary.remove) == (add, change, remove)


def entries(profile: ChannelData) -> dict[tuple[str, str], str | Token]:
    """Each entry by its identity: the channel for a single value, channel and string for a
    token."""
    found: dict[tuple[str, str], str | Token] = {}
    for channel, value in profile.channels.items():
        if isinstance(value, str):
            found[(channel, "")] = value
        else:
            found.update({(channel, token.token): token for token in value})
    return found


def ignoring_token_order(profile: ChannelData) -> dict[str, Any]:
    """Token identity is the token string; the order of a token list carries no meaning."""
    return {channel: value if isinstance(value, str) else sorted(value, key=lambda t: t.token)
            for channel, value in profile.channels.items()}


@settings(max_examples=300)
@given(desired=profiles_strategy, recorded=profiles_strategy)
def test_no_call_mixes_option_1_and_option_2(
    desired: dict[str, ChannelData], recorded: dict[str, ChannelData]
) -> None:
    for call in diff(desired, recorded):
        body = call.body()
        assert body, "a call never has an empty body"
        if isinstance(call, DeleteChannels):
            assert set(body) == {"channel"}
            assert all(isinstance(name, str) for name in body["channel"])
        elif isinstance(call, DeleteTokens):
            assert set(body) <= {"push", "inapp"}
            assert all(names and all(isinstance(n, str) for n in names) for names in body.values())
        else:
            assert set(body) == {"channel"} and isinstance(body["channel"], dict)


@given(desired=profiles_strategy)
def test_planning_desired_against_itself_is_empty(desired: dict[str, ChannelData]) -> None:
    assert diff(desired, desired) == ()


@given(desired=profiles_strategy, recorded=profiles_strategy)
def test_at_most_one_call_of_each_kind_per_profile_in_fixed_order(
    desired: dict[str, ChannelData], recorded: dict[str, ChannelData]
) -> None:
    calls = diff(desired, recorded)
    keys = [call.sort_key() for call in calls]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


def test_a_token_the_server_holds_twice_is_deleted_then_added_back_once() -> None:
    recorded = data(push=[{"token": "t1", "status": 1}, {"token": "t1", "status": 0},
                          {"token": "t2"}])
    desired = data(push=[{"token": "t1", "status": 0}, {"token": "t2"}])
    (call,) = diff({"u1": desired}, {"u1": recorded})
    assert isinstance(call, DeleteTokens)
    assert call.body() == {"push": ["t1"]}
    server = {"u1": recorded.to_json()}
    api_model_execute(server, call)
    (again,) = diff({"u1": desired}, {"u1": ChannelData.from_json(server["u1"])})
    assert isinstance(again, PatchChannels)
    assert again.body() == {"channel": {"push": [{"token": "t1", "status": 0}]}}


def test_recorded_profile_with_no_channel_data_leaves_without_a_call() -> None:
    recorded = {"empty": data(), "full": data(sms="+1555"), "kept": data()}
    calls = diff({"kept": data()}, recorded)
    assert forgotten_without_calls({"kept": data()}, recorded, calls) == ("empty",)
    assert forgotten_without_calls({}, recorded, diff({}, recorded, ["full"]),
                                   targets=["full"]) == ()
    (call,) = calls
    assert call.distinct_id == "full" and isinstance(call, DeleteChannels) and call.forget


@given(desired=profiles_strategy, recorded=profiles_strategy)
def test_the_loop_for_a_wholly_exclusive_configuration_plans_as_the_general_one(
        desired: dict[str, ChannelData], recorded: dict[str, ChannelData]) -> None:
    # A policy for a profile that no side names: every profile is exclusive, but `diff`
    # can no longer take its shortcut.
    general = Ownership(profiles={"z-unnamed": EXCLUSIVE})
    assert not general.is_exclusive
    assert diff(desired, recorded) == diff(desired, recorded, ownership=general)


def test_a_state_counts_one_entry_per_value_and_per_token() -> None:
    state = State.new("FYW", "live")
    state.profiles.update({"u-1": data(email="a@b.io", push=[{"token": "t1"}, {"token": "t2"}]),
                           "u-2": data(sms="+919879000000", inapp=[{"token": "t3"}]),
                           "u-3": ChannelData()})
    assert state.entry_count() == 5 == sum(
        profile.entry_count() for profile in state.profiles.values())
