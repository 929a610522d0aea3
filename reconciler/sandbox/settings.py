"""The sandbox's settings: which faults to inject, which UNKNOWN behaviour to play, and where.

Defaults are the strictest documented behaviour of the real API (see fyno-api.md): no faults,
a multi-channel delete naming an empty channel fails whole, an absent token fails the delete,
a re-sent token is updated in place, empty channels are left out of a profile, success texts
are the documented ones, phone numbers are stored as sent, and nothing stands between the
client and the API.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DELETE_EMPTY = ("fail-whole", "fail-partial", "succeed")
ABSENT_TOKEN = ("fail", "succeed")
RESEND_TOKEN = ("update", "duplicate", "ignore", "merge")
EMPTY_CHANNELS = ("omit", "empty")
SUCCESS_MESSAGE = ("documented", "sdk", "other")
PHONE_FORMAT = ("as-sent", "international")
GATEWAY = ("none", "403", "404", "html", "redirect")
GATEWAY_PATHS = ("all", "reads", "writes")
SHAPE_MALFORMED = (
    "no-channel", "channel-string", "channel-null", "channel-list",
    "token-number", "token-missing", "email-number",
)
"""Malformed profile bodies: valid JSON of the wrong shape, so only GET answers can carry them."""
BODY_MALFORMED = ("html", "text", "undecodable", "trickle")
"""Malformed answers whatever they answer: a body that is not JSON, or one sent too slowly."""
MALFORMED = ("none", *SHAPE_MALFORMED, *BODY_MALFORMED)
MALFORMED_PATHS = ("reads", "writes", "all")


def _check_number(name: str, value: object, *, upper: float = math.inf) -> None:
    # bool is an int subclass: `true` in a JSON fault file is a typo, not 1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    # infinity too: JSON allows `Infinity`, and no header or sleep can carry it
    if not math.isfinite(value) or not (0 <= value <= upper):
        bound = f"between 0 and {upper:g}" if upper != math.inf else "0 or more"
        raise ValueError(f"{name} must be a finite number {bound}, not {value!r}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def applies(paths: str, method: str) -> bool:
    """Whether a `*_paths` setting (all | reads | writes) covers a request of this method."""
    return paths == "all" or (paths == "reads") == (method == "GET")


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
    """Seconds sent in `Retry-After` with a `throttle_rate` 429 (any size: 172800 is two days)."""
    lose_rate: float = 0
    """Share of WRITE requests that are performed, then answered by closing the connection."""
    reset_rate: float = 0
    """Share of API requests whose connection is reset before the request is read: nothing done."""
    max_rps: float = 0
    """Accepted API requests per second (0: no limit); beyond it 429 with `Retry-After`."""
    delete_empty: str = "fail-whole"
    """Option 1 naming an empty channel beside others: fail-whole | fail-partial | succeed."""
    absent_token: str = "fail"
    """Option 2 naming a token not on the profile: fail (nothing deleted) | succeed."""
    resend_token: str = "update"
    """PATCH re-sending a token already there: update (replaced by the one sent) | duplicate
    (a second copy) | ignore (the stored one kept as it was) | merge (the fields sent
    overwrite the stored ones, the others are kept)."""
    empty_channels: str = "omit"
    """How GET shows an empty channel: omit | empty ("" or [])."""
    success_message: str = "documented"
    """Text of a successful write: documented ("Channel has been modified successfully") |
    sdk (PATCH answers "1 Record(s) updated successfully", as the Node SDK's test expects) |
    other (every successful write answers 202 "OK")."""
    phone_format: str = "as-sent"
    """How a written phone number (sms, whatsapp, voice) is stored and read back: as-sent |
    international (libphonenumber's international format, "+91 98790 00000", for a number it
    can read; whether Fyno reformats what it stores is UNKNOWN, and `channel_raw` hints that
    it may)."""
    gateway: str = "none"
    """Something in front of the API answering instead of it, before the key is checked:
    none | 403 (JSON `{"message": "Forbidden"}`) | 404 (Express's HTML "Cannot GET /path") |
    html (200, a sign-in page) | redirect (302 to another site)."""
    gateway_paths: str = "all"
    """Which requests the gateway answers: all | reads (GET) | writes (all but GET)."""
    malformed: str = "none"
    """A hostile answer: none | no-channel | channel-string | channel-null | channel-list |
    token-number | token-missing | email-number (GET profile bodies of the wrong shape) |
    html | text | undecodable (200 with a body that is not JSON) | trickle (the right answer,
    one byte per `trickle_seconds`)."""
    malformed_paths: str = "reads"
    """Whose answers are malformed: reads (GET) | writes (after the write was performed) | all."""
    malformed_rate: float = 1
    """Share of the answers `malformed` covers that are malformed, drawn from the seeded RNG."""
    trickle_seconds: float = 1
    """Seconds before each byte of a `malformed=trickle` body."""
    seed: int = 0
    """Seed of the random draws behind every rate, so that a run can be replayed."""

    def __post_init__(self) -> None:
        _check_number("latency_ms", self.latency_ms)
        for name in ("error_rate", "throttle_rate", "lose_rate", "reset_rate", "malformed_rate"):
            _check_number(name, getattr(self, name), upper=1)
        _check_number("retry_after", self.retry_after)
        _check_number("max_rps", self.max_rps)
        _check_number("trickle_seconds", self.trickle_seconds)
        _check_choice("delete_empty", self.delete_empty, DELETE_EMPTY)
        _check_choice("absent_token", self.absent_token, ABSENT_TOKEN)
        _check_choice("resend_token", self.resend_token, RESEND_TOKEN)
        _check_choice("empty_channels", self.empty_channels, EMPTY_CHANNELS)
        _check_choice("success_message", self.success_message, SUCCESS_MESSAGE)
        _check_choice("phone_format", self.phone_format, PHONE_FORMAT)
        _check_choice("gateway", self.gateway, GATEWAY)
        _check_choice("gateway_paths", self.gateway_paths, GATEWAY_PATHS)
        _check_choice("malformed", self.malformed, MALFORMED)
        _check_choice("malformed_paths", self.malformed_paths, MALFORMED_PATHS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")
        if self.error_rate + self.throttle_rate > 1:
            # both are shares of the same requests, decided by one draw
            raise ValueError("error_rate + throttle_rate must not exceed 1")
        if self.malformed in SHAPE_MALFORMED and self.malformed_paths == "writes":
            # a write answers an envelope, not a profile: the switch would do nothing
            raise ValueError(f"malformed={self.malformed} shapes GET profile bodies only: "
                             "use malformed_paths reads or all")

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
