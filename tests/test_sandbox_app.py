"""`SandboxApp` on its own, no HTTP: which answer each fault switch gives, in which order,
what the store holds afterwards and what the log says was performed.

test_sandbox_hostile checks the same switches over real HTTP.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from reconciler.sandbox import Faults, SandboxConfig
from reconciler.sandbox.app import SandboxApp
from reconciler.sandbox.hostile import NUMBER_EMAIL, NUMBER_TOKEN
from reconciler.sandbox.replies import Reply, Request
from reconciler.sandbox.settings import BODY_MALFORMED, SHAPE_MALFORMED

KEY = "app-key-0001"
WSID = "FYAPP00001"
PROFILE: dict[str, Any] = {
    "email": "a@example.com",
    "sms": "+15550000000",
    "push": [{"token": "p1", "integration_id": "I1", "status": 1}, {"token": "p2", "status": 0}],
}
BARE: dict[str, Any] = {"sms": "+15550000000"}
"""A profile with neither push nor email: shape faults must still break its answer."""
PATCH = {"channel": {"email": "new@example.com"}}
MODIFIED = {"_message": "Channel has been modified successfully", "status": "ok"}


def make(**faults: Any) -> SandboxApp:
    data = {WSID: {"live": {"u": PROFILE, "bare": BARE}}}
    return SandboxApp(SandboxConfig(api_key=KEY, faults=Faults(**faults), seed_data=data))


def call(app: SandboxApp, method: str, path: str, body: Any = None,
         key: str | None = KEY) -> Reply:
    return app.handle(Request(
        method=method, raw_path=path,
        authorization=None if key is None else f"Bearer {key}",
        content_type="application/json",
        body=b"" if body is None else json.dumps(body).encode(),
    ))


def profile_path(distinct_id: str = "u", tail: str = "") -> str:
    return f"/v1/{WSID}/live/profiles/{distinct_id}{tail}"


def get(app: SandboxApp, distinct_id: str = "u") -> Reply:
    return call(app, "GET", profile_path(distinct_id))


def patch(app: SandboxApp, distinct_id: str = "u") -> Reply:
    return call(app, "PATCH", profile_path(distinct_id, "/channel"), PATCH)


def held(app: SandboxApp, distinct_id: str = "u") -> Any:
    return app.store.dump()[WSID]["live"].get(distinct_id)


def last_log(app: SandboxApp) -> dict[str, Any]:
    return app.log.to_json()[-1]


# -- success_message ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [("documented", 200, "Channel has been modified successfully"),
     ("sdk", 200, "1 Record(s) updated successfully"),
     ("other", 202, "OK")],
)
def test_success_message_answers_a_patch_with_its_text_and_status(
    mode: str, status: int, message: str
) -> None:
    app = make(success_message=mode)
    reply = patch(app)
    assert (reply.status, reply.body) == (status, {"_message": message, "status": "ok"})
    assert held(app)["email"] == "new@example.com"
    assert last_log(app)["performed"] is True


def test_success_message_other_answers_202_to_a_channel_delete_too() -> None:
    app = make(success_message="other")
    reply = call(app, "POST", profile_path("u", "/channel/delete"), {"push": ["p2"]})
    assert (reply.status, reply.body) == (202, {"_message": "OK", "status": "ok"})
    assert held(app)["push"] == PROFILE["push"][:1]


# -- gateway -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [("403", 403, "application/json"), ("404", 404, "text/html"), ("html", 200, "text/html"),
     ("redirect", 302, "text/html")],
)
def test_the_gateway_answers_a_write_before_the_key_and_performs_nothing(
    kind: str, status: int, content_type: str
) -> None:
    app = make(gateway=kind)
    reply = call(app, "PATCH", profile_path("u", "/channel"), PATCH, key="not-the-key")
    assert reply.status == status
    assert reply.content_type.startswith(content_type)
    assert held(app) == PROFILE
    entry = last_log(app)
    assert (entry["status"], entry["performed"], entry["fault"]) == (status, False, "gateway")


def test_the_403_gateway_answers_the_api_gateway_json() -> None:
    reply = get(make(gateway="403"))
    assert reply.payload == b'{"message":"Forbidden"}'
    assert reply.content_type == "application/json; charset=utf-8"


def test_the_404_gateway_answers_express_html_naming_the_method_and_path() -> None:
    reply = call(make(gateway="404"), "GET", profile_path("a<b", "?x=1"))
    assert reply.status == 404
    assert reply.content_type == "text/html; charset=utf-8"
    assert b"<pre>Cannot GET /v1/FYAPP00001/live/profiles/a&lt;b</pre>" in reply.payload
    assert b"_message" not in reply.payload


def test_the_html_gateway_answers_a_200_sign_in_page() -> None:
    reply = get(make(gateway="html"))
    assert reply.status == 200
    assert reply.payload.startswith(b"<!DOCTYPE html>")
    assert b"Sign in" in reply.payload


def test_the_redirect_gateway_answers_302_to_another_site() -> None:
    reply = get(make(gateway="redirect"))
    assert reply.status == 302
    location = dict(reply.headers)["Location"]
    assert location == ("https://sso.example.invalid/login?next="
                        "%2Fv1%2FFYAPP00001%2Flive%2Fprofiles%2Fu")
    assert location.encode() in reply.payload


@pytest.mark.parametrize(
    ("paths", "get_status", "patch_status"),
    [("all", 403, 403), ("reads", 403, 200), ("writes", 200, 403)],
)
def test_gateway_paths_choose_which_requests_meet_the_gateway(
    paths: str, get_status: int, patch_status: int
) -> None:
    app = make(gateway="403", gateway_paths=paths)
    assert get(app).status == get_status
    assert patch(app).status == patch_status
    assert (held(app)["email"] == "new@example.com") is (patch_status == 200)
    assert [e["performed"] for e in app.log.to_json()] == [False, patch_status == 200]


def test_no_gateway_by_default() -> None:
    app = make()
    assert get(app).status == 200
    assert last_log(app)["fault"] is None


# -- a wrong base URL: nothing of Fyno outside /v1 ----------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"/{WSID}/live/profiles/u"), ("PATCH", f"/{WSID}/live/profiles/u/channel"),
     ("GET", "/"), ("GET", f"/v2/{WSID}/live/profiles/u"), ("GET", "/v1")],
)
def test_a_path_outside_v1_is_express_html_404_whatever_the_key(method: str, path: str) -> None:
    app = make()
    for key in (KEY, None):
        reply = call(app, method, path, PATCH if method == "PATCH" else None, key=key)
        assert reply.status == 404
        assert reply.content_type == "text/html; charset=utf-8"
        assert f"<pre>Cannot {method} {path}</pre>".encode() in reply.payload
    assert held(app) == PROFILE
    assert not any(entry["performed"] for entry in app.log.to_json())


def test_an_unknown_route_under_v1_still_answers_fyno_json_after_the_key() -> None:
    app = make()
    assert call(app, "GET", f"/v1/{WSID}/live/users/u", key=None).status == 401
    reply = call(app, "GET", f"/v1/{WSID}/live/users/u")
    assert reply.status == 404 and reply.body["status"] == "error"


# -- malformed: broken profile shapes -----------------------------------------------------------


def _shape(kind: str, distinct_id: str) -> Any:
    reply = get(make(malformed=kind), distinct_id)
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    body = json.loads(reply.payload)
    assert body["distinct_id"] == distinct_id
    return body


@pytest.mark.parametrize("distinct_id", ["u", "bare"])
def test_no_channel_leaves_the_channel_key_out(distinct_id: str) -> None:
    body = _shape("no-channel", distinct_id)
    assert "channel" not in body and "channel_raw" in body


@pytest.mark.parametrize(
    ("kind", "check"),
    [("channel-string", lambda c: isinstance(c, str) and c != ""),
     ("channel-null", lambda c: c is None),
     ("channel-list", lambda c: isinstance(c, list) and c != [])],
)
@pytest.mark.parametrize("distinct_id", ["u", "bare"])
def test_channel_shapes_replace_the_channel_object(
    kind: str, check: Any, distinct_id: str
) -> None:
    assert check(_shape(kind, distinct_id)["channel"])


def test_channel_string_is_the_channel_encoded_twice() -> None:
    assert json.loads(_shape("channel-string", "u")["channel"]) == PROFILE


def test_token_number_makes_the_first_push_token_a_number() -> None:
    push = _shape("token-number", "u")["channel"]["push"]
    assert push == [{"token": NUMBER_TOKEN, "integration_id": "I1", "status": 1},
                    PROFILE["push"][1]]


def test_token_missing_drops_the_first_push_token() -> None:
    push = _shape("token-missing", "u")["channel"]["push"]
    assert push == [{"integration_id": "I1", "status": 1}, PROFILE["push"][1]]


def test_email_number_makes_the_email_a_number() -> None:
    channel = _shape("email-number", "u")["channel"]
    assert channel == {**PROFILE, "email": NUMBER_EMAIL}


@pytest.mark.parametrize(
    ("kind", "channel"),
    [("token-number", {**BARE, "push": [{"token": NUMBER_TOKEN, "status": 1}]}),
     ("token-missing", {**BARE, "push": [{"status": 1}]}),
     ("email-number", {**BARE, "email": NUMBER_EMAIL})],
)
def test_a_shape_fault_adds_the_broken_entry_to_a_profile_without_one(
    kind: str, channel: dict[str, Any]
) -> None:
    assert _shape(kind, "bare")["channel"] == channel


def test_a_shape_fault_with_empty_channels_shown_still_breaks_the_push_list() -> None:
    app = make(malformed="token-missing", empty_channels="empty")
    assert json.loads(get(app, "bare").payload)["channel"]["push"] == [{"status": 1}]


@pytest.mark.parametrize("kind", SHAPE_MALFORMED)
def test_shape_faults_break_only_answers_not_the_store_nor_a_400(kind: str) -> None:
    app = make(malformed=kind, malformed_paths="all")
    assert get(app, "nobody").status == 400
    assert get(app, "nobody").body["status"] == "error"
    assert patch(app).body == MODIFIED  # a write's envelope has no profile to break
    assert held(app) == {**PROFILE, "email": "new@example.com"}
    get(app)
    assert [e["fault"] for e in app.log.to_json()] == [None, None, None, "malformed"]


@pytest.mark.parametrize("kind", SHAPE_MALFORMED)
def test_a_shape_fault_for_writes_alone_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="GET profile bodies only"):
        Faults(malformed=kind, malformed_paths="writes")


# -- malformed: bodies that are not JSON, or too slow -------------------------------------------


def test_html_answers_200_with_an_html_page() -> None:
    reply = get(make(malformed="html"))
    assert (reply.status, reply.content_type) == (200, "text/html; charset=utf-8")
    assert reply.payload.startswith(b"<!DOCTYPE html>")


def test_text_answers_200_with_plain_text() -> None:
    reply = get(make(malformed="text"), "nobody")
    assert (reply.status, reply.content_type, reply.payload) == (
        200, "text/plain; charset=utf-8", b"OK")


def test_undecodable_answers_200_json_typed_bytes_that_are_neither_utf8_nor_json() -> None:
    app = make(malformed="undecodable")
    reply = get(app)
    assert (reply.status, reply.content_type) == (200, "application/json; charset=utf-8")
    with pytest.raises(UnicodeDecodeError):
        reply.payload.decode("utf-8")
    with pytest.raises(ValueError):
        json.loads(reply.payload)
    # the right answer, gzipped without a Content-Encoding
    assert json.loads(gzip.decompress(reply.payload))["channel"] == PROFILE


def test_trickle_keeps_the_right_answer_and_sets_the_pace() -> None:
    reply = get(make(malformed="trickle", trickle_seconds=0.25))
    assert reply.trickle == 0.25
    assert reply.status == 200 and json.loads(reply.payload)["channel"] == PROFILE


def test_no_trickle_by_default() -> None:
    assert get(make()).trickle is None


@pytest.mark.parametrize("kind", BODY_MALFORMED)
def test_reads_is_the_default_and_leaves_writes_alone(kind: str) -> None:
    app = make(malformed=kind)
    reply = patch(app)
    assert (reply.status, reply.body, reply.trickle) == (200, MODIFIED, None)
    read = get(app)
    assert read.trickle is not None if kind == "trickle" else isinstance(read.body, bytes)
    assert [e["fault"] for e in app.log.to_json()] == [None, "malformed"]


@pytest.mark.parametrize("kind", ["html", "text", "undecodable"])
def test_malformed_writes_are_answered_after_the_write_was_performed(kind: str) -> None:
    app = make(malformed=kind, malformed_paths="writes")
    reply = patch(app)
    assert reply.status == 200
    with pytest.raises(ValueError):
        json.loads(reply.payload)
    assert held(app)["email"] == "new@example.com"
    entry = last_log(app)
    assert (entry["performed"], entry["status"], entry["fault"]) == (True, 200, "malformed")
    assert get(app).body["channel"]["email"] == "new@example.com"  # reads are left alone


def test_a_malformed_write_that_failed_was_not_performed() -> None:
    app = make(malformed="html", malformed_paths="writes")
    reply = call(app, "POST", profile_path("u", "/channel/delete"), {"channel": ["whatsapp"]})
    assert reply.status == 200 and reply.content_type.startswith("text/html")
    assert last_log(app)["performed"] is False


def test_malformed_all_covers_reads_and_writes() -> None:
    app = make(malformed="text", malformed_paths="all")
    assert get(app).payload == b"OK"
    assert patch(app).payload == b"OK"
    assert held(app)["email"] == "new@example.com"


def test_a_lost_answer_stays_lost_rather_than_malformed() -> None:
    app = make(malformed="html", malformed_paths="writes", lose_rate=1.0)
    reply = patch(app)
    assert reply.lost
    entry = last_log(app)
    assert (entry["performed"], entry["lost"], entry["fault"]) == (True, True, None)


def test_malformed_rate_is_a_seeded_share() -> None:
    def run(seed: int) -> list[bool]:
        app = make(malformed="text", malformed_rate=0.3, seed=seed)
        return [get(app).payload == b"OK" for _ in range(400)]

    first, replay, other = run(3), run(3), run(4)
    assert first == replay and first != other
    assert 85 < sum(first) < 155  # 120 expected; about four standard deviations either side


@pytest.mark.parametrize(("rate", "malformed"), [(0.0, False), (1.0, True)])
def test_malformed_rate_bounds(rate: float, malformed: bool) -> None:
    app = make(malformed="channel-null", malformed_rate=rate)
    assert all((get(app).body["channel"] is None) is malformed for _ in range(20))


# -- reset_rate ----------------------------------------------------------------------------------


def test_a_reset_is_decided_before_the_request_is_read_and_logged_as_not_performed() -> None:
    app = make(reset_rate=1.0)
    assert app.reset_before_reading("PATCH", profile_path("a%2Fb", "/channel"))
    (entry,) = app.log.to_json()
    assert (entry["method"], entry["distinct_id"], entry["body"]) == ("PATCH", "a/b", None)
    assert (entry["status"], entry["performed"], entry["lost"], entry["fault"]) == (
        0, False, True, "reset")
    assert held(app) == PROFILE


def test_no_reset_by_default_nor_ever_for_admin_routes() -> None:
    assert not make().reset_before_reading("GET", profile_path())
    app = make(reset_rate=1.0)
    assert not app.reset_before_reading("GET", "/_sandbox/log")
    assert app.log.to_json() == []


def test_reset_rate_is_a_seeded_share() -> None:
    def run(seed: int) -> list[bool]:
        app = make(reset_rate=0.25, seed=seed)
        return [app.reset_before_reading("GET", profile_path()) for _ in range(400)]

    first = run(1)
    assert first == run(1) and first != run(2)
    assert 65 < sum(first) < 135  # 100 expected


# -- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "header"), [(172800, "172800"), (86400.5, "86400.5"),
                                                 (31_536_000, "31536000")])
def test_huge_retry_after_values_are_sent_whole(seconds: float, header: str) -> None:
    app = make(throttle_rate=1.0, retry_after=seconds)
    reply = patch(app)
    assert reply.status == 429 and dict(reply.headers)["Retry-After"] == header
    assert held(app) == PROFILE
    entry = last_log(app)
    assert (entry["performed"], entry["fault"]) == (False, "rejected")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1])
def test_retry_after_refuses_what_no_header_can_carry(value: float) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        Faults(retry_after=value)


# -- admin routes and the order of checks --------------------------------------------------------


def test_admin_routes_meet_none_of_the_new_faults() -> None:
    app = make(gateway="403", malformed="html", malformed_paths="all", reset_rate=1.0,
               success_message="other")
    assert not app.reset_before_reading("GET", "/_sandbox/data")
    reply = call(app, "GET", "/_sandbox/data", key=None)
    assert reply.status == 200 and reply.body[WSID]["live"]["u"] == PROFILE
    reply = call(app, "PUT", "/_sandbox/faults", {"gateway": "html"}, key=None)
    assert reply.body == {"_message": "Faults replaced", "status": "ok"}
    assert call(app, "GET", "/_sandbox/log", key=None).body == []


def test_the_gateway_answers_before_throttling_and_malformed_answers() -> None:
    app = make(gateway="html", throttle_rate=1.0, malformed="text")
    reply = get(app)
    assert reply.status == 200 and b"Sign in" in reply.payload


def test_a_wrong_key_is_still_401_json_under_malformed_reads() -> None:
    app = make(malformed="html")
    reply = call(app, "GET", profile_path(), key="wrong")
    assert reply.status == 401 and reply.body["_message"] == "Invalid API details"
