"""The JSON form of a state: any state survives encode and decode unchanged, and decoding
reads channel objects exactly as `ChannelData.from_json` does."""

from __future__ import annotations

from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import StateCorruptError, StateError
from reconciler.model import SINGLE_VALUE_CHANNELS, TOKEN_CHANNELS, ChannelData, Token
from reconciler.ownership import entries
from reconciler.plan import (
    Call,
    Change,
    CreateProfile,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    ReAddTokens,
)
from reconciler.state import Doubt, State, codec
from reconciler.state.codec import decode, decode_channel, distinct_id_problem, encode

LINEAGE = "0b7c2a4e-5d1f-4c3b-9a8e-6f2d1c0b9a87"
text = st.text(min_size=1, max_size=12)
# A distinct_id is any non-empty text without NUL; a workspace names a file.
ids = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
              min_size=1, max_size=12)
workspaces = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                   blacklist_characters="/\\"), min_size=1, max_size=50)
tokens = st.builds(Token, text, st.none() | st.text(max_size=8), st.sampled_from([0, 1]))
channel_values = {
    **{name: text for name in SINGLE_VALUE_CHANNELS},
    **{name: st.lists(tokens, min_size=1, max_size=3).map(tuple) for name in TOKEN_CHANNELS},
}
channel_data = st.builds(
    ChannelData,
    st.fixed_dictionaries({}, optional=channel_values),
    st.dictionaries(st.sampled_from(["webpush", "custom"]),
                    st.none() | st.integers(-(2**63), 2**63 - 1)
                    | st.lists(st.text(max_size=4), max_size=2)),
)


@st.composite
def states(draw: st.DrawFn) -> State:
    unconfirmed = draw(st.sets(ids, max_size=3))
    doubted = draw(st.sets(st.sampled_from(sorted(unconfirmed)), max_size=len(unconfirmed))
                   if unconfirmed else st.just(set()))
    profiles = draw(st.dictionaries(ids, channel_data, max_size=5))
    return State(
        LINEAGE, draw(st.integers(min_value=1, max_value=2**52)), draw(workspaces),
        draw(st.sampled_from(["live", "test"])), profiles,
        unconfirmed, draw(st.sets(ids, max_size=3)),
        {name: tuple(Doubt(draw(st.uuids()).hex, call) for call in draw(
            st.lists(st.sampled_from(sent_calls(name)), min_size=1, max_size=2)))
         for name in sorted(doubted)},
        {name: entries(data) for name, data in sorted(profiles.items())
         if entries(data) and draw(st.booleans())})


def sent_calls(distinct_id: str) -> list[Call]:
    token = Token("t1", None, 0)
    return [PatchChannels(distinct_id, (Change("email", "a@b.c", "x@y.io"),)),
            CreateProfile(distinct_id, (Change("inapp", None, token),)),
            DeleteTokens(distinct_id, (Change("push", token, None),)),
            DeleteChannels(distinct_id, (Change("sms", "+1555", None),), forget=True),
            ReAddTokens(distinct_id, (Change("push", token, token._replace(status=1)),))]


@settings(max_examples=200)
@given(states())
def test_any_state_survives_encode_and_decode(state: State) -> None:
    assert decode(encode(state), "memory") == state


@settings(max_examples=200)
@given(states())
def test_a_state_encoded_in_blocks_is_the_bytes_of_its_whole_document(state: State) -> None:
    document: dict[str, Any] = {
        "format_version": 1, "lineage": state.lineage, "serial": state.serial,
        "workspace": state.workspace, "version": state.version,
        "profiles": {key: state.profiles[key].to_json() for key in sorted(state.profiles)}}
    if state.unconfirmed:
        document["unconfirmed"] = sorted(state.unconfirmed)
    if state.managed:
        document["managed"] = {key: codec._managed_json(state.managed[key])
                               for key in sorted(state.managed)}
    if state.doubts:
        document["doubts"] = {key: [codec.doubt_to_json(doubt) for doubt in doubts]
                              for key, doubts in sorted(state.doubts.items())}
    if state.missing:
        document["missing"] = sorted(state.missing)
    whole = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    with mock.patch.object(codec, "PROFILES_PER_BLOCK", 2):
        assert encode(state) == whole


