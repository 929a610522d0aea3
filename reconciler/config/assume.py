"""What a clean document means, built without checking it, for the checks to confirm beside.

The semantic checks (`checks.py`) are most of the cost of loading a large configuration, and
almost every file passes them unchanged. So a large file read by the fast path is taken at
once for what `check_document` would make of it if it found nothing wrong
(`assumed_document`), and the loader goes on with that meaning (pairs, digests, and the
caller's work: loading the states, the plan) while `check_document` runs beside, on the other
core (`reconciler.beside`), and confirms it: no finding, the schema holds, and exactly this
meaning (`confirms`). Anything else, and the loader starts again the slow way, which reports
each problem as it always does. The assumption can therefore only cost time, never decide
anything: `check_document` stays the one authority on what a file means.

`assumed_document` gives up (None) on what is uncommon and would need the checks' own logic:
`ownership:` or `remove:`, a value that is not text or a list, a token item that is not text
or a mapping with text `token:`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from reconciler.config.checks import CheckedDocument, check_document
from reconciler.config.fast import load_fast, parse_fast
from reconciler.config.schema import is_valid
from reconciler.model import TOKEN_CHANNELS, ChannelData, Token
from reconciler.values import PHONE_CHANNELS, desired_value

_TOKENS: Final = frozenset(TOKEN_CHANNELS)
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
            if type(value) is str:
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
    tokens = []
    for item in items:
        if type(item) is str:
            tokens.append(Token(item))
        elif type(item) is dict and type(token := item.get("token")) is str:
            tokens.append(Token(token, item.get("integration_id"), item.get("status", 1)))
        else:
            return None
    return tuple(tokens)


def assumed_text(text: str) -> CheckedDocument | None:
    """The meaning assumed for a file's text: `assumed_document` of yaml_rs's reading, taken
    without the fast path's scan of the text (`fast.parse_fast`); None if none is."""
    data = parse_fast(text)
    return None if data is None else assumed_document(data)


def confirms(text: str) -> bool:
    """Whether the text's meaning, assumed as `assumed_text` assumes it, is confirmed: the
    fast path reads the text (its scan included), the checks find nothing wrong, the schema
    holds, and the meaning is exactly the one assumed.

    It reads the text again, rather than taking the data the assumption was made of:
    it runs in a process of its own, where walking data made before the fork would copy
    every page it touches (each reference counted is a write), which costs more than the
    parse."""
    data = load_fast(text)
    if data is None:
        return False
    assumed = assumed_document(data)
    if assumed is None:
        return False
    checked = check_document(data)
    return not checked.findings and is_valid(data) and checked == assumed
