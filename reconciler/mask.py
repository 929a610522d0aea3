"""Masking of values that identify a person, in everything a person or a log reads.

Reviewers need to see *that* an email or a token changes and roughly which one, never the
whole value: `alice@example.com` -> `a•••@example.com`, `+919879000000` -> `+91•••••0000`,
`fcm_token:abcdef…f3` -> `fcm_token:ab…f3`. The number of mask characters is fixed, so a
masked value does not reveal the length of what it hides, and short values reveal less.
Text, markdown, JSON and CSV on stdout, messages and progress go through here unless
`--show-values`; files that must carry the values (saved plans, the state, the ledger,
`export`'s YAML) never do: `apply` needs them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from reconciler.model import CHANNELS, Token

DOTS: Final = "•••"
PHONE_DOTS: Final = "•••••"
ELLIPSIS: Final = "…"

PHONE_CHANNELS: Final = frozenset({"sms", "whatsapp", "voice"})
TOKEN_CHANNELS: Final = frozenset({"push", "inapp"})

# A provider prefix names the kind of token (`fcm_token:`, `onesignal_player_id:`,
# `ExponentPushToken[`); it is kept. Only the FIRST such prefix: an FCM registration token
# itself contains ':' (`fcm_token:dXyz…:APA91b…`), and the part after the provider's colon
# belongs to the device.
_PROVIDER_PREFIX: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}[:\[]")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")
_NOT_DIGIT: Final = re.compile(r"[^0-9]+")


def mask(channel: str, value: str) -> str:
    """`value` of `channel` with the part that identifies a person hidden."""
    if channel == "email":
        return mask_email(value)
    if channel in PHONE_CHANNELS:
        return mask_phone(value)
    if channel in TOKEN_CHANNELS:
        return mask_token(value)
    if _EMAIL.fullmatch(value):
        return mask_email(value)
    return mask_opaque(value)


def mask_email(value: str) -> str:
    """`alice@example.com` -> `a•••@example.com`; a one-letter local part shows nothing."""
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return mask_opaque(value)
    shown = local[0] if len(local) > 1 else ""
    return f"{shown}{DOTS}@{domain}"


def mask_phone(value: str) -> str:
    """`+919879000000` -> `+91•••••0000`: the leading `+`, 2 digits and the last 4.

    Shorter numbers show fewer digits, so that at most about a third of one is revealed.
    """
    digits = _NOT_DIGIT.sub("", value)
    if not digits:
        return mask_opaque(value)
    plus = "+" if value.lstrip().startswith("+") else ""
    count = len(digits)
    if count >= 10:
        head, tail = 2, 4
    elif count >= 7:
        head, tail = 1, 2
    elif count >= 4:
        head, tail = 0, 1
    else:
        head, tail = 0, 0
    return f"{plus}{digits[:head]}{PHONE_DOTS}{digits[count - tail:] if tail else ''}"


def mask_token(value: str) -> str:
    """`fcm_token:abcdef…f3` -> `fcm_token:ab…f3`: provider prefix, 2 chars, `…`, last 2."""
    match = _PROVIDER_PREFIX.match(value)
    prefix = match.group() if match and match.end() < len(value) else ""
    rest = value[len(prefix):]
    count = len(rest)
    if count >= 8:
        keep = 2
    elif count >= 4:
        keep = 1
    else:
        keep = 0
    if keep == 0:
        return f"{prefix}{ELLIPSIS}"
    return f"{prefix}{rest[:keep]}{ELLIPSIS}{rest[-keep:]}"


def mask_opaque(value: str) -> str:
    """Slack/Discord/Teams ids, webhook URLs and anything unrecognised: 2 chars + `•••`."""
    keep = 2 if len(value) >= 8 else 1 if len(value) >= 4 else 0
    return f"{value[:keep]}{DOTS}"


# The key of `fingerprint`, new in every process. A short unkeyed hash would give the value
# away: a masked phone number hides 5 digits, 100,000 candidates, and 16 bits of their hash
# leave about one. Keyed by a secret that is never written or shown, the fingerprint says
# nothing about the value to anyone, and only tells two values apart within one output: all
# it is for. The same value has the same fingerprint throughout a run, never across runs.
_FINGERPRINT_KEY: Final = secrets.token_bytes(32)
FINGERPRINT_LENGTH: Final = 4  # hex digits: two different values look alike once in 65,536


def fingerprint(value: str) -> str:
    """`#3fa1`: tells apart two values whose masks are equal (`u•••@example.com` both), for
    the outputs that show both sides of a change masked; see `_FINGERPRINT_KEY`."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=_FINGERPRINT_KEY,
                             digest_size=8).hexdigest()
    return "#" + digest[:FINGERPRINT_LENGTH]


