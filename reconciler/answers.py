"""What the API answers, and what the executor needs of it: no httpx here.

Kept apart from `api.py` so that the executor, and every command that never calls the API,
do not pay for importing httpx (about 0.1 s of every start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

NO_SUCH_PROFILE: Final = "incorrect/non existing distinct_id provided"
CHANNEL_DOES_NOT_EXIST: Final = "Unable to delete channel since the channel does not exist"


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer of the API."""

    status: int
    message: str  # the envelope's `_message`, or "" when there is none
    body: Any  # the parsed JSON body, or None
    retry_after: float | None = None  # seconds, from a `Retry-After` header

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def no_such_profile(self) -> bool:
        """The API's answer for an unknown distinct_id: 400 as documented, 404 as an SDK checks."""
        return self.status == 404 or (self.status == 400 and self.message == NO_SUCH_PROFILE)


class ProfileApi(Protocol):
    """What the executor needs of the API; tests substitute fakes and `httpx.MockTransport`."""

    def get_profile(self, distinct_id: str) -> Answer: ...

    def patch_channel(self, distinct_id: str, body: Mapping[str, Any]) -> Answer: ...

    def delete_channel(self, distinct_id: str, body: Mapping[str, Any]) -> Answer: ...

    def create_profile(self, distinct_id: str, channel: Mapping[str, Any]) -> Answer: ...

    def close(self) -> None: ...
