"""Fuzz: whatever a server answers (any status, headers, bytes, JSON), the client returns one
of Fyno's answers or raises one of the documented errors; an answer it calls OK reads into
the model without error; and a run that reads such answers ends cleanly, recording only
bodies in Fyno's shape. Never an internal error.

The number of examples comes from the hypothesis profile (tests/conftest.py): small by
default, `HYPOTHESIS_PROFILE=fuzz` for a long run.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.answers import Verdict
from reconciler.api import FynoClient
from reconciler.errors import ApiError
from reconciler.executor import Executor
from reconciler.model import ChannelData
from reconciler.pacing import RetryPolicy
from reconciler.plan import HttpRequest
from reconciler.state import Doubt

FAST = RetryPolicy(attempts=2, base=0.0001, cap=0.001, max_wait=0.001)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=12)
tokens = st.fixed_dictionaries(
    {"token": json_values | st.text(min_size=1, max_size=6)},
    optional={"integration_id": json_values, "status": json_values})
channel_values = st.dictionaries(
    st.sampled_from(["sms", "email", "teams", "push", "inapp", "webpush", "other"]),
    json_values | st.lists(tokens, max_size=2) | st.text(max_size=6), max_size=4)
profiles = st.fixed_dictionaries(
    {"distinct_id": st.text(max_size=4)},
    optional={"channel": channel_values | json_values, "name": json_values,
              "properties": json_values, "channel_raw": json_values})
bodies = st.one_of(
    profiles.map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
    st.sampled_from([b"<html><body>Sign in</body></html>", b"OK", b"", b"\xff\xfe",
                     b'{"_message": "ok", "status": "ok"}',
                     b'{"_message": "x", "status": "error"}']),
)
statuses = st.sampled_from([200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 405, 418, 429,
                            500, 502, 503]) | st.integers(100, 599)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Retry-After", "Location"]),
    st.sampled_from(["application/json", "text/html", "1", "-5", "nan", "1e400",
                     "Wed, 21 Oct 2099 07:28:00 GMT", "soon", ""])
    | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=12),
    max_size=3)


def client(status: int, head: dict[str, str], body: bytes) -> FynoClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raw = [(name.encode(), value.encode("latin-1")) for name, value in head.items()]
        return httpx.Response(status, headers=raw, content=body)

    return FynoClient(base_url="https://api.example.test/v1", api_key="k", workspace="W",
                      version="live", transport=httpx.MockTransport(handler))


@settings(deadline=None)
@given(status=statuses, head=headers, body=bodies)
def test_every_answer_is_judged_or_a_documented_error(status: int, head: dict[str, str],
                                                      body: bytes) -> None:
    api = client(status, head, body)
    for call in (lambda: api.get_profile("u1"),
                 lambda: api.send(HttpRequest("PATCH", "/profiles/u1/channel", {}))):
        try:
            answer = call()
        except ApiError:
            continue
        assert isinstance(answer.verdict, Verdict)
        assert answer.retry_after is None or answer.retry_after >= 0
    try:
        answer = api.get_profile("u1")
    except ApiError:
        return
    if answer.ok:
        ChannelData.from_json(answer.body["channel"])  # a body in Fyno's shape reads cleanly


class _Quiet:
    def begin(self, doubt: Doubt) -> None: ...
    def abandoned(self, distinct_id: str) -> None: ...
    def done(self, *args: Any) -> None: ...
    def read_back(self, *args: Any) -> None: ...
    def unsettled(self, *args: Any) -> None: ...
    def refused(self, *args: Any) -> None: ...
    def progress(self, finished_calls: int) -> None: ...


@settings(deadline=None)
@given(status=statuses, head=headers, body=bodies)
def test_a_run_of_reads_ends_cleanly_and_keeps_only_fynos_shape(
        status: int, head: dict[str, str], body: bytes) -> None:
    executor = Executor(client(status, head, body), _Quiet(), parallelism=2, retry=FAST)
    found, outcome = executor.read(["u1", "u2"])
    if outcome.fatal is not None:
        return
    for data in found.values():
        assert data is None or isinstance(data, ChannelData)
    assert set(found) | {report.distinct_id for report in outcome.failures} == {"u1", "u2"}