def display_pair(channel: str, before: str | Token, after: str | Token, *,
                 show_values: bool = False) -> tuple[str, str]:
    """Both sides of a change for people, masked unless `show_values`.

    When the two masks are equal though the values differ (`u•••@example.com` twice, two
    numbers with the same last digits), each side gets its `fingerprint`, so that a reviewer
    sees that something changes; otherwise they are shown as `display_value` shows them.
    """
    shown = (display_value(channel, before, show_values=show_values),
             display_value(channel, after, show_values=show_values))
    if show_values or shown[0] != shown[1] or before == after:
        return shown
    return (display_value(channel, before, fingerprinted=True),
            display_value(channel, after, fingerprinted=True))


def display_values(channel: str, values: Sequence[str | Token], *,
                   show_values: bool = False) -> list[str]:
    """The values of one channel (a profile's tokens) for people, as `display_value` shows
    each; values whose masks are equal though they differ each get their `fingerprint`, so
    that two tokens listed alike (`fcm_token:ab…f3` twice) are told apart."""
    shown = [display_value(channel, value, show_values=show_values) for value in values]
    if show_values or len(set(shown)) == len(shown):
        return shown
    alike = {text for text in shown if shown.count(text) > 1}
    return [display_value(channel, value, fingerprinted=True) if text in alike else text
            for value, text in zip(values, shown, strict=True)]


def display_token(token: Token, *, show_values: bool = False,
                  fingerprinted: bool = False) -> str:
    """A token for people: `fcm_token:ab…f3 (integration I1, status 0)`.

    Only the parts that differ from the API's defaults (all integrations, status 1) are shown;
    the integration id and status are configuration, not personal data, so never masked.
    `fingerprinted` adds the token's `fingerprint` to its mask (see `display_pair`).
    """
    text = token.token if show_values else mask_token(token.token)
    if fingerprinted and not show_values:
        text += fingerprint(token.token)
    details = []
    if token.integration_id is not None:
        details.append(f"integration {token.integration_id}")
    if token.status != 1:
        details.append(f"status {token.status}")
    return f"{text} ({', '.join(details)})" if details else text


def display_value(channel: str, value: str | Token, *, show_values: bool = False,
                  fingerprinted: bool = False) -> str:
    """A single value or a token of `channel`, masked unless `show_values`; `fingerprinted`
    adds the value's `fingerprint` to its mask (see `display_pair`)."""
    if isinstance(value, Token):
        return display_token(value, show_values=show_values, fingerprinted=fingerprinted)
    if show_values:
        return value
    return mask(channel, value) + (fingerprint(value) if fingerprinted else "")


def mask_channel_object(channel: Any) -> Any:
    """A profile's `channel` object (Fyno's shape) with every value masked: single values by
    their channel, tokens by `mask_token`; a key we do not manage (`webpush`) keeps only
    its shape. Anything that is not such an object is returned as it is."""
    if not isinstance(channel, dict):
        return channel
    return {name: _mask_entry(name, value) for name, value in channel.items()}


def mask_request(body: Any) -> Any:
    """A request body as the audit ledger holds it, masked: a PATCH or create's `channel`
    object, Option 2's tokens (push and inapp token strings, and `webpush` subscription
    objects, which keep no part); Option 1's channel names are not personal data."""
    if not isinstance(body, dict):
        return body
    masked = dict(body)
    if isinstance(body.get("channel"), dict):
        masked["channel"] = mask_channel_object(body["channel"])
    for name, value in body.items():
        if name != "channel" and isinstance(value, list):
            masked[name] = [mask_token(item) if isinstance(item, str) else MASKED
                            for item in value]
    return masked


