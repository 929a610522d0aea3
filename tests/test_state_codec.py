"""The JSON form of a state: any state survives encode and decode unchanged, and decoding
reads channel objects exactly as `ChannelData.from_json` does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import StateError
from reconciler.model import SINGLE_VALUE_CHANNELS, TOKEN_CHANNELS, ChannelData, Token
from reconciler.state import State
from reconciler.state.codec import decode, encode

LINEAGE = "0b7c2a4e-5d1f-4c3b-9a8e-6f2d1c0b9a87"
text = st.text(min_size=1, max_size=12)
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
states = st.builds(
    State,
    st.just(LINEAGE),
    st.integers(min_value=1, max_value=2**40),
    text,
    st.sampled_from(["live", "test"]),
    st.dictionaries(text, channel_data, max_size=5),
)


@settings(max_examples=200)
@given(states)
def test_any_state_survives_encode_and_decode(state: State) -> None:
    assert decode(encode(state), "memory") == state


@settings(max_examples=200)
@given(st.dictionaries(text, channel_data, max_size=5))
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
