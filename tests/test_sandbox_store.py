"""The sandbox's store: a profile's GET shape, the re-sent-token and success-text switches.

Unit tests on `Store` itself; test_sandbox checks the same rules over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.sandbox import Faults
from reconciler.sandbox.channels import DeleteChannels, country_code
from reconciler.sandbox.store import Outcome, Store

WSID = "FYSTORE001"
HELD = {"token": "p1", "integration_id": "I1", "status": 0}
PROFILE: dict[str, Any] = {
    "email": "a@example.com",
    "sms": "+919879000000",
    "push": [HELD, {"token": "p2", "status": 1}],
}


def store(profile: dict[str, Any] | None = None) -> Store:
    return Store({WSID: {"live": {"u": PROFILE if profile is None else profile}}})


def held(target: Store) -> Any:
    return target.dump()[WSID]["live"]["u"]


def patch(target: Store, channel: dict[str, Any], **faults: Any) -> Outcome:
    return target.patch_channel(WSID, "live", "u", {"channel": channel}, Faults(**faults))


# -- GET: the shape of the OpenAPI file's ProfileFetched ---------------------------------------

PROFILE_KEYS = [
    "distinct_id", "name", "country_code", "timezone", "timezone_offset", "created_at",
    "updated_at", "status", "id_list", "profile_id", "version", "channel", "properties",
    "channel_raw",
]


def test_get_answers_every_key_of_the_openapi_profile_in_its_example_order() -> None:
    outcome = store().get(WSID, "live", "u", Faults())
    assert outcome.status == 200 and not outcome.changed
    body = outcome.body
    assert list(body) == PROFILE_KEYS
    assert body["name"] is None
    assert (body["country_code"], body["timezone"], body["timezone_offset"]) == (
        "IN", "UTC", "+00:00")
    assert body["status"] == 1 and body["id_list"] == [] and body["version"] == "live"
    assert body["properties"] == {} and body["channel_raw"] == {}
    assert body["channel"] == PROFILE
    int(body["profile_id"], 16)
    assert len(body["profile_id"]) == 24


def test_every_string_field_but_name_is_a_string_even_without_an_sms_number() -> None:
    body = store({"email": "a@example.com"}).get(WSID, "live", "u", Faults()).body
    assert body["country_code"] == ""
    for key in ("distinct_id", "country_code", "timezone", "timezone_offset", "created_at",
                "updated_at", "profile_id", "version"):
        assert isinstance(body[key], str), key


def test_a_created_profile_keeps_its_name() -> None:
    target = Store()
    assert target.create(WSID, "test", {"distinct_id": "n", "name": "Jo"}, Faults()).status == 201
    body = target.get(WSID, "test", "n", Faults()).body
    assert (body["name"], body["version"]) == ("Jo", "test")


@pytest.mark.parametrize(
    ("phone", "country"),
    [("+919879000000", "IN"), ("+15550000000", "US"), ("+447700900000", "GB"),
     ("+971501234567", "AE"), ("+8801712345678", "BD"), ("+99912345", ""), ("9879000000", ""),
     (None, "")],
)
def test_country_code_is_read_off_the_sms_number(phone: object, country: str) -> None:
    assert country_code(phone) == country


# -- PATCH re-sending a token already held: resend_token ---------------------------------------

RESENT_WITHOUT_INTEGRATION = {"token": "p1", "status": 1}


@pytest.mark.parametrize(
    ("mode", "push"),
    [
        ("update", [{"token": "p1", "status": 1}, PROFILE["push"][1]]),
        ("duplicate", [HELD, PROFILE["push"][1], {"token": "p1", "status": 1}]),
        ("ignore", [HELD, PROFILE["push"][1]]),
        ("merge", [{"token": "p1", "integration_id": "I1", "status": 1}, PROFILE["push"][1]]),
    ],
)
def test_resend_token_decides_what_becomes_of_the_held_entry(
    mode: str, push: list[dict[str, Any]]
) -> None:
    target = store()
    outcome = patch(target, {"push": [RESENT_WITHOUT_INTEGRATION]}, resend_token=mode)
    assert outcome.status == 200 and outcome.changed
    assert held(target)["push"] == push


def test_ignore_keeps_the_held_entry_exactly_and_still_adds_new_tokens() -> None:
    target = store()
    sent = [{"token": "p1", "integration_id": "I9", "status": 1}, {"token": "p3"}]
    assert patch(target, {"push": sent}, resend_token="ignore").status == 200
    assert held(target)["push"] == [HELD, PROFILE["push"][1], {"token": "p3", "status": 1}]


def test_merge_keeps_a_status_the_request_leaves_out_and_takes_the_fields_it_gives() -> None:
    target = store()
    sent = {"token": "p1", "integration_id": "I9"}
    assert patch(target, {"push": [sent]}, resend_token="merge").status == 200
    assert held(target)["push"][0] == {"token": "p1", "integration_id": "I9", "status": 0}


def test_merge_takes_an_explicit_null_integration_id() -> None:
    target = store()
    patch(target, {"push": [{"token": "p1", "integration_id": None}]}, resend_token="merge")
    assert held(target)["push"][0] == {"token": "p1", "integration_id": None, "status": 0}


@pytest.mark.parametrize("mode", ["update", "duplicate", "ignore", "merge"])
def test_a_new_token_is_added_with_the_default_status_in_every_mode(mode: str) -> None:
    target = store()
    patch(target, {"inapp": [{"token": "i1"}]}, resend_token=mode)
    assert held(target)["inapp"] == [{"token": "i1", "status": 1}]


@pytest.mark.parametrize(
    ("mode", "inapp"),
    [("update", [{"token": "t", "status": 0}]),
     ("duplicate", [{"token": "t", "status": 1}, {"token": "t", "status": 0}]),
     ("ignore", [{"token": "t", "status": 1}]),
     ("merge", [{"token": "t", "status": 0}])],
)
def test_a_token_repeated_in_one_create_meets_the_same_rule(
    mode: str, inapp: list[dict[str, Any]]
) -> None:
    target = Store()
    body = {"distinct_id": "c", "channel": {"inapp": [{"token": "t"}, {"token": "t", "status": 0}]}}
    assert target.create(WSID, "live", body, Faults(resend_token=mode)).status == 201
    assert target.dump()[WSID]["live"]["c"]["inapp"] == inapp


# -- the success texts: success_message --------------------------------------------------------


def _writes(target: Store, faults: Faults) -> dict[str, Outcome]:
    return {
        "patch": target.patch_channel(WSID, "live", "u", {"channel": {"sms": "+1"}}, faults),
        "delete-channel": target.delete_channel(
            WSID, "live", "u", _option_1("email"), faults),
        "create": target.create(WSID, "live", {"distinct_id": "new"}, faults),
        "delete-profiles": target.delete_profiles(WSID, "live", {"distinct_id": ["new"]}, faults),
    }


def _option_1(*names: str) -> DeleteChannels:
    return DeleteChannels(names)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("documented", {
            "patch": (200, "Channel has been modified successfully"),
            "delete-channel": (200, "Channel has been modified successfully"),
            "create": (201, "Profile created successfully"),
            "delete-profiles": (200, "1 User(s) deleted successfully"),
        }),
        ("sdk", {
            "patch": (200, "1 Record(s) updated successfully"),
            "delete-channel": (200, "Channel has been modified successfully"),
            "create": (201, "Profile created successfully"),
            "delete-profiles": (200, "1 User(s) deleted successfully"),
        }),
        ("other", dict.fromkeys(("patch", "delete-channel", "create", "delete-profiles"),
                                (202, "OK"))),
    ],
)
def test_success_message_sets_the_text_and_status_of_every_successful_write(
    mode: str, expected: dict[str, tuple[int, str]]
) -> None:
    target = store()
    outcomes = _writes(target, Faults(success_message=mode))
    assert {name: (o.status, o.body["_message"]) for name, o in outcomes.items()} == expected
    assert all(o.body["status"] == "ok" and o.changed for o in outcomes.values())
    # the writes were done whatever the text said
    assert held(target) == {"sms": "+1", "push": PROFILE["push"]}
    assert "new" not in target.dump()[WSID]["live"]


@pytest.mark.parametrize("mode", ["documented", "sdk", "other"])
def test_success_message_leaves_errors_alone(mode: str) -> None:
    target = store()
    faults = Faults(success_message=mode)
    outcome = target.delete_channel(WSID, "live", "u", _option_1("whatsapp"), faults)
    assert (outcome.status, outcome.body["_message"]) == (
        400, "Unable to delete channel since the channel does not exist")
    outcome = target.patch_channel(WSID, "live", "nobody", {"channel": {"sms": "+1"}}, faults)
    assert (outcome.status, outcome.body["status"]) == (400, "error")


def test_creating_an_existing_profile_answers_the_documented_text() -> None:
    outcome = store().create(WSID, "live", {"distinct_id": "u"}, Faults())
    assert outcome.status == 400
    assert outcome.body["_message"] == (
        "Distinct ID 'u' already exists in the 'live' version of your workspace")


def test_deleting_only_profiles_that_do_not_exist_is_the_documented_400() -> None:
    target = store()
    outcome = target.delete_profiles(WSID, "live", {"distinct_id": ["x", "y"]}, Faults())
    assert (outcome.status, outcome.body) == (
        400, {"_message": "Cannot delete non existing user", "status": "error"})
    assert not outcome.changed
    outcome = target.delete_profiles(WSID, "live", {"distinct_id": ["u", "x", "u"]}, Faults())
    assert (outcome.status, outcome.body["_message"]) == (200, "1 User(s) deleted successfully")


# -- how phone numbers are stored: phone_format ------------------------------------------------


def test_as_sent_stores_phone_numbers_exactly_as_sent() -> None:
    target = store()
    patch(target, {"sms": "+919879000001", "voice": "+1 201 555 0123"})
    assert (held(target)["sms"], held(target)["voice"]) == ("+919879000001", "+1 201 555 0123")


def test_international_stores_phone_numbers_as_libphonenumber_formats_them() -> None:
    target = store()
    patch(target, {"sms": "+919879000001", "whatsapp": "+1 (201) 555-0123",
                   "voice": "+44 20 7946 0000", "email": "b@example.com", "slack": "+919879000001"},
          phone_format="international")
    assert held(target) == {**PROFILE, "sms": "+91 98790 00001", "whatsapp": "+1 201-555-0123",
                            "voice": "+44 20 7946 0000", "email": "b@example.com",
                            "slack": "+919879000001"}
    assert target.get(WSID, "live", "u", Faults()).body["country_code"] == "IN"


def test_international_keeps_what_it_cannot_read_as_sent() -> None:
    target = store()
    patch(target, {"sms": "not a number"}, phone_format="international")
    assert held(target)["sms"] == "not a number"


def test_international_formats_the_numbers_a_profile_is_created_with() -> None:
    target = Store()
    body = {"distinct_id": "c", "channel": {"sms": "+919879000000"}}
    assert target.create(WSID, "live", body, Faults(phone_format="international")).status == 201
    assert target.dump()[WSID]["live"]["c"] == {"sms": "+91 98790 00000"}
