"""Specifications of masking: each kind of personal value keeps only what identifies its kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.mask import display_token, display_value, mask
from reconciler.model import CHANNELS, Token


def test_email_keeps_first_letter_and_domain() -> None:
    assert mask("email", "alice@example.com") == "a•••@example.com"


def test_email_with_one_letter_local_part_shows_none_of_it() -> None:
    assert mask("email", "a@example.com") == "•••@example.com"


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "voice"])
def test_phone_keeps_plus_first_two_digits_and_last_four(channel: str) -> None:
    assert mask(channel, "+919879000000") == "+91•••••0000"


def test_phone_mask_does_not_reveal_the_number_length() -> None:
    assert len(mask("sms", "+15551234567")) == len(mask("sms", "+919879000000"))


@pytest.mark.parametrize(("number", "masked"), [
    ("+4420123", "+4•••••23"),
    ("12345", "•••••5"),
    ("112", "•••••"),
])
def test_short_phone_numbers_reveal_fewer_digits(number: str, masked: str) -> None:
    assert mask("sms", number) == masked


def test_token_keeps_provider_prefix_two_chars_and_last_two() -> None:
    assert mask("push", "fcm_token:abcdef0123f3") == "fcm_token:ab…f3"


def test_fcm_token_with_its_own_colon_keeps_only_the_provider_prefix() -> None:
    masked = mask("push", "fcm_token:dXyz123:APA91bHunvS0f3")
    assert masked == "fcm_token:dX…f3"
    assert "dXyz123" not in masked


def test_token_without_prefix_is_masked_whole() -> None:
    assert mask("inapp", "user-1001-device") == "us…ce"


@pytest.mark.parametrize(("token", "masked"), [
    ("fcm_token:abcde", "fcm_token:a…e"),
    ("fcm_token:abc", "fcm_token:…"),
    ("u-1001", "u…1"),
    ("ab", "…"),
])
def test_short_tokens_are_masked_more(token: str, masked: str) -> None:
    assert mask("push", token) == masked


def test_email_like_slack_value_is_masked_as_email() -> None:
    assert mask("slack", "alice@example.com") == "a•••@example.com"


@pytest.mark.parametrize("channel", ["slack", "discord", "teams"])
def test_other_chat_values_keep_two_chars(channel: str) -> None:
    assert mask(channel, "U024BE7LH") == "U0•••"


def test_display_token_shows_only_non_default_parts() -> None:
    assert display_token(Token("fcm_token:abcdef0123f3")) == "fcm_token:ab…f3"
    assert (display_token(Token("fcm_token:abcdef0123f3", "I1", 0))
            == "fcm_token:ab…f3 (integration I1, status 0)")
    assert display_token(Token("fcm_token:abcdef0123f3", status=0)) == "fcm_token:ab…f3 (status 0)"


def test_display_shows_full_values_when_asked() -> None:
    token = Token("fcm_token:abcdef0123f3", "I1")
    assert display_token(token, show_values=True) == "fcm_token:abcdef0123f3 (integration I1)"
    assert display_value("email", "alice@example.com", show_values=True) == "alice@example.com"
    assert display_value("email", "alice@example.com") == "a•••@example.com"


@given(channel=st.sampled_from(CHANNELS),
       value=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=3))
def test_a_masked_value_never_contains_the_whole_value(channel: str, value: str) -> None:
    assert value not in mask(channel, value)


def test_a_problem_message_is_masked_by_the_form_of_its_values() -> None:
    from reconciler.mask import mask_text

    text = ('sms: +14155550142 is read by YAML as the number 14155550142; did you mean '
            '"alice@example.com"? token "fcm_token:secret123456" is repeated; line 12:5')
    masked = mask_text(text, secrets=["fcm_token:secret123456"])
    for value in ("4155550142", "alice@example.com", "secret123456"):
        assert value not in masked
    assert "a•••@example.com" in masked and "line 12:5" in masked