MASKED: Final = "•••"
"""What stands for a value whose shape we do not know (an unmanaged channel's)."""


def _mask_entry(channel: str, value: Any) -> Any:
    if isinstance(value, str):
        return mask(channel, value) if channel in CHANNELS else MASKED
    if isinstance(value, list) and channel in TOKEN_CHANNELS:
        return [{**item, "token": mask_token(item["token"])}
                if isinstance(item, dict) and isinstance(item.get("token"), str) else MASKED
                for item in value]
    return MASKED if value not in (None, "", []) else value


def mask_change_json(change: Mapping[str, Any]) -> dict[str, Any]:
    """A plan's or a drift report's change (`{channel, before, after}`) with its values
    masked: single values by their channel, tokens by `mask_token`; two different values
    that mask alike each get their `fingerprint`, as in text (`display_pair`)."""
    channel = change.get("channel")
    sides = {side: _masked_side(channel, change.get(side)) for side in ("before", "after")}
    before, after = sides["before"], sides["after"]
    alike = (before is not None and after is not None and before[0] != after[0]
             and before[1] == after[1] != MASKED)
    masked = dict(change)
    for side, found in sides.items():
        if found is not None:
            raw, text = found
            text += fingerprint(raw) if alike else ""
            value = change[side]
            masked[side] = text if isinstance(value, str) else {**value, "token": text}
    return masked


def _masked_side(channel: Any, value: Any) -> tuple[str, str] | None:
    """(text, masked text) of one side of a change: a single value, masked by its channel,
    or a token object's token; None for a side with no text (absent)."""
    if isinstance(value, str):
        return value, mask(channel, value) if channel in CHANNELS else MASKED
    if isinstance(value, dict) and isinstance(value.get("token"), str):
        return value["token"], mask_token(value["token"])
    return None


_EMAIL_IN_TEXT: Final = re.compile(r"[^\s\"'<>(),;:]+@[^\s\"'<>(),;:]+")
_PHONE_IN_TEXT: Final = re.compile(r"\+\d[\d \-.()/]{4,}\d|(?<![\w.:])\d{7,}(?![\w.])")
"""A number with its + (however grouped), or a run of 7 digits and more (what YAML made of
an unquoted phone number)."""


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """A message for people (a validation problem) with the values in it masked: e-mail
    addresses and phone numbers found by their form, and `secrets` (tokens) wherever they
    appear, as `shown` quotes them or as they are."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask_token(secret))
    text = _EMAIL_IN_TEXT.sub(lambda found: mask_email(found.group()), text)
    return _PHONE_IN_TEXT.sub(lambda found: mask_phone(found.group()), text)


def mask_message(message: str, quoted: Any = None) -> str:
    """A server's `_message` for people. An API may quote what it refused ("invalid email
    alice@example.com"), so every value of `quoted` (the request body the message answers,
    or a profile's `{"channel": ...}`) is masked wherever it appears, as its channel masks
    it, and then any other e-mail address or phone number by its form (`mask_text`)."""
    values = sorted(set(_request_values(quoted)), key=lambda pair: -len(pair[1]))
    for channel, value in values:
        message = message.replace(value, mask(channel, value))
    return mask_text(message)


def _request_values(body: Any) -> Iterator[tuple[str, str]]:
    """(channel, value) of each value a request body or channel object carries: a PATCH's
    `channel` object (an unmanaged key's too, such as a web push subscription), Option 2's
    lists (tokens, and `webpush` subscriptions). Option 1's channel names and tokens'
    integration ids and status are not values; nor is anything shorter than 4 characters,
    which identifies no one and whose replacement would only mangle the message's words."""
    if not isinstance(body, dict):
        return
    channel = body.get("channel")
    entries = list(channel.items()) if isinstance(channel, dict) else []
    entries += [(name, value) for name, value in body.items()
                if name != "channel" and isinstance(value, list)]
    for name, value in entries:
        for item in value if isinstance(value, list) else [value]:
            token = item.get("token", item) if isinstance(item, dict) else item
            yield from ((name, leaf) for leaf in _strings(token) if len(leaf) >= 4)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)
