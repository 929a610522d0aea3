"""What the API answers, judged once: no httpx here.

Only Fyno's documented answers are data (fyno-api.md): a 2xx whose body has Fyno's shape,
a 400 with Fyno's JSON error envelope, a 429, a 5xx. The client sorts every answer into a
`Verdict` here, by status code and shape, never by message text (Fyno's messages are
examples, not enums); 401 and the answers that only a misconfiguration explains (404, 403,
a redirect, a body that is not Fyno's envelope) never become an `Answer`: the client raises
`ApiAuthError` or `UnexpectedAnswerError`, which stop the whole command.

Kept apart from `api.py` so that the executor, and every command that never calls the API,
do not pay for importing httpx (about 0.1 s of every start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from reconciler.plan import HttpRequest


class Verdict(Enum):
    """What an answer means for the request it answers."""

    OK = "ok"
    """2xx, in Fyno's shape: done."""
    REFUSED = "refused"
    """400 with Fyno's error envelope. For a GET: no such profile. For a write: the server
    says it did nothing, but the same 400 also answers a delete that a lost first attempt
    already did, so a write's 400 is settled by reading the profile back."""
    THROTTLED = "throttled"
    """429: nothing was done; send again after `retry_after`."""
    SERVER_ERROR = "server_error"
    """5xx: the server may or may not have acted."""
    MALFORMED = "malformed"
    """2xx whose body is not Fyno's shape: a read learnt nothing; a write may have landed."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer of the API that is one of Fyno's documented answers."""

    status: int
    verdict: Verdict
    message: str = ""  # the envelope's `_message`, for people and the audit ledger only
    body: Any = None  # the parsed JSON body (a valid profile for a GET that is OK)
    retry_after: float | None = None  # seconds, from a `Retry-After` header
    problem: str = ""  # why a MALFORMED answer is not Fyno's shape

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


def judge(status: int, body: Any, *, shape_problem: str | None) -> Verdict | None:
    """The verdict on an answer, or None when only a misconfiguration explains it.

    `shape_problem`: why `body` is not the shape expected of a success (None: it is).
    `body` is the decoded JSON (None when the body was not JSON). 401 is not judged here:
    the client turns it into `ApiAuthError` before.
    """
    if 200 <= status < 300:
        return Verdict.OK if shape_problem is None else Verdict.MALFORMED
    if status == 429:
        return Verdict.THROTTLED
    if status >= 500:
        return Verdict.SERVER_ERROR
    if status == 400 and is_error_envelope(body):
        return Verdict.REFUSED
    return None  # 3xx, 403, 404, other 4xx, a 400 that is not Fyno's: a setup error


def is_error_envelope(body: Any) -> bool:
    """Fyno's error body, `{"_message": "...", "status": "error"}` (DOC)."""
    return isinstance(body, dict) and isinstance(body.get("_message"), str) \
        and body.get("status", "error") == "error"


class ProfileApi(Protocol):
    """What the executor needs of the API; tests substitute fakes and `httpx.MockTransport`.

    Both methods return an `Answer` or raise: `ApiAuthError` (401),
    `UnexpectedAnswerError` (not an answer of Fyno's API), `NotSentError` (the request never
    left: safe to send again), `NoAnswerError` (it may have reached the server).
    """

    @property
    def where(self) -> str:
        """The API's base URL, workspace and version, for messages."""

    def get_profile(self, distinct_id: str) -> Answer: ...

    def send(self, request: HttpRequest) -> Answer:
        """Send one write, exactly as the plan's call describes it."""

    def close(self) -> None: ...
