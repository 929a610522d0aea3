"""The response schema and `responses.py`: which API bodies pass, and what is said of the rest."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from reconciler.model import ChannelData
from reconciler.responses import decode_json, envelope_problem, profile_problem

SCHEMA = Path(__file__).parent.parent / "schemas" / "fyno-responses.schema.json"

# fyno-api.md, "Get profile: 200 body", verbatim.
DOC_PROFILE: dict[str, Any] = {
    "distinct_id": "u-1001", "name": "John Doe", "country_code": "IN",
    "timezone": "Asia/Kolkata", "timezone_offset": "+05:30",
    "created_at": "2023-04-21T06:34:01.386Z", "updated_at": "2023-04-21T08:42:30.235Z",
    "status": 1, "id_list": [], "profile_id": "6442aaaaaaaaaaaaaaaac685", "version": "live",
    "channel": {
        "sms": "+919879000000", "email": "john@example.com",
        "push": [{"token": "fcm_token:abc", "integration_id": "IXXXXXXX", "status": 1}],
        "inapp": [{"token": "u-1001", "status": 1}],
    },
    "properties": {}, "channel_raw": {},
}

# The OpenAPI file's ProfileFetched, assembled from each property's `example`
# (`properties` and `channel_raw` have none: the file gives them no schema).
OPENAPI_PROFILE: dict[str, Any] = {
    "channel": {
        "discord": "101XXXXXXXXXX7XXXXX", "email": "abcde@fghi.com",
        "inapp": [{"integration_id": "IXXXXXXX", "status": 1, "token": "XXXXXXXX"}],
        "push": [{"integration_id": "IXXXXXXX", "status": 1, "token": "ExponentPushToken[XXXXX]"}],
        "slack": "CXXXXXXXXXX", "sms": "+91 9879X XXXXX", "teams": "General",
        "voice": "+91 9879X XXXXX", "whatsapp": "+91 9879X XXXXX",
    },
    "country_code": "IN", "created_at": "2023-04-21T06:34:01.386Z", "distinct_id": "XXXXXXXX",
    "id_list": ["6442XXXXXXXXXXXXXXXXc684"], "name": "John Doe",
    "profile_id": "6442XXXXXXXXXXXXXXXXc685", "status": 1, "timezone": "Asia/Kolkata",
    "timezone_offset": "+05:30", "updated_at": "2023-04-21T08:42:30.235Z", "version": "test",
    "properties": {}, "channel_raw": {},
}

# Every response envelope of the OpenAPI file, and the SDK test's text for a channel PATCH.
ENVELOPES = [
    ("1 Record(s) updated successfully", "ok"),
    ("Unable to delete channel since the channel does not exist", "error"),
    ("Distinct ID 'distinct_id' already exists in the 'version' version of your workspace",
     "error"),
    ("1 User(s) deleted successfully", "ok"),
    ("Profile created successfully", "ok"),
    ("Cannot delete non existing user", "error"),
    ("Channel has been modified successfully", "ok"),
    ("incorrect/non existing distinct_id provided", "error"),
    ("1 Record(s) updated and 1 Records(s) deleted", "ok"),
    ("Invalid API details", "error"),
    ("Unable to update the record since the record does not exist", "error"),
    ("merge from id does not exist", "error"),
]


def with_channel(**channel: Any) -> dict[str, Any]:
    body = copy.deepcopy(DOC_PROFILE)
    body["channel"] = channel
    return body


def test_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(schema)
    assert {"profile", "envelope"} <= schema["$defs"].keys()


def test_every_part_of_the_schema_names_its_source() -> None:
    schema = json.loads(SCHEMA.read_text())
    for name, part in schema["$defs"].items():
        assert any(source in part["description"] for source in ("DOC", "SDK", "UNKNOWN")), name


def test_the_documented_profile_passes() -> None:
    assert profile_problem(DOC_PROFILE) is None


def test_the_openapi_example_profile_passes() -> None:
    assert profile_problem(OPENAPI_PROFILE) is None


def test_the_documented_profile_passes_after_decoding_its_bytes() -> None:
    body, problem = decode_json(json.dumps(DOC_PROFILE).encode())
    assert problem is None
    assert profile_problem(body) is None


@pytest.mark.parametrize("body", [
    pytest.param({**DOC_PROFILE, "name": None}, id="name-null"),
    pytest.param({key: value for key, value in DOC_PROFILE.items() if key != "name"},
                 id="name-absent"),
    pytest.param({"channel": {}}, id="only-channel"),
    pytest.param(with_channel(), id="no-channels"),
    pytest.param(with_channel(sms="", whatsapp="", voice="", email="", slack="", discord="",
                              teams="", push="", inapp=""), id="empty-as-empty-string"),
    pytest.param(with_channel(sms=[], whatsapp=[], voice=[], email=[], slack=[], discord=[],
                              teams=[], push=[], inapp=[]), id="empty-as-empty-list"),
    pytest.param(with_channel(sms=None, whatsapp=None, voice=None, email=None, slack=None,
                              discord=None, teams=None, push=None, inapp=None),
                 id="empty-as-null"),
    pytest.param(with_channel(email="a@example.com"), id="other-channels-omitted"),
    pytest.param(with_channel(webpush=[{"token": {"endpoint": "https://push.example/x",
                                                  "keys": {"p256dh": "k", "auth": "a"}},
                                        "integration_id": "IWEB", "status": 1}]),
                 id="webpush-with-object-tokens"),
    pytest.param(with_channel(webpush="anything", sms_backup=12, **{"weird key": [None]}),
                 id="unknown-channel-keys-any-value"),
    pytest.param(with_channel(push=[{"token": "fcm_token:abc", "integration_id": None}]),
                 id="integration-id-null"),
    pytest.param(with_channel(push=[{"token": "fcm_token:abc"}]), id="token-fields-absent"),
    pytest.param(with_channel(push=[{"token": "fcm_token:abc", "status": 0}],
                              inapp=[{"token": "u-1", "status": 1}]), id="status-0-and-1"),
    pytest.param(with_channel(push=[{"token": "fcm_token:abc", "status": None}]),
                 id="status-null-read-as-default-1"),
    pytest.param(with_channel(push=[{"token": "a", "_id": "x", "created_at": "t"}]),
                 id="extra-token-keys"),
    pytest.param(with_channel(push=[{"token": "a"}, {"token": "a"}]), id="duplicate-tokens"),
    pytest.param({**DOC_PROFILE, "segments": ["x"], "custom": {"a": 1}}, id="extra-top-level-keys"),
    pytest.param({**DOC_PROFILE, "country_code": None, "timezone": None, "id_list": None,
                  "version": None, "status": None, "properties": None, "channel_raw": "x"},
                 id="documented-fields-null-or-unchecked"),
])
def test_tolerated_variants_pass(body: dict[str, Any]) -> None:
    assert profile_problem(body) is None


@pytest.mark.parametrize(("body", "message"), [
    pytest.param({key: value for key, value in DOC_PROFILE.items() if key != "channel"},
                 "channel is missing", id="no-channel-key"),
    pytest.param({"_message": "Not Found"}, "channel is missing", id="an-envelope-not-a-profile"),
    pytest.param({**DOC_PROFILE, "channel": "sms"},
                 "channel must be an object, not a string", id="channel-a-string"),
    pytest.param({**DOC_PROFILE, "channel": None},
                 "channel must be an object, not null", id="channel-null"),
    pytest.param({**DOC_PROFILE, "channel": [{"sms": "+919879000000"}]},
                 "channel must be an object, not a list", id="channel-a-list"),
    pytest.param(with_channel(push=[{"token": 12}]),
                 "channel.push[0].token must be a non-empty string, not a number",
                 id="token-a-number"),
    pytest.param(with_channel(push=[{"token": ""}]),
                 "channel.push[0].token must be a non-empty string, not an empty string",
                 id="token-empty"),
    pytest.param(with_channel(inapp=[{"token": "u-1"}, {"integration_id": "I1", "status": 1}]),
                 "channel.inapp[1].token is missing", id="token-entry-without-token"),
    pytest.param(with_channel(push=["fcm_token:abc"]),
                 "channel.push[0] must be an object, not a string", id="token-entry-a-string"),
    pytest.param(with_channel(push={"token": "fcm_token:abc"}),
                 "channel.push must be a list, null or an empty string, not an object",
                 id="push-an-object"),
    pytest.param(with_channel(push="fcm_token:abc"),
                 "channel.push must be a list, null or an empty string, not a non-empty string",
                 id="push-a-string"),
    pytest.param(with_channel(email=12345),
                 "channel.email must be a string, null or an empty list, not a number",
                 id="email-a-number"),
    pytest.param(with_channel(sms=["+919879000000"]),
                 "channel.sms must be a string, null or an empty list, not a non-empty list",
                 id="sms-a-list"),
    pytest.param(with_channel(push=[{"token": "a", "integration_id": 7}]),
                 "channel.push[0].integration_id must be a string or null, not a number",
                 id="integration-id-a-number"),
    pytest.param(with_channel(push=[{"token": "a", "status": 2}]),
                 "channel.push[0].status must be 0, 1 or null, not another number",
                 id="status-2"),
    pytest.param(with_channel(push=[{"token": "a", "status": "1"}]),
                 "channel.push[0].status must be 0, 1 or null, not a string", id="status-string-1"),
    pytest.param(with_channel(inapp=[{"token": "a", "status": True}]),
                 "channel.inapp[0].status must be 0, 1 or null, not a boolean",
                 id="status-true"),
    pytest.param({**DOC_PROFILE, "name": ["John"]},
                 "name must be a string or null, not a list", id="name-a-list"),
    pytest.param({**DOC_PROFILE, "distinct_id": 1001},
                 "distinct_id must be a string, not a number", id="distinct-id-a-number"),
    pytest.param([DOC_PROFILE], "the body must be an object, not a list", id="body-a-list"),
    pytest.param("<html></html>", "the body must be an object, not a string", id="body-a-string"),
    pytest.param(None, "the body must be an object, not null", id="body-null"),
])
def test_malformed_profile_is_refused_naming_the_path(body: object, message: str) -> None:
    assert profile_problem(body) == message


def test_every_problem_is_counted_but_only_the_first_is_described() -> None:
    body = with_channel(email=1, sms=2, push=[{"token": 3}, {"token": 4}])
    assert profile_problem(body) == ("channel.email must be a string, null or an empty list, "
                                     "not a number (and problems at 3 more places)")


def test_a_problem_never_quotes_the_value() -> None:
    secrets = with_channel(email=919879000001, sms=["+919879000002"],
                           push=[{"token": 919879000003, "integration_id": 919879000004}],
                           inapp="919879000005")
    message = profile_problem(secrets)
    assert message is not None
    assert "9198790000" not in message


def test_what_is_not_json_data_is_refused_without_raising() -> None:
    assert profile_problem({"channel": {1, 2}}) == "the body is not JSON data (ValueError)"


def test_every_passing_channel_is_read_by_the_model() -> None:
    """What the schema lets through, `ChannelData.from_json` reads without failing."""
    body = with_channel(sms="", email=[], voice=None, push="", inapp=None,
                        whatsapp="+919879000000",
                        teams=[], webpush=[{"token": {"endpoint": "x"}}])
    assert profile_problem(body) is None
    data = ChannelData.from_json(body["channel"])
    assert dict(data.channels) == {"whatsapp": "+919879000000"}
    assert set(data.unmanaged) == {"webpush"}


@pytest.mark.parametrize(("message", "status"), ENVELOPES)
def test_every_documented_envelope_passes(message: str, status: str) -> None:
    assert envelope_problem({"_message": message, "status": status}) is None


def test_messages_are_examples_not_an_enum() -> None:
    assert envelope_problem({"_message": "Something Fyno never documented", "status": "ok"}) is None
    assert envelope_problem({"_message": "", "status": "error"}) is None


def test_an_envelope_may_carry_more_keys() -> None:
    assert envelope_problem({"_message": "ok", "status": "ok", "request_id": "r-1"}) is None


@pytest.mark.parametrize(("body", "message"), [
    pytest.param([{"_message": "x", "status": "ok"}],
                 "the body must be an object, not a list", id="a-list"),
    pytest.param("1 Record(s) updated successfully",
                 "the body must be an object, not a string", id="a-string"),
    pytest.param({"status": "ok"}, "_message is missing", id="no-message"),
    pytest.param({"message": "Not Found", "status": "error"}, "_message is missing",
                 id="a-gateway-look-alike"),
    pytest.param({"_message": "x"}, "status is missing", id="no-status"),
    pytest.param({"_message": 401, "status": "error"}, "_message must be a string, not a number",
                 id="message-a-number"),
    pytest.param({"_message": "x", "status": "success"}, 'status must be "ok" or "error", '
                 "not a string", id="status-not-ok-or-error"),
    pytest.param({"_message": "x", "status": 1}, 'status must be "ok" or "error", '
                 "not another number", id="status-a-number"),
])
def test_malformed_envelope_is_refused(body: object, message: str) -> None:
    assert envelope_problem(body) == message


def test_json_bytes_decode() -> None:
    assert decode_json(b'{"_message": "x", "status": "ok"}') == (
        {"_message": "x", "status": "ok"}, None)
    assert decode_json(b"null") == (None, None)


@pytest.mark.parametrize(("content", "why"), [
    pytest.param(b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>",
                 "not JSON: the body looks like an HTML or XML page (66 bytes)", id="html"),
    pytest.param(b"  <html>404</html>", "not JSON: the body looks like an HTML or XML page "
                 "(18 bytes)", id="html-after-white-space"),
    pytest.param(b"Bad Gateway", "not JSON: unexpected character, expected a JSON value "
                 "(at offset 0 of 11 bytes)", id="plain-text"),
    pytest.param(b'{"_message": "caf\xe9"}', "not JSON: the body is not UTF-8 text "
                 "(invalid byte at offset 17)", id="not-utf-8"),
    pytest.param(b"", "not JSON: the body is empty", id="empty"),
    pytest.param(b" \r\n", "not JSON: the body is only white space", id="white-space"),
    pytest.param(b'{"_message": "x", "status": "ok"', "not JSON: unexpected end of data "
                 "(at offset 32 of 32 bytes)", id="truncated"),
    pytest.param(b"[" * 5000, "not JSON: depth limit exceeded (at offset 1025 of 5000 bytes)",
                 id="too-deep"),
])
def test_what_is_not_json_is_said_without_raising(content: bytes, why: str) -> None:
    assert decode_json(content) == (None, why)


def test_not_json_never_quotes_the_body() -> None:
    _, why = decode_json(b"Error for +919879000001: upstream refused")
    assert why is not None
    assert "919879000001" not in why
