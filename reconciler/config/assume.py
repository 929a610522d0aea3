"""What a clean document means, built without checking it, and confirmed beside.

The semantic checks (`checks.py`) are most of the cost of loading a large configuration, and
almost every file passes them unchanged. So a large file read by the fast path is taken at
once for what `check_document` would make of it if it found nothing wrong
(`assumed_document`), and the loader goes on with that meaning (pairs, digests, and the
caller's work: loading the states, the plan) while a process beside, on the other core
(`reconciler.beside`), reads the file again and confirms it (`confirms`). Anything else,
and the loader starts again the slow way, which reports each problem as it always does.
The assumption can therefore only cost time, never decide anything.

`assumed_document` gives up (None) on what is uncommon and would need the checks' own logic:
`ownership:` or `remove:`, text that is not a single value's or a list that is not a token
channel's, a token item that is not text or a mapping with text `token:` and a `status:`
of 0 or 1 (an integer: the schema counts 1.0 as one, and jsonschema-rs takes an integer of
thousands of digits for 1).

What is assumed is confirmed without running the checks (`holds`), beside or in the
loader's own process (`checked_document`): in a document of the common shape that the
schema accepts (types, keys, lengths, characters; in Rust, 0.1 s for 100,000 profiles),
the checks could only find fault with what the schema cannot judge: phone numbers, e-mail
addresses and repeated tokens, which `holds` reads as the checks do. A property test
compares `holds` with the checks on documents one step off the common shape
(`tests/test_config_assume.py`), and the fuzz tests compare the whole loader with the
precise path: a rule added to the checks belongs in the schema or in `holds` as well. For
100,000 profiles, `holds` takes about 0.6 s where the checks took 2 s.
"""

from __future__ import annotations

import re
from typing import Any, Final

from reconciler.config.checks import CheckedDocument, check_document
from reconciler.config.fast import load_fast, parse_fast
from reconciler.config.schema import is_valid
from reconciler.model import SINGLE_VALUE_CHANNELS, TOKEN_CHANNELS, ChannelData, Token
from reconciler.values import EMAIL_CHANNEL, PHONE_CHANNELS, desired_value, means_itself

_TOKENS: Final = frozenset(TOKEN_CHANNELS)
_SINGLE: Final = frozenset(SINGLE_VALUE_CHANNELS)
_READ: Final = PHONE_CHANNELS | {EMAIL_CHANNEL}
_new_tuple: Final = tuple.__new__
_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
"""A phone number as its normal form is written: the checks keep it as it is (or find it
wrong); other forms are read as the checks read them."""


def assumed_document(data: Any) -> CheckedDocument | None:
    """What `check_document(data)` returns when it finds nothing wrong, built without looking
    for anything wrong; None when `data` is not of the common shape (see the module)."""
    if type(data) is not dict or "ownership" in data:
        return None
    profiles = data.get("profiles")
    workspace, version = data.get("workspace"), data.get("version")
    if type(profiles) is not dict or type(workspace) not in (str, type(None)) \
            or type(version) not in (str, type(None)):
        return None
    result = CheckedDocument(workspace=workspace or None, version=version)
    built = result.profiles
    for distinct_id, profile in profiles.items():
        if type(profile) is not dict:
            return None
        channels: dict[str, str | tuple[Token, ...]] = {}
        for channel, value in profile.items():
            if type(value) is str and channel in _SINGLE:
                if value:
                    if channel in PHONE_CHANNELS and not _E164.fullmatch(value):
                        value = desired_value(channel, value)[0]
                    channels[channel] = value
            elif type(value) is list and channel in _TOKENS:
                if value:
                    tokens = _tokens(value)
                    if tokens is None:
                        return None
                    channels[channel] = tokens
            else:
                return None  # `ownership:`, `remove:`, or a value the checks would report
        built[distinct_id] = ChannelData(channels)
    return result


def _tokens(items: list[Any]) -> tuple[Token, ...] | None:
    # Each `Token` made as the tuple it is, without the named tuple's Python `__new__`: at
    # 100,000 profiles this is a third of the assumption (tests compare it with the checks).
    tokens = []
    for item in items:
        if type(item) is str:
            tokens.append(_new_tuple(Token, (item, None, 1)))
        elif type(item) is dict and type(token := item.get("token")) is str \
                and type(status := item.get("status", 1)) is int and status in (0, 1):
            tokens.append(_new_tuple(Token, (token, item.get("integration_id"), status)))
        else:
            return None
    return tuple(tokens)


def assumed_text(text: str) -> CheckedDocument | None:
    """The meaning assumed for a file's text: `assumed_document` of yaml_rs's reading, taken
    without the fast path's scan of the text (`fast.parse_fast`); None if none is."""
    data = parse_fast(text)
    return None if data is None else assumed_document(data)


def holds(data: dict[str, Any]) -> bool:
    """Whether the checks would find nothing wrong with `data`, whose `assumed_document` is
    not None, and mean exactly that (see the module): the schema holds, every phone number
    and e-mail address reads as the checks read it (a phone in E.164 meaning itself, since
    the assumption keeps it as written), and no channel repeats a token. (Of other data it
    says nothing that counts, without failing.)"""
    if not is_valid(data):
        return False
    for profile in data["profiles"].values():
        for channel, value in profile.items():
            if channel in _TOKENS:
                if len(value) > 1 and len({item if type(item) is str else item["token"]
                                           for item in value}) < len(value):
                    return False
            elif value and channel in _READ and not means_itself(channel, value) and (
                    channel not in PHONE_CHANNELS or _E164.fullmatch(value)
                    or desired_value(channel, value)[1] is not None):
                return False
    return True


def checked_document(data: Any) -> CheckedDocument | None:
    """`check_document(data)` when it finds nothing and the schema holds, else None: the
    assumed meaning when it `holds`, without running the checks."""
    assumed = assumed_document(data)
    if assumed is not None and holds(data):
        return assumed
    checked = check_document(data)
    return checked if not checked.findings and is_valid(data) else None


def confirms(text: str) -> bool:
    """Whether the meaning `assumed_text` assumes for the text is confirmed, for a text it
    assumes one for: the fast path reads the text (its scan included), and what it read
    `holds`. (yaml_rs reads a text the same way twice, so the caller's assumption meets the
    condition of `holds`: this process does not build the meaning again.)

    It reads the text again, rather than taking the data the assumption was made of:
    it runs in a process of its own, where walking data made before the fork would copy
    every page it touches (each reference counted is a write), which costs more than the
    parse."""
    data = load_fast(text)
    return data is not None and holds(data)
