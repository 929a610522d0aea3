"""The sandbox's settings: which faults to inject, which UNKNOWN behaviour to play, and where.

Defaults are the strictest documented behaviour of the real API (see fyno-api.md): no faults,
a multi-channel delete naming an empty channel fails whole, an absent token fails the delete,
a re-sent token is updated in place, and empty channels are left out of a profile.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DELETE_EMPTY = ("fail-whole", "fail-partial", "succeed")
ABSENT_TOKEN = ("fail", "succeed")
RESEND_TOKEN = ("update", "duplicate")
EMPTY_CHANNELS = ("omit", "empty")


def _check_number(name: str, value: object, *, upper: float = math.inf) -> None:
    # bool is an int subclass: `true` in a JSON fault file is a typo, not 1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not (0 <= value <= upper) or math.isnan(value):
        bound = f"between 0 and {upper:g}" if upper != math.inf else "0 or more"
        raise ValueError(f"{name} must be {bound}, not {value!r}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


@dataclass(frozen=True)
class Faults:
    """What the sandbox does wrong, or how it resolves an UNKNOWN of the API, on purpose."""

    latency_ms: float = 0
    """Added to every API request before it is answered."""
    error_rate: float = 0
    """Share of API requests answered 500 or 503 (chosen at random) before doing anything."""
    throttle_rate: float = 0
    """Share of API requests answered 429 with `Retry-After` before doing anything."""
    retry_after: float = 1
    """Seconds sent in `Retry-After` with a `throttle_rate` 429."""
    lose_rate: float = 0
    """Share of WRITE requests that are performed, then answered by closing the connection."""
    max_rps: float = 0
    """Accepted API requests per second (0: no limit); beyond it 429 with `Retry-After`."""
    delete_empty: str = "fail-whole"
    """Option 1 naming an empty channel beside others: fail-whole | fail-partial | succeed."""
    absent_token: str = "fail"
    """Option 2 naming a token not on the profile: fail (nothing deleted) | succeed."""
    resend_token: str = "update"
    """PATCH re-sending a token already there: update (in place) | duplicate (a second copy)."""
    empty_channels: str = "omit"
    """How GET shows an empty channel: omit | empty ("" or [])."""
    seed: int = 0
    """Seed of the random draws behind every rate, so that a run can be replayed."""

    def __post_init__(self) -> None:
        _check_number("latency_ms", self.latency_ms)
        for name in ("error_rate", "throttle_rate", "lose_rate"):
            _check_number(name, getattr(self, name), upper=1)
        _check_number("retry_after", self.retry_after)
        _check_number("max_rps", self.max_rps)
        _check_choice("delete_empty", self.delete_empty, DELETE_EMPTY)
        _check_choice("absent_token", self.absent_token, ABSENT_TOKEN)
        _check_choice("resend_token", self.resend_token, RESEND_TOKEN)
        _check_choice("empty_channels", self.empty_channels, EMPTY_CHANNELS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")
        if self.error_rate + self.throttle_rate > 1:
            # both are shares of the same requests, decided by one draw
            raise ValueError("error_rate + throttle_rate must not exceed 1")

    @classmethod
    def from_json(cls, data: object) -> Faults:
        """Faults from a JSON object of field names (missing ones default); ValueError if bad."""
        if not isinstance(data, Mapping):
            raise ValueError("faults must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        return cls(**dict(data))

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object, the shape `from_json` and `PUT /_sandbox/faults` take."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SandboxConfig:
    """Where the sandbox listens, the one API key it accepts, its faults and its first data."""

    api_key: str
    host: str = "127.0.0.1"
    port: int = 0
    """0 lets the system pick a free port; read it back from `Sandbox.url`."""
    faults: Faults = field(default_factory=Faults)
    seed_data: Mapping[str, Any] | None = None
    """`{WSID: {version: {distinct_id: channel-object}}}`, the shape of GET /_sandbox/data."""

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("the sandbox needs an API key to expect")
