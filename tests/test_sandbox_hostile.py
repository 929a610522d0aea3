"""Over real HTTP: a gateway in front of the API, a wrong base URL, reset connections and a
hostile server's malformed answers, byte for byte as a client receives them.

The answers here are often not JSON, so these tests read raw bytes rather than through
`sandboxclient.Client`, which decodes JSON.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sandboxclient import KEY, MODIFIED, NO_PROFILE, WSID, Client, running, seed

from reconciler.sandbox import Faults

PROFILE: dict[str, Any] = {"email": "a@example.com", "push": [{"token": "p1", "status": 1}]}
PATCH = {"channel": {"email": "new@example.com"}}
PROFILE_PATH = f"/v1/{WSID}/live/profiles/u"
NO_CONNECTION = (http.client.HTTPException, ConnectionError)
"""What a client meets when the connection is reset or closed without an answer."""


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


def raw(port: int, method: str, path: str, body: Any = None, *, key: str | None = KEY,
        timeout: float = 10) -> Raw:
    """One request on a fresh connection, its answer as bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return Raw(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A sandbox with the faults of `@pytest.mark.parametrize("client", [Faults(...)])`."""
    faults = getattr(request, "param", None)
    with running(faults, seed({"u": PROFILE})) as started:
        yield started


def express_404(method: str, path: str) -> bytes:
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n"
            "</body>\n</html>\n").encode()


# -- a wrong base URL -------------------------------------------------------------------------


def test_a_base_url_without_v1_meets_express_html_404_not_fyno_json(client: Client) -> None:
    path = f"/{WSID}/live/profiles/u"
    answer = raw(client.port, "GET", path)
    assert answer.status == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.body == express_404("GET", path)
    assert int(answer.headers["content-length"]) == len(answer.body)
    answer = raw(client.port, "PATCH", path + "/channel", PATCH)
    assert (answer.status, answer.body) == (404, express_404("PATCH", path + "/channel"))
    assert client.channel("u") == PROFILE
    assert [entry["performed"] for entry in client.log()] == [False, False]


# -- the gateway ------------------------------------------------------------------------------


@pytest.mark.parametrize("client", [Faults(gateway="403")], indirect=True)
def test_the_403_gateway_answers_its_json_to_any_key_and_performs_nothing(
    client: Client
) -> None:
    for key in (KEY, "wrong", None):
        answer = raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH, key=key)
        assert (answer.status, answer.body) == (403, b'{"message":"Forbidden"}')
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert client.channel("u") == PROFILE
    assert {(e["status"], e["performed"], e["fault"]) for e in client.log()} == {
        (403, False, "gateway")}


@pytest.mark.parametrize("client", [Faults(gateway="404")], indirect=True)
def test_the_404_gateway_answers_express_html(client: Client) -> None:
    answer = raw(client.port, "GET", PROFILE_PATH + "?x=1")
    assert answer.status == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.body == express_404("GET", PROFILE_PATH)


@pytest.mark.parametrize("client", [Faults(gateway="html")], indirect=True)
def test_the_html_gateway_answers_200_with_a_sign_in_page(client: Client) -> None:
    answer = raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.body.startswith(b"<!DOCTYPE html>") and b"Sign in" in answer.body
    assert client.channel("u") == PROFILE


@pytest.mark.parametrize("client", [Faults(gateway="redirect", gateway_paths="reads")],
                         indirect=True)
def test_the_redirect_gateway_answers_302_elsewhere_and_lets_writes_through(
    client: Client
) -> None:
    answer = raw(client.port, "GET", PROFILE_PATH)
    assert answer.status == 302
    assert answer.headers["location"].startswith("https://sso.example.invalid/login?next=")
    assert raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH).status == 200
    assert client.channel("u")["email"] == "new@example.com"


def test_the_gateway_can_be_switched_at_runtime(client: Client) -> None:
    client.set_faults(gateway="403", gateway_paths="writes")
    assert raw(client.port, "GET", PROFILE_PATH).status == 200
    assert raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH).status == 403
    client.set_faults()
    assert raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH).status == 200


# -- reset connections ------------------------------------------------------------------------


@pytest.mark.parametrize("client", [Faults(reset_rate=1.0)], indirect=True)
def test_a_reset_connection_answers_nothing_and_does_nothing(client: Client) -> None:
    with pytest.raises(NO_CONNECTION):
        raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH)
    with pytest.raises(NO_CONNECTION):
        raw(client.port, "GET", PROFILE_PATH)
    assert client.channel("u") == PROFILE  # admin routes are never reset
    log = client.log()
    assert [(e["method"], e["status"], e["performed"], e["lost"], e["fault"]) for e in log] == [
        ("PATCH", 0, False, True, "reset"), ("GET", 0, False, True, "reset")]
    assert log[0]["distinct_id"] == "u"
    client.set_faults()
    assert raw(client.port, "GET", PROFILE_PATH).status == 200


@pytest.mark.parametrize("client", [Faults(reset_rate=1.0)], indirect=True)
def test_a_reset_is_an_rst_even_on_a_keep_alive_connection(client: Client) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    try:
        connection.request("GET", PROFILE_PATH, headers={"Authorization": f"Bearer {KEY}"})
        with pytest.raises(ConnectionResetError):
            connection.getresponse().read()
    finally:
        connection.close()


# -- malformed answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("html", "text/html; charset=utf-8"), ("text", "text/plain; charset=utf-8"),
     ("undecodable", "application/json; charset=utf-8")],
)
def test_a_malformed_read_is_a_200_whose_body_is_not_json(kind: str, content_type: str) -> None:
    with running(Faults(malformed=kind), seed({"u": PROFILE})) as client:
        answer = raw(client.port, "GET", PROFILE_PATH)
        assert (answer.status, answer.headers["content-type"]) == (200, content_type)
        assert int(answer.headers["content-length"]) == len(answer.body)
        with pytest.raises(ValueError):
            json.loads(answer.body)
        assert client.log()[0]["fault"] == "malformed"


def test_a_malformed_shape_reaches_the_client_as_valid_json() -> None:
    with running(Faults(malformed="token-number"), seed({"u": PROFILE})) as client:
        answer = raw(client.port, "GET", PROFILE_PATH)
        assert answer.status == 200
        push = json.loads(answer.body)["channel"]["push"]
        assert isinstance(push[0]["token"], int)


def test_a_malformed_write_answer_comes_after_the_write_was_performed() -> None:
    faults = Faults(malformed="undecodable", malformed_paths="writes")
    with running(faults, seed({"u": PROFILE})) as client:
        answer = raw(client.port, "PATCH", PROFILE_PATH + "/channel", PATCH)
        assert answer.status == 200
        with pytest.raises(UnicodeDecodeError):
            answer.body.decode("utf-8")
        assert client.channel("u")["email"] == "new@example.com"
        (entry,) = client.log()
        assert (entry["performed"], entry["fault"]) == (True, "malformed")


def test_trickle_sends_right_headers_at_once_then_the_right_body_byte_by_byte() -> None:
    faults = Faults(malformed="trickle", trickle_seconds=0.01)
    with running(faults, seed({"u": PROFILE})) as client:
        connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
        started = time.monotonic()
        connection.request("GET", f"/v1/{WSID}/live/profiles/nobody",
                           headers={"Authorization": f"Bearer {KEY}"})
        response = connection.getresponse()
        headers_after = time.monotonic() - started
        body = response.read()
        body_after = time.monotonic() - started
        connection.close()
        assert response.status == 400 and json.loads(body) == NO_PROFILE
        assert int(response.getheader("Content-Length", "0")) == len(body)
        assert headers_after < 0.5
        assert body_after >= len(body) * 0.01


def test_trickle_outlasts_a_client_read_timeout_and_the_sandbox_still_stops() -> None:
    with running(Faults(malformed="trickle"), seed({"u": PROFILE})) as client:
        connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=0.3)
        connection.request("GET", PROFILE_PATH, headers={"Authorization": f"Bearer {KEY}"})
        response = connection.getresponse()  # the headers come at once
        assert response.status == 200
        with pytest.raises(TimeoutError):
            response.read()
        connection.close()
        started = time.monotonic()
    assert time.monotonic() - started < 3


# -- success texts and Retry-After over HTTP -------------------------------------------------


def test_success_message_other_answers_202_ok_over_http() -> None:
    with running(Faults(success_message="other"), seed({"u": PROFILE})) as client:
        answer = client.patch("u", PATCH["channel"])
        assert (answer.status, answer.body) == (202, {"_message": "OK", "status": "ok"})
        assert client.channel("u")["email"] == "new@example.com"


def test_success_message_sdk_answers_the_sdk_text_to_a_patch_only() -> None:
    with running(Faults(success_message="sdk"), seed({"u": PROFILE})) as client:
        answer = client.patch("u", PATCH["channel"])
        assert answer.body == {"_message": "1 Record(s) updated successfully", "status": "ok"}
        assert client.delete("u", {"push": ["p1"]}).body == MODIFIED


def test_a_two_day_retry_after_is_sent_as_is() -> None:
    with running(Faults(throttle_rate=1.0, retry_after=172800), seed({"u": PROFILE})) as client:
        answer = client.get("u")
        assert answer.status == 429 and answer.headers["retry-after"] == "172800"