def test_an_invalid_profile_in_a_later_block_is_refused() -> None:
    profiles = {f"u-{n}": ChannelData() for n in range(5)}
    profiles["u-4"] = ChannelData({"push": (Token("t", None, 7),)})  # status 0 or 1 only
    with mock.patch.object(codec, "PROFILES_PER_BLOCK", 2), \
            pytest.raises(StateError, match=r"refusing to save an invalid state: .*u-4"):
        encode(State(LINEAGE, 1, "FYTEST", "live", profiles))


def test_an_invalid_managed_entry_in_a_later_block_is_refused() -> None:
    profiles = {f"u-{n}": ChannelData({"inapp": (Token("t"),)}) for n in range(5)}
    managed = {key: frozenset({("inapp", "t")}) for key in profiles}
    managed["u-4"] = frozenset({("inapp", "")})  # a token is never empty
    with mock.patch.object(codec, "PROFILES_PER_BLOCK", 2), \
            pytest.raises(StateError, match=r"refusing to save an invalid state: .*u-4"):
        encode(State(LINEAGE, 1, "FYTEST", "live", profiles, managed=managed))


@settings(max_examples=200)
@given(st.dictionaries(ids, channel_data, max_size=5))
def test_decoding_reads_channels_exactly_as_the_model_does(profiles: dict[str, Any]) -> None:
    data = encode(State(LINEAGE, 1, "FYTEST", "live", profiles))
    raw = orjson.loads(data)["profiles"]
    decoded = decode(data, "memory").profiles
    assert decoded == {key: ChannelData.from_json(value) for key, value in raw.items()}
    assert all(isinstance(value, tuple) for data in decoded.values()
               for value in data.channels.values() if not isinstance(value, str))


def test_a_value_json_cannot_hold_is_a_state_error() -> None:
    state = State(LINEAGE, 1, "FYTEST", "live", {"u-1": ChannelData({}, {"webpush": 2**64})})
    with pytest.raises(StateError, match="refusing to save a state JSON cannot hold"):
        encode(state)


def test_an_id_json_cannot_hold_is_a_state_error_not_a_crash() -> None:
    # A command-line argument that was not UTF-8 arrives as a lone surrogate.
    state = State(LINEAGE, 1, "FYTEST", "live", {"u-\udcff": ChannelData()})
    with pytest.raises(StateError, match="refusing to save a state JSON cannot hold"):
        encode(state)


@settings(max_examples=200)
@given(channel_data)
def test_a_channel_read_back_from_elsewhere_decodes_as_in_the_state(data: ChannelData) -> None:
    assert decode_channel(orjson.loads(orjson.dumps(data.to_json())), "journal:2") == data


@pytest.mark.parametrize(("value", "message"), [
    ({"email": 5}, "journal:2: not a profile's channel data: at /email: an integer where a "
                   "string is expected"),
    ({"push": []}, "at /push: an empty array"),
    ({"push": [{"token": "t", "status": True}]}, "at /push/0/status: not one of 0, 1"),
    ([], "at the top level: an array where an object is expected"),
])
def test_a_channel_read_back_with_a_wrong_field_is_refused(value: object, message: str) -> None:
    with pytest.raises(StateCorruptError) as raised:
        decode_channel(value, "journal:2")
    assert message in str(raised.value)


@pytest.mark.parametrize(("value", "problem"), [
    ("u-1001", None), ("ü-用户", None), ("e\u0301", None), ("tab\there", None),
    ("", "an empty string"), ("u\x00", "holds the control character U+0000"),
    (1001, "an integer where a string is expected"), (None, "null where a string is expected"),
    # A command-line argument that was not UTF-8: refused, not a crash.
    ("u-\udcff", "holds text that is not Unicode (a lone surrogate, as a command-line argument "
                 "that is not UTF-8 gives)"),
])
def test_distinct_id_rules(value: object, problem: str | None) -> None:
    assert distinct_id_problem(value) == problem
