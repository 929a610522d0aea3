"""Before the first read or write: is it Fyno's profile API that answers, and does it take us?

One GET of a profile id that no one uses. Fyno answers it 400 with its JSON error envelope
("no such profile"), or 200 with a profile; 401 means a wrong key or workspace. Anything else
(a 404 from a base URL without `/v1`, a 403 from a gateway or an IP allow-list, an HTML page,
a redirect) means something else answered, and the command stops before it touches anything.
A connection that cannot be made is tried a few times, quickly, then reported with its cause.
"""

from __future__ import annotations

import time
from typing import Final

from reconciler.answers import ProfileApi, Verdict
from reconciler.errors import NoAnswerError, NotSentError, UnexpectedAnswerError, UnreachableError
from reconciler.pacing import DEFAULT_RETRY, RetryPolicy

PROBE_ID: Final = "reconciler-preflight-probe"
"""The profile the check reads: any id works; this one says who asked, in the server's logs."""
ATTEMPTS: Final = 3
"""Tries before an API that cannot be reached is reported: with the backoff below, a few
seconds at most, not the minutes a whole run's retries would take."""


def preflight(api: ProfileApi, retry: RetryPolicy = DEFAULT_RETRY) -> None:
    """Raise `ApiAuthError`, `UnexpectedAnswerError` or `UnreachableError` unless the profile
    API answers as it should. A 429 or 5xx says the API is there: the run's retries deal
    with those."""
    attempts = 0
    while True:
        attempts += 1
        try:
            answer = api.get_profile(PROBE_ID)
        except (NotSentError, NoAnswerError) as error:
            if attempts >= ATTEMPTS:
                raise UnreachableError(f"cannot use the Fyno API: {error}") from None
            time.sleep(min(1.0, retry.base * 2 ** (attempts - 1)))
            continue
        if answer.verdict is Verdict.MALFORMED:
            raise UnexpectedAnswerError(
                f"GET of a profile at {api.where} answered {answer.status}, but "
                f"{answer.problem}: this is not Fyno's profile API; check FYNO_BASE_URL and "
                "any proxy in between. Nothing was recorded.")
        return
