"""The API client against `httpx.MockTransport`: paths, headers, and how answers are sorted."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from reconciler.api import FynoClient
from reconciler.errors import ApiAuthError, ApiSetupError, NoAnswerError, NotSentError

KEY = "sk-test-0123456789abcdef"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> FynoClient:
    return FynoClient(base_url="https://api.example.test/v1", api_key=KEY, workspace="FYWS1",
                      version="test", transport=httpx.MockTransport(handler))


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"_message": "Channel has been modified successfully",
                                     "status": "ok"})


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

    client(handler).delete_channel(distinct_id, {"channel": ["sms"]})
    assert seen == [f"/v1/FYWS1/test/profiles/{segment}/channel/delete".encode()]


def test_requests_carry_the_bearer_key_and_json_bodies() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    api = client(handler)
    api.patch_channel("u1", {"channel": {"email": "a@x.io"}})
    api.create_profile("u2", {"sms": "+1555"})
    patch, create = seen
    assert patch.method == "PATCH" and patch.url.path == "/v1/FYWS1/test/profiles/u1/channel"
    assert patch.headers["Authorization"] == f"Bearer {KEY}"
    assert patch.headers["Content-Type"] == "application/json"
    assert json.loads(patch.content) == {"channel": {"email": "a@x.io"}}
    assert create.method == "POST" and create.url.path == "/v1/FYWS1/test/profiles"
    assert json.loads(create.content) == {"distinct_id": "u2", "channel": {"sms": "+1555"}}


def test_answers_carry_status_message_and_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3"},
                              json={"_message": "slow down", "status": "error"})

    answer = client(handler).get_profile("u1")
    assert (answer.status, answer.message, answer.retry_after, answer.ok) == (
        429, "slow down", 3.0, False)


def test_unknown_profile_is_recognised_as_400_or_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/a"):
            return httpx.Response(400, json={
                "_message": "incorrect/non existing distinct_id provided", "status": "error"})
        return httpx.Response(404, text="not found")

    api = client(handler)
    assert api.get_profile("a").no_such_profile
    assert api.get_profile("b").no_such_profile


def test_401_raises_auth_error_without_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"_message": "Invalid API details", "status": "error"})

    with pytest.raises(ApiAuthError) as caught:
        client(handler).get_profile("u1")
    assert "401" in str(caught.value) and KEY not in str(caught.value)


def test_a_request_that_never_left_is_not_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(NotSentError) as caught:
        client(handler).delete_channel("u1", {"channel": ["sms"]})
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError,
                                     httpx.ReadError])
def test_a_request_without_an_answer_has_an_unknown_outcome(failure: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure("gone", request=request)  # type: ignore[call-arg]

    with pytest.raises(NoAnswerError):
        client(handler).patch_channel("u1", {"channel": {"sms": "+1"}})


def test_a_missing_key_is_a_setup_error() -> None:
    with pytest.raises(ApiSetupError, match="FYNO_API_KEY is not set"):
        FynoClient.from_env({}, workspace="FYWS1", version="live")
