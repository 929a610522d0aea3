"""Specifications of the call objects: the request each call is, and what each does to data."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.effects import after_call, target
from reconciler.model import EMPTY, ChannelData, Token
from reconciler.plan import (
    CALL_TYPES,
    Call,
    Change,
    CreateProfile,
    DeleteChannels,
    DeleteTokens,
    HttpRequest,
    PatchChannels,
    ReAddTokens,
    call_from_json,
)
from reconciler.planner import diff

FLIP = Change("push", Token("fcm_token:abc", "I1", 1), Token("fcm_token:abc", "I1", 0))
EMAIL = Change("email", None, "a@example.com")
NEW_TOKEN = Change("push", None, Token("fcm_token:new"))

# The distinct_id as one percent-encoded segment: `/` and `%` encoded, a dot-segment's dots
# encoded, non-ASCII as UTF-8.
HOSTILE_IDS = {
    "a/b": "a%2Fb",
    "..": "%2E%2E",
    ".": "%2E",
    "%2F": "%252F",
    "ünï": "%C3%BCn%C3%AF",
    "u 1?#": "u%201%3F%23",
}


def calls_for(distinct_id: str) -> dict[type[Call], Call]:
    return {
        PatchChannels: PatchChannels(distinct_id, (EMAIL, NEW_TOKEN)),
        DeleteTokens: DeleteTokens(distinct_id, (Change("push", Token("t1"), None), FLIP)),
        DeleteChannels: DeleteChannels(distinct_id, (Change("sms", "+1555", None),
                                                     Change("push", Token("t1"), None))),
        ReAddTokens: ReAddTokens(distinct_id, (FLIP,)),
        CreateProfile: CreateProfile(distinct_id, (EMAIL, NEW_TOKEN)),
    }


@pytest.mark.parametrize(("distinct_id", "segment"), HOSTILE_IDS.items())
def test_every_call_says_its_own_request(distinct_id: str, segment: str) -> None:
    calls = calls_for(distinct_id)
    requests = {kind: call.request() for kind, call in calls.items()}
    assert requests == {
        PatchChannels: HttpRequest("PATCH", f"/profiles/{segment}/channel", {"channel": {
            "email": "a@example.com", "push": [{"token": "fcm_token:new", "status": 1}]}}),
        DeleteTokens: HttpRequest("POST", f"/profiles/{segment}/channel/delete",
                                  {"push": ["t1", "fcm_token:abc"]}),
        DeleteChannels: HttpRequest("POST", f"/profiles/{segment}/channel/delete",
                                    {"channel": ["sms", "push"]}),
        ReAddTokens: HttpRequest("PATCH", f"/profiles/{segment}/channel", {"channel": {
            "push": [{"token": "fcm_token:abc", "integration_id": "I1", "status": 0}]}}),
        CreateProfile: HttpRequest("POST", "/profiles", {
            "distinct_id": distinct_id,
            "channel": {"email": "a@example.com",
                        "push": [{"token": "fcm_token:new", "status": 1}]}}),
    }


@pytest.mark.parametrize("distinct_id", HOSTILE_IDS)
def test_request_agrees_with_the_older_accessors(distinct_id: str) -> None:
    for call in calls_for(distinct_id).values():
        request = call.request()
        assert (request.method, request.path, request.body) == (
            call.method, call.path(), call.body())


@pytest.mark.parametrize("distinct_id", HOSTILE_IDS)
def test_saved_form_makes_the_same_request(distinct_id: str) -> None:
    # A saved plan holds a call's changes only: the request read back is the one planned.
    for kind, call in calls_for(distinct_id).items():
        if kind is CreateProfile:
            continue
        data = call.to_json()
        assert set(data) <= {"distinct_id", "operation", "changes", "forget"}
        assert data["operation"] == call.operation
        assert call_from_json(data) == call
        assert call_from_json(data).request() == call.request()


def test_a_request_is_a_frozen_value() -> None:
    request = PatchChannels("u1", (EMAIL,)).request()
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.method = "GET"  # type: ignore[misc]


def test_re_add_is_a_patch_sent_after_every_delete() -> None:
    assert issubclass(ReAddTokens, PatchChannels)
    assert (ReAddTokens.operation, ReAddTokens.method, ReAddTokens.endpoint) == (
        "readd_tokens", "PATCH", "/channel")
    ranks = [kind.rank for kind in (PatchChannels, DeleteTokens, DeleteChannels, ReAddTokens)]
    assert ranks == sorted(ranks) == [0, 1, 2, 3]


def test_saved_plans_know_every_planned_call_type_but_never_create() -> None:
    planned = {"patch_channel": PatchChannels, "delete_tokens": DeleteTokens,
               "delete_channels": DeleteChannels, "readd_tokens": ReAddTokens}
    assert dict(CALL_TYPES) == planned


def test_create_profile_instead_of_a_patch_sends_the_same_channel_data() -> None:
    patch = PatchChannels("a/b", (Change("sms", "+1555", "+1666"), EMAIL, NEW_TOKEN))
    create = CreateProfile.instead_of(patch)
    assert create == CreateProfile("a/b", patch.changes)
    assert create.operation == "create_profile"
    assert create.body() == {"distinct_id": "a/b", **patch.body()}
    assert create.body() == {"distinct_id": "a/b", "channel": {
        "sms": "+1666", "email": "a@example.com",
        "push": [{"token": "fcm_token:new", "status": 1}]}}


# --- effects: what a successful call does ---------------------------------------------------

def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def test_re_add_after_its_delete_leaves_the_token_with_its_new_fields() -> None:
    recorded = data(push=[{"token": "fcm_token:abc", "integration_id": "I1", "status": 1},
                          {"token": "other"}])
    deleted = after_call(recorded, DeleteTokens("u1", (FLIP,)))
    assert deleted == data(push=[{"token": "other"}])
    assert after_call(deleted, ReAddTokens("u1", (FLIP,))) == data(push=[
        {"token": "other"}, {"token": "fcm_token:abc", "integration_id": "I1", "status": 0}])


def test_re_add_refills_a_channel_its_delete_emptied() -> None:
    recorded = data(push=[{"token": "fcm_token:abc", "integration_id": "I1"}])
    calls = (DeleteTokens("u1", (FLIP,)), ReAddTokens("u1", (FLIP,)))
    assert after_call(recorded, calls[0]) == EMPTY
    assert target(recorded, calls) == data(push=[
        {"token": "fcm_token:abc", "integration_id": "I1", "status": 0}])


def test_target_of_a_planned_delete_and_re_add_ends_with_the_new_fields() -> None:
    recorded = data(email="a@example.com", push=[{"token": "t1"}, {"token": "t2"}])
    desired = data(email="a@example.com", push=[{"token": "t1", "status": 0},
                                                {"token": "t2", "integration_id": "I9"}])
    calls = diff({"u1": desired}, {"u1": recorded})
    assert [type(call) for call in calls] == [DeleteTokens, ReAddTokens]
    assert target(recorded, calls) == desired


def test_create_profile_holds_exactly_what_it_sent() -> None:
    create = CreateProfile("u1", (EMAIL, NEW_TOKEN))
    expected = data(email="a@example.com", push=[{"token": "fcm_token:new"}])
    assert after_call(EMPTY, create) == expected
    # The profile did not exist: whatever the record said it held is gone.
    assert after_call(data(sms="+1555", webpush=[{"token": {}}]), create) == expected


_tokens = st.builds(Token, st.text(min_size=1, max_size=5),
                    st.one_of(st.none(), st.text(min_size=1, max_size=3)), st.sampled_from([0, 1]))
_sides = st.one_of(st.none(), st.text(min_size=1, max_size=5), _tokens)


@given(st.sampled_from(["email", "push"]), _sides, _sides)
def test_a_change_read_back_is_the_change_written(channel: str, before: Any, after: Any) -> None:
    change = Change(channel, before, after)
    for form in (change.to_json(), change.to_json(compact=True)):
        read = Change.from_json(form)
        assert read == change and type(read) is Change
        assert [type(side) for side in read] == [type(side) for side in change]
    written = {"channel": "push", "after": {"token": "t", "status": 1.0}}  # JSON's 1.0
    assert Change.from_json(written).after == Token("t", None, 1)
    assert type(Change.from_json(written).after.status) is int  # type: ignore[union-attr]
