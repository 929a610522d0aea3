"""Reading the channel data of request bodies and seed files, as Fyno's API would accept it.

Written independently of the reconciler's own model on purpose: end-to-end tests are only
meaningful if the server does not share the client's interpretation of the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SINGLE_CHANNELS = ("sms", "whatsapp", "voice", "email", "slack", "discord", "teams")
PHONE_CHANNELS = ("sms", "whatsapp", "voice")
TOKEN_CHANNELS = ("push", "inapp")
CHANNELS = SINGLE_CHANNELS + TOKEN_CHANNELS
WEBPUSH = "webpush"  # in no profile API schema; the web SDK writes and deletes it (SDK)
VERSIONS = ("live", "test")

Channel = dict[str, Any]
"""A profile's channel object: single channels map to a string, push/inapp to token objects."""


class BadRequest(Exception):
    """A request the API answers with 400; the argument is its `_message`."""


@dataclass(frozen=True)
class DeleteChannels:
    """Option 1 of channel/delete: empty each named channel whole."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class DeleteTokens:
    """Option 2 of channel/delete: remove these token strings from push and inapp, and these
    tokens (a PushSubscription object, or a string) from webpush, as the web SDK does (SDK)."""

    tokens: dict[str, tuple[str, ...]]
    webpush: tuple[Any, ...] = ()


def parse_token(value: object, where: str, *, default_status: bool = True) -> dict[str, Any]:
    """A token object `{token, integration_id?, status?}`, with status defaulting to 1.

    Without `default_status`, a status the request left out stays out, so that a merge can
    tell it from a status sent as 1.
    """
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where} must be an object with a token")
    unknown = sorted(str(key) for key in value if key not in ("token", "integration_id", "status"))
    if unknown:
        raise BadRequest(f"{where} has unknown fields: {', '.join(unknown)}")
    token = value.get("token")
    if not isinstance(token, str) or not token:
        raise BadRequest(f"{where}.token must be a non-empty string")
    result: dict[str, Any] = {"token": token}
    if "integration_id" in value:
        # kept as sent, null included: the doc gives null and absent the same meaning,
        # and a client must cope with reading back either
        integration = value["integration_id"]
        if integration is not None and not isinstance(integration, str):
            raise BadRequest(f"{where}.integration_id must be a string or null")
        result["integration_id"] = integration
    if "status" not in value and not default_status:
        return result
    status = value.get("status", 1)
    if isinstance(status, bool) or status not in (0, 1):
        raise BadRequest(f"{where}.status must be 1 or 0")
    result["status"] = status
    return result


def with_default_status(token: dict[str, Any]) -> dict[str, Any]:
    """A token as stored when it is new: status 1 unless the request gave one (DOC)."""
    return token if "status" in token else {**token, "status": 1}


def parse_channel_update(value: object) -> Channel:
    """The `channel` object of a PATCH or create body; every key must be a documented channel.

    Tokens keep only the fields sent (no default status): how they are stored is the store's.
    """
    if not isinstance(value, Mapping):
        raise BadRequest("channel must be an object")
    update: Channel = {}
    for name, data in value.items():
        if name in SINGLE_CHANNELS:
            if not isinstance(data, str) or not data:
                raise BadRequest(f"channel.{name} must be a non-empty string")
            update[name] = data
        elif name in TOKEN_CHANNELS:
            if not isinstance(data, list):
                raise BadRequest(f"channel.{name} must be a list of token objects")
            update[name] = [
                parse_token(item, f"channel.{name}[{i}]", default_status=False)
                for i, item in enumerate(data)
            ]
        else:
            raise BadRequest(f"Invalid channel: {name}")
    return update


def parse_delete(body: object) -> DeleteChannels | DeleteTokens:
    """The body of channel/delete: Option 1 or Option 2, never both (DOC)."""
    if not isinstance(body, Mapping):
        raise BadRequest("request body must be a JSON object")
    has_channel = "channel" in body
    token_keys = [key for key in TOKEN_CHANNELS if key in body]
    if has_channel and (token_keys or WEBPUSH in body):
        raise BadRequest("Use either channel (option 1) or push/inapp (option 2), not both")
    unknown = sorted(str(key) for key in body
                     if key not in ("channel", WEBPUSH) and key not in TOKEN_CHANNELS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}")
    if has_channel:
        names = body["channel"]
        if not isinstance(names, list) or not names:
            raise BadRequest("channel must be a non-empty list of channel names")
        for name in names:
            if name not in CHANNELS:
                raise BadRequest(f"Invalid channel: {name}")
        return DeleteChannels(tuple(dict.fromkeys(names)))
    tokens: dict[str, tuple[str, ...]] = {}
    for key in token_keys:
        items = body[key]
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise BadRequest(f"{key} must be a list of token strings")
        tokens[key] = tuple(dict.fromkeys(items))
    webpush = body.get(WEBPUSH, [])
    if not isinstance(webpush, list):
        raise BadRequest("webpush must be a list of tokens")
    # the OpenAPI file requires both keys, so `{"push": [..], "inapp": []}` is valid;
    # a body that names no token at all is not a delete of anything
    if not any(tokens.values()) and not webpush:
        raise BadRequest("channel, push or inapp must name something to delete")
    return DeleteTokens(tokens, tuple(webpush))


def parse_stored_channel(value: object, where: str) -> Channel:
    """A channel object of seed data: documented channels are checked, others kept verbatim.

    Unknown keys (such as `webpush`, which the dashboard shows but no schema documents) are
    stored and returned by GET as they are, so tests can check the client keeps them.
    Empty values are dropped: the store only holds channels that have data.
    """
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where} must be a channel object")
    channel: Channel = {}
    for name, data in value.items():
        if name in SINGLE_CHANNELS:
            if not isinstance(data, str):
                raise BadRequest(f"{where}.{name} must be a string")
            if data:
                channel[name] = data
        elif name in TOKEN_CHANNELS:
            if not isinstance(data, list):
                raise BadRequest(f"{where}.{name} must be a list of token objects")
            tokens = [parse_token(item, f"{where}.{name}[{i}]") for i, item in enumerate(data)]
            if tokens:
                channel[name] = tokens
        elif data not in ("", [], None):
            channel[str(name)] = data
    return channel


def parse_data(value: object) -> dict[tuple[str, str], dict[str, Channel]]:
    """Seed data `{WSID: {version: {distinct_id: channel-object}}}`, keyed by (WSID, version)."""
    if not isinstance(value, Mapping):
        raise BadRequest("data must be an object {WSID: {version: {distinct_id: channel}}}")
    result: dict[tuple[str, str], dict[str, Channel]] = {}
    for wsid, versions in value.items():
        if not isinstance(wsid, str) or not wsid:
            raise BadRequest("workspace ids must be non-empty strings")
        if not isinstance(versions, Mapping):
            raise BadRequest(f"{wsid} must map versions (live, test) to profiles")
        for version, profiles in versions.items():
            if version not in VERSIONS:
                raise BadRequest(f"{wsid}: version must be live or test, not {version!r}")
            if not isinstance(profiles, Mapping):
                raise BadRequest(f"{wsid}.{version} must map distinct_ids to channel objects")
            result[(wsid, version)] = {
                str(distinct_id): parse_stored_channel(channel, f"{wsid}.{version}.{distinct_id}")
                for distinct_id, channel in profiles.items()
            }
    return result


CALLING_CODES = {
    "1": "US", "7": "RU", "20": "EG", "27": "ZA", "33": "FR", "34": "ES", "39": "IT",
    "44": "GB", "49": "DE", "52": "MX", "55": "BR", "61": "AU", "62": "ID", "65": "SG",
    "81": "JP", "82": "KR", "86": "CN", "91": "IN", "92": "PK", "234": "NG", "254": "KE",
    "880": "BD", "966": "SA", "971": "AE",
}
"""A few calling codes and their ISO country, enough to stand in for Fyno's lookup."""


def country_code(phone: object) -> str:
    """The country Fyno derives from a profile's SMS number (DOC); "" when it cannot tell."""
    if not isinstance(phone, str) or not phone.startswith("+"):
        return ""
    digits = "".join(ch for ch in phone[1:4] if ch.isdigit())
    for length in (3, 2, 1):
        if (found := CALLING_CODES.get(digits[:length])) is not None:
            return found
    return ""


def stored_phone(value: str, phone_format: str) -> str:
    """A phone number as the server stores it: as sent, or (`international`) as
    libphonenumber formats it for people, "+91 98790 00000", when it can read it."""
    if phone_format == "as-sent":
        return value
    import phonenumbers  # only a sandbox told to reformat needs it

    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
