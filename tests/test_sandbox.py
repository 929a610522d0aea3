"""The sandbox answers like Fyno's profile API: routes, status codes, bodies, auth, ids, data.

Every test talks to a real sandbox over HTTP on 127.0.0.1 (fault switches: test_sandbox_faults).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sandboxclient import (
    CREATED,
    INVALID_KEY,
    KEY,
    MODIFIED,
    NO_CHANNEL,
    NO_PROFILE,
    WSID,
    Client,
    running,
    seed,
)

from reconciler.sandbox import Faults, Sandbox, SandboxConfig

ALICE: dict[str, Any] = {
    "email": "alice@example.com",
    "sms": "+919879000000",
    "push": [
        {"token": "fcm_token:abc", "integration_id": "I1", "status": 1},
        {"token": "apns_token:def", "status": 0},
    ],
    "inapp": [{"token": "u-1", "status": 1}],
}


@pytest.fixture
def client() -> Iterator[Client]:
    with running(seed_data=seed({"u-1": ALICE})) as client:
        yield client


# -- GET ------------------------------------------------------------------------------------


def test_get_answers_the_profile_shaped_like_the_doc_example(client: Client) -> None:
    answer = client.get("u-1")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.body
    assert body["distinct_id"] == "u-1"
    assert body["version"] == "live"
    assert body["status"] == 1
    assert body["channel"] == ALICE
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    assert len(body["profile_id"]) == 24
    assert body["properties"] == {} and body["id_list"] == [] and "name" in body


def test_get_of_an_unknown_profile_is_the_documented_400(client: Client) -> None:
    answer = client.get("nobody")
    assert (answer.status, answer.body) == (400, NO_PROFILE)


# -- POST /profiles --------------------------------------------------------------------------


def test_create_answers_201_and_stores_name_and_channels(client: Client) -> None:
    channel = {"email": "bob@example.com", "push": [{"token": "t1"}]}
    answer = client.create("u-2", name="Bob", channel=channel)
    assert (answer.status, answer.body) == (201, CREATED)
    body = client.get("u-2").body
    assert body["name"] == "Bob"
    assert body["channel"] == {"email": "bob@example.com", "push": [{"token": "t1", "status": 1}]}


def test_create_of_an_existing_profile_is_a_400_saying_so(client: Client) -> None:
    answer = client.create("u-1")
    assert answer.status == 400
    assert answer.body["status"] == "error"
    assert "already exists" in answer.body["_message"]
    assert client.channel("u-1") == ALICE


@pytest.mark.parametrize("body", [{}, {"distinct_id": ""}, {"distinct_id": 5}, []])
def test_create_without_a_distinct_id_is_a_400(client: Client, body: object) -> None:
    answer = client.api("POST", "", body)
    assert answer.status == 400 and answer.body["status"] == "error"


# -- PATCH .../channel ------------------------------------------------------------------------


def test_patch_replaces_single_values_and_adds_tokens(client: Client) -> None:
    answer = client.patch("u-1", {"email": "new@example.com", "push": [{"token": "fcm_token:new"}]})
    assert (answer.status, answer.body) == (200, MODIFIED)
    channel = client.channel("u-1")
    assert channel["email"] == "new@example.com"
    assert channel["sms"] == ALICE["sms"]
    assert channel["push"] == [*ALICE["push"], {"token": "fcm_token:new", "status": 1}]


def test_patch_of_an_unknown_profile_is_the_documented_400(client: Client) -> None:
    answer = client.patch("nobody", {"email": "a@example.com"})
    assert (answer.status, answer.body) == (400, NO_PROFILE)
    assert client.channel("nobody") is None


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"channel": "email"},
        {"channel": {"fax": "123"}},
        {"channel": {"email": 5}},
        {"channel": {"email": ""}},
        {"channel": {"push": "fcm_token:x"}},
        {"channel": {"push": ["fcm_token:x"]}},
        {"channel": {"push": [{"integration_id": "I1"}]}},
        {"channel": {"push": [{"token": "t", "status": 2}]}},
        {"channel": {"push": [{"token": "t", "status": True}]}},
        {"channel": {"push": [{"token": "t", "colour": "red"}]}},
        {"channel": {"sms": "+1", "push": [{"token": 7}]}},
    ],
)
def test_a_malformed_patch_is_a_400_that_changes_nothing(client: Client, body: object) -> None:
    answer = client.api("PATCH", "/u-1/channel", body, raw=b"" if body is None else None)
    assert answer.status == 400 and answer.body["status"] == "error"
    assert client.channel("u-1") == ALICE


def test_a_body_that_is_not_json_is_a_400(client: Client) -> None:
    answer = client.api("PATCH", "/u-1/channel", raw=b"{not json")
    assert answer.status == 400 and answer.body["status"] == "error"


def test_a_write_without_json_content_type_is_a_400(client: Client) -> None:
    body = json.dumps({"channel": {"email": "a@example.com"}}).encode()
    answer = client.api("PATCH", "/u-1/channel", raw=body, headers={"Content-Type": "text/plain"})
    assert answer.status == 400
    assert client.channel("u-1") == ALICE


# -- POST .../channel/delete ------------------------------------------------------------------


def test_option_1_deletes_whole_channels(client: Client) -> None:
    answer = client.delete("u-1", {"channel": ["sms", "push"]})
    assert (answer.status, answer.body) == (200, MODIFIED)
    assert client.channel("u-1") == {"email": ALICE["email"], "inapp": ALICE["inapp"]}


def test_option_1_naming_an_empty_channel_is_the_documented_400(client: Client) -> None:
    answer = client.delete("u-1", {"channel": ["whatsapp"]})
    assert (answer.status, answer.body) == (400, NO_CHANNEL)


@pytest.mark.parametrize("key", ["push", "inapp"])
def test_option_2_deletes_only_the_named_tokens_and_either_key_alone_is_enough(
    client: Client, key: str
) -> None:
    token = ALICE[key][0]["token"]
    answer = client.delete("u-1", {key: [token]})
    assert (answer.status, answer.body) == (200, MODIFIED)
    expected = {**ALICE, key: ALICE[key][1:]}
    assert client.channel("u-1") == {name: data for name, data in expected.items() if data}


def test_option_2_with_both_keys_and_one_empty_list_is_accepted(client: Client) -> None:
    answer = client.delete("u-1", {"push": ["apns_token:def"], "inapp": []})
    assert answer.status == 200
    assert client.channel("u-1")["push"] == ALICE["push"][:1]


@pytest.mark.parametrize(
    "body",
    [
        {"channel": ["sms"], "push": ["fcm_token:abc"]},
        {"channel": ["fax"]},
        {"channel": ["webpush"]},
        {"channel": []},
        {"channel": "sms"},
        {"push": [{"token": "fcm_token:abc"}]},
        {"push": "fcm_token:abc"},
        {"push": []},
        {},
        {"sms": ["+919879000000"]},
        ["sms"],
    ],
    ids=["both-forms", "unknown-name", "webpush", "empty-list", "not-a-list", "token-objects",
         "token-not-a-list", "nothing-named", "empty-body", "option-2-single-channel", "array"],
)
def test_a_malformed_delete_is_a_400_that_deletes_nothing(client: Client, body: object) -> None:
    answer = client.delete("u-1", body)
    assert answer.status == 400 and answer.body["status"] == "error"
    assert client.channel("u-1") == ALICE


def test_delete_on_an_unknown_profile_is_a_400(client: Client) -> None:
    answer = client.delete("nobody", {"channel": ["sms"]})
    assert (answer.status, answer.body) == (400, NO_PROFILE)


# -- POST /profiles/delete --------------------------------------------------------------------


def test_delete_profiles_answers_200_and_forgets_them(client: Client) -> None:
    answer = client.api("POST", "/delete", {"distinct_id": ["u-1", "never-existed"]})
    assert answer.status == 200 and answer.body["status"] == "ok"
    assert client.get("u-1").status == 400
    assert client.data()[WSID]["live"] == {}


def test_delete_profiles_without_a_list_of_ids_is_a_400(client: Client) -> None:
    answer = client.api("POST", "/delete", {"distinct_id": "u-1"})
    assert answer.status == 400
    assert client.channel("u-1") == ALICE


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer", f"Bearer {KEY} ", KEY, f"Basic {KEY}", f"bearer{KEY}"],
)
def test_a_missing_or_wrong_key_is_the_documented_401(
    client: Client, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = client.request("GET", f"/v1/{WSID}/live/profiles/u-1", headers=headers, key=None)
    assert (answer.status, answer.body) == (401, INVALID_KEY)


def test_the_key_is_checked_before_routes_faults_and_writes(client: Client) -> None:
    client.set_faults(error_rate=1.0)
    assert client.request("GET", "/v1/nowhere", key="wrong").status == 401
    answer = client.request("PATCH", f"/v1/{WSID}/live/profiles/u-1/channel",
                            {"channel": {"sms": "+1"}}, key="wrong")
    assert (answer.status, answer.body) == (401, INVALID_KEY)
    assert client.channel("u-1") == ALICE


def test_the_key_appears_in_no_log_entry_nor_answer(client: Client) -> None:
    client.get("u-1")
    client.patch("u-1", {"email": "x@example.com"})
    client.request("GET", f"/v1/{WSID}/live/profiles/u-1", key=KEY + "x")
    everything = json.dumps(client.log()) + json.dumps(client.data())
    assert len(client.log()) == 3
    assert KEY not in everything


# -- distinct_ids in paths --------------------------------------------------------------------

HOSTILE_IDS = ["a/b", "../x", "a?b#c", "%2F", "x y", "ünï", "a+b", "%", "..", "delete"]


@pytest.mark.parametrize("distinct_id", HOSTILE_IDS)
def test_hostile_distinct_ids_round_trip_as_one_path_segment(
    client: Client, distinct_id: str
) -> None:
    assert client.create(distinct_id, channel={"email": "h@example.com"}).status == 201
    answer = client.get(distinct_id)
    assert answer.status == 200 and answer.body["distinct_id"] == distinct_id
    assert client.patch(distinct_id, {"sms": "+15550000000"}).status == 200
    assert client.delete(distinct_id, {"channel": ["email"]}).status == 200
    assert client.channel(distinct_id) == {"sms": "+15550000000"}
    assert client.channel("u-1") == ALICE
    assert {entry["distinct_id"] for entry in client.log()[1:]} == {distinct_id}


def test_segments_are_decoded_exactly_once(client: Client) -> None:
    client.create("%2F")
    client.create("a/b")
    answer = client.request("GET", f"/v1/{WSID}/live/profiles/%252F")
    assert answer.body["distinct_id"] == "%2F"
    answer = client.request("GET", f"/v1/{WSID}/live/profiles/a%2Fb")
    assert answer.body["distinct_id"] == "a/b"


def test_an_unencoded_slash_is_another_route_not_the_id(client: Client) -> None:
    client.create("a/b")
    answer = client.request("GET", f"/v1/{WSID}/live/profiles/a/b")
    assert answer.status == 404 and answer.body["status"] == "error"


def test_the_log_keeps_the_raw_path_and_the_decoded_id(client: Client) -> None:
    client.get("a?b#c")
    (entry,) = client.log()
    assert entry["path"] == f"/v1/{WSID}/live/profiles/{quote('a?b#c', safe='')}"
    assert entry["distinct_id"] == "a?b#c"


# -- workspaces and versions -------------------------------------------------------------------


def test_live_and_test_are_separate_stores(client: Client) -> None:
    assert client.get("u-1", version="test").status == 400
    assert client.create("u-1", version="test", channel={"email": "t@example.com"}).status == 201
    assert client.get("u-1", version="test").body["channel"] == {"email": "t@example.com"}
    assert client.get("u-1", version="test").body["version"] == "test"
    assert client.channel("u-1") == ALICE


def test_workspaces_are_separate_stores(client: Client) -> None:
    answer = client.request("GET", "/v1/FYOTHER/live/profiles/u-1")
    assert (answer.status, answer.body) == (400, NO_PROFILE)


def test_a_version_other_than_live_or_test_is_a_400(client: Client) -> None:
    answer = client.request("GET", f"/v1/{WSID}/prod/profiles/u-1")
    assert answer.status == 400 and answer.body["status"] == "error"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/"), ("GET", f"/v1/{WSID}/live/users/u-1"),
     ("DELETE", f"/v1/{WSID}/live/profiles/u-1"),
     ("GET", f"/v1/{WSID}/live/profiles/u-1/channel"), ("PUT", f"/v1/{WSID}/live/profiles/u-1")],
)
def test_unknown_routes_under_v1_are_404_with_the_envelope(
    client: Client, method: str, path: str
) -> None:
    # paths outside /v1 are not Fyno's at all: test_sandbox_gateway checks their HTML 404
    answer = client.request(method, path)
    assert answer.status == 404
    assert answer.body["status"] == "error" and answer.body["_message"]


# -- HTTP -------------------------------------------------------------------------------------


def test_one_connection_serves_many_requests_each_with_a_content_length(client: Client) -> None:
    first = client.get("u-1")
    connection = client._connection
    second = client.get("nobody")
    third = client.patch("u-1", {"sms": "+1"})
    assert client._connection is connection and connection is not None
    for answer in (first, second, third):
        assert int(answer.headers["content-length"]) > 0
        assert answer.headers.get("connection") != "close"


def test_a_chunked_request_body_is_read(client: Client) -> None:
    assert client._connection is None
    client.get("u-1")
    connection = client._connection
    assert connection is not None
    body = json.dumps({"channel": {"sms": "+1"}}).encode()
    connection.request("PATCH", f"/v1/{WSID}/live/profiles/u-1/channel", body=iter([body]),
                       headers={"Authorization": f"Bearer {KEY}",
                                "Content-Type": "application/json"},
                       encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (200, MODIFIED)


# -- admin routes, seed data and the log -------------------------------------------------------


def test_seed_data_is_served_and_read_back(client: Client) -> None:
    assert client.data() == {WSID: {"live": {"u-1": ALICE}}}


def test_put_data_replaces_everything(client: Client) -> None:
    data = {"W2": {"test": {"x": {"email": "x@example.com", "push": [{"token": "t"}]}}}}
    assert client.request("PUT", "/_sandbox/data", data, key=None).status == 200
    expected = {"W2": {"test": {"x": {"email": "x@example.com",
                                      "push": [{"token": "t", "status": 1}]}}}}
    assert client.data() == expected
    assert client.get("u-1").status == 400


@pytest.mark.parametrize(
    "data",
    [[], {WSID: {"prod": {}}}, {WSID: {"live": {"u": {"sms": 5}}}},
     {WSID: {"live": {"u": {"push": [{"status": 1}]}}}}, {WSID: "live"}],
)
def test_put_of_bad_data_is_a_400_that_keeps_the_old(client: Client, data: object) -> None:
    answer = client.request("PUT", "/_sandbox/data", data, key=None)
    assert answer.status == 400 and answer.body["status"] == "error"
    assert client.channel("u-1") == ALICE


def test_an_undocumented_channel_in_seed_data_is_returned_by_get() -> None:
    webpush = [{"token": "wp:1", "status": 1}]
    with running(seed_data=seed({"u": {"webpush": webpush, "email": ""}})) as client:
        assert client.get("u").body["channel"] == {"webpush": webpush}


def test_bad_seed_data_is_refused_at_start() -> None:
    config = SandboxConfig(api_key=KEY, seed_data={WSID: {"prod": {}}})
    with pytest.raises(ValueError, match=r"invalid seed data: .*live or test"):
        Sandbox(config)


def test_a_key_is_required() -> None:
    with pytest.raises(ValueError, match="key"):
        SandboxConfig(api_key="")


def test_the_log_records_each_api_request_and_can_be_cleared(client: Client) -> None:
    client.get("u-1")
    client.patch("u-1", {"sms": "+1"})
    client.delete("u-1", {"channel": ["whatsapp"]})
    client.data()
    log = client.log()
    assert [(e["method"], e["distinct_id"], e["status"], e["performed"], e["lost"])
            for e in log] == [
        ("GET", "u-1", 200, False, False),
        ("PATCH", "u-1", 200, True, False),
        ("POST", "u-1", 400, False, False),
    ]
    assert log[1]["body"] == {"channel": {"sms": "+1"}}
    assert log[0]["time"] <= log[1]["time"] <= log[2]["time"]
    assert client.request("DELETE", "/_sandbox/log", key=None).status == 200
    assert client.log() == []


def test_admin_routes_need_no_key_and_unknown_ones_are_404(client: Client) -> None:
    assert client.request("GET", "/_sandbox/data", key="wrong").status == 200
    assert client.request("GET", "/_sandbox/nothing", key=None).status == 404


def test_faults_can_be_read_and_replaced_at_runtime(client: Client) -> None:
    assert client.request("GET", "/_sandbox/faults", key=None).body == Faults().to_json()
    client.set_faults(delete_empty="succeed", latency_ms=1)
    current = client.request("GET", "/_sandbox/faults", key=None).body
    assert current == {**Faults().to_json(), "delete_empty": "succeed", "latency_ms": 1}


@pytest.mark.parametrize(
    "faults",
    [{"error_rate": 2}, {"delete_empty": "maybe"}, {"speed": 1}, {"seed": "x"}, [],
     {"error_rate": 0.7, "throttle_rate": 0.7}, {"latency_ms": -1}, {"lose_rate": True}],
)
def test_bad_fault_settings_are_a_400(client: Client, faults: object) -> None:
    answer = client.request("PUT", "/_sandbox/faults", faults, key=None)
    assert answer.status == 400 and answer.body["status"] == "error"
    assert client.request("GET", "/_sandbox/faults", key=None).body == Faults().to_json()


def test_stop_ends_open_keep_alive_connections_too() -> None:
    sandbox = Sandbox(SandboxConfig(api_key=KEY, seed_data=seed({"u-1": ALICE}))).start()
    client = Client(sandbox.port)
    assert client.get("u-1").status == 200
    sandbox.stop()
    connection = client._connection
    assert connection is not None
    with pytest.raises((OSError, ConnectionError, http.client.HTTPException)):
        connection.request("GET", f"/v1/{WSID}/live/profiles/u-1",
                           headers={"Authorization": f"Bearer {KEY}"})
        connection.getresponse()
