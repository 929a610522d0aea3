"""The API client against `httpx.MockTransport`: paths, headers, and how answers are judged."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reconciler import __version__
from reconciler.answers import Verdict
from reconciler.api import FynoClient, Timeouts, proxy_for
from reconciler.errors import (
    ApiAuthError,
    ApiSetupError,
    NoAnswerError,
    NotSentError,
    UnexpectedAnswerError,
)
from reconciler.plan import DeleteChannels, HttpRequest

KEY = "sk-test-0123456789abcdef"
PROFILE = {"distinct_id": "u1", "name": None, "channel": {"email": "a@x.io"},
           "properties": {}, "channel_raw": {}}


def client(handler: Callable[[httpx.Request], httpx.Response],
           timeouts: Timeouts | None = None) -> FynoClient:
    return FynoClient(base_url="https://api.example.test/v1", api_key=KEY, workspace="FYWS1",
                      version="test", transport=httpx.MockTransport(handler),
                      timeouts=timeouts or Timeouts())


def answering(status: int, **kwargs: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, **kwargs)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"_message": "Channel has been modified successfully",
                                     "status": "ok"})


WRITE = HttpRequest("PATCH", "/profiles/u1/channel", {"channel": {"sms": "+1"}})


@pytest.mark.parametrize(("distinct_id", "segment"), [
    ("u-1001", "u-1001"),
    ("a/b", "a%2Fb"),
    ("../x", "..%2Fx"),
    ("..", "%2E%2E"),
    ("a?b#c", "a%3Fb%23c"),
    ("%2F", "%252F"),
    ("x y", "x%20y"),
    ("ünï", "%C3%BCn%C3%AF"),
])
def test_distinct_id_is_exactly_one_encoded_path_segment(distinct_id: str, segment: str) -> None:
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return ok(request)

    call = DeleteChannels(distinct_id, ())
    client(handler).send(call.request())
    assert seen == [f"/v1/FYWS1/test/profiles/{segment}/channel/delete".encode()]


def test_requests_carry_the_key_a_user_agent_and_the_calls_own_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    client(handler).send(WRITE)
    (patch,) = seen
    assert patch.method == "PATCH" and patch.url.path == "/v1/FYWS1/test/profiles/u1/channel"
    assert patch.headers["Authorization"] == f"Bearer {KEY}"
    assert patch.headers["Content-Type"] == "application/json"
    assert patch.headers["User-Agent"] == f"reconciler/{__version__}"
    assert json.loads(patch.content) == {"channel": {"sms": "+1"}}


@pytest.mark.parametrize(("status", "message"), [
    (200, "Channel has been modified successfully"),
    (200, "1 Record(s) updated successfully"),  # what Fyno's own SDK test expects
    (202, "OK"),
    (201, "Profile created successfully"),
])
def test_any_2xx_in_fynos_envelope_is_success_whatever_its_text(status: int,
                                                                message: str) -> None:
    answer = client(answering(status, json={"_message": message, "status": "ok"})).send(WRITE)
    assert answer.verdict is Verdict.OK and answer.message == message


def test_a_400_in_fynos_envelope_is_a_refusal_for_any_text() -> None:
    body = {"_message": "some text no one documented", "status": "error"}
    answer = client(answering(400, json=body)).get_profile("u1")
    assert answer.verdict is Verdict.REFUSED


def test_429_carries_retry_after_in_seconds_or_as_a_date() -> None:
    answer = client(answering(429, headers={"Retry-After": "3"}, text="")).get_profile("u1")
    assert (answer.verdict, answer.retry_after) == (Verdict.THROTTLED, 3.0)
    date = "Wed, 21 Oct 2099 07:28:00 GMT"
    far = client(answering(429, headers={"Retry-After": date})).get_profile("u1")
    assert far.retry_after is not None and far.retry_after > 86400
    for garbage in ("soon", "nan", "Wed, 99 Foo"):
        odd = client(answering(429, headers={"Retry-After": garbage})).get_profile("u1")
        assert odd.retry_after is None


def test_5xx_with_any_body_is_a_server_error() -> None:
    answer = client(answering(502, text="<html>Bad gateway</html>")).send(WRITE)
    assert answer.verdict is Verdict.SERVER_ERROR


@pytest.mark.parametrize(("status", "kwargs", "hint"), [
    (404, {"text": "<!DOCTYPE html><pre>Cannot GET /FYWS1/test/profiles/u1</pre>",
           "headers": {"Content-Type": "text/html"}}, "must end in /v1"),
    (404, {"json": {"_message": "Not found", "status": "error"}}, "must end in /v1"),
    (403, {"json": {"message": "Forbidden"}}, "allow-list"),
    (302, {"headers": {"Location": "https://login.example.test/"}}, "redirects to"),
    (400, {"text": "Bad Request", "headers": {"Content-Type": "text/plain"}}, "FYNO_BASE_URL"),
    (418, {"json": {}}, "FYNO_BASE_URL"),
])
def test_answers_only_a_misconfiguration_explains_are_setup_errors(
        status: int, kwargs: dict[str, Any], hint: str) -> None:
    for call in (lambda api: api.get_profile("u1"), lambda api: api.send(WRITE)):
        with pytest.raises(UnexpectedAnswerError) as caught:
            call(client(answering(status, **kwargs)))
        message = str(caught.value)
        assert f"answered {status}" in message and "https://api.example.test/v1/FYWS1" in message
        assert hint in message and KEY not in message


@pytest.mark.parametrize(("content", "why"), [
    (json.dumps({**PROFILE, "channel": "sms"}), "channel"),
    (json.dumps({k: v for k, v in PROFILE.items() if k != "channel"}), "channel"),
    (json.dumps({**PROFILE, "channel": None}), "channel"),
    (json.dumps({**PROFILE, "channel": []}), "channel"),
    (json.dumps({**PROFILE, "channel": {"push": [{"token": 12}]}}), "token"),
    (json.dumps({**PROFILE, "channel": {"push": [{"status": 1}]}}), "token"),
    (json.dumps({**PROFILE, "channel": {"email": 42}}), "email"),
    ("<html><body>Sign in</body></html>", "JSON"),
    ("OK", "JSON"),
    (b"\xff\xfe{\"channel\"", "JSON"),
    ("", "JSON"),
])
def test_a_200_read_not_in_fynos_shape_is_malformed(content: str | bytes, why: str) -> None:
    answer = client(answering(200, content=content)).get_profile("u1")
    assert answer.verdict is Verdict.MALFORMED and answer.body is None
    assert why.lower() in answer.problem.lower()


def test_a_valid_profile_is_ok_with_its_body() -> None:
    answer = client(answering(200, json=PROFILE)).get_profile("u1")
    assert answer.verdict is Verdict.OK and answer.body["channel"] == {"email": "a@x.io"}


def test_a_200_write_with_an_html_body_is_malformed_not_success() -> None:
    answer = client(answering(200, text="<html>hello</html>")).send(WRITE)
    assert answer.verdict is Verdict.MALFORMED


class _Trickle(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        for byte in json.dumps(PROFILE).encode():
            time.sleep(0.02)
            yield bytes([byte])


def test_an_answer_trickling_past_the_overall_deadline_is_no_answer() -> None:
    api = client(lambda request: httpx.Response(200, stream=_Trickle()),
                 timeouts=Timeouts(total=0.3))
    started = time.monotonic()
    with pytest.raises(NoAnswerError, match=r"longer than 0\.3 s"):
        api.get_profile("u1")
    assert time.monotonic() - started < 2


def test_401_raises_auth_error_without_the_key() -> None:
    with pytest.raises(ApiAuthError) as caught:
        client(answering(401, json={"_message": "Invalid API details", "status": "error"})
               ).get_profile("u1")
    assert "401" in str(caught.value) and KEY not in str(caught.value)


def test_a_request_that_never_left_is_not_sent_and_says_why() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(NotSentError) as caught:
        client(handler).send(WRITE)
    assert "Connection refused" in str(caught.value) and KEY not in str(caught.value)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError,
                                     httpx.ReadError])
def test_a_request_without_an_answer_has_an_unknown_outcome(failure: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure("gone", request=request)  # type: ignore[call-arg]

    with pytest.raises(NoAnswerError):
        client(handler).send(WRITE)


def test_a_missing_key_or_an_unusable_url_is_a_setup_error() -> None:
    with pytest.raises(ApiSetupError, match="FYNO_API_KEY is not set"):
        FynoClient.from_env({}, workspace="FYWS1", version="live")
    for url in ("ftp://x/v1", "api.fyno.io/v1", "http:///v1"):
        with pytest.raises(ApiSetupError, match="FYNO_BASE_URL"):
            FynoClient.from_env({"FYNO_API_KEY": "k", "FYNO_BASE_URL": url},
                                workspace="FYWS1", version="live")


@pytest.mark.parametrize(("env", "url", "proxy"), [
    ({}, "https://api.fyno.io/v1", None),
    ({"HTTPS_PROXY": "http://proxy:3128"}, "https://api.fyno.io/v1", "http://proxy:3128"),
    ({"https_proxy": "proxy:3128"}, "https://api.fyno.io/v1", "http://proxy:3128"),
    ({"HTTP_PROXY": "http://p:1"}, "https://api.fyno.io/v1", None),
    ({"HTTP_PROXY": "http://p:1"}, "http://127.0.0.1:8080/v1", "http://p:1"),
    ({"ALL_PROXY": "http://p:2"}, "https://api.fyno.io/v1", "http://p:2"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "fyno.io"}, "https://api.fyno.io/v1", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".fyno.io:443"}, "https://api.fyno.io/v1",
     None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "https://api.fyno.io/v1", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "notfyno.io"}, "https://api.fyno.io/v1",
     "http://p:1"),
    ({"HTTP_PROXY": "http://p:1", "no_proxy": "localhost,[::1]"}, "http://[::1]:80/v1", None),
])
def test_proxies_come_from_the_usual_variables(env: dict[str, str], url: str,
                                               proxy: str | None) -> None:
    assert proxy_for(httpx.URL(url), env) == proxy
