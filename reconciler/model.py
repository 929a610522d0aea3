"""The channel data of a profile: one type for desired state (YAML) and recorded state (JSON).

Both sides of a diff are `ChannelData`, so the planner compares like with like. The JSON form
of `ChannelData` is exactly the `channel` object of Fyno's profile API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeAlias

SINGLE_VALUE_CHANNELS: Final = ("sms", "whatsapp", "voice", "email", "slack", "discord", "teams")
TOKEN_CHANNELS: Final = ("push", "inapp")
CHANNELS: Final = SINGLE_VALUE_CHANNELS + TOKEN_CHANNELS
CHANNEL_ORDER: Final = {name: index for index, name in enumerate(CHANNELS)}


class Token(NamedTuple):
    """One push or in-app token. Its identity is the token string alone.

    A named tuple rather than a frozen dataclass: states and configurations hold hundreds of
    thousands of tokens, and a tuple is built and compared in C, several times faster.
    """

    token: str
    integration_id: str | None = None  # None: valid for every integration
    status: int = 1  # the API's default when a token is sent without one

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"token": self.token}
        if self.integration_id is not None:
            body["integration_id"] = self.integration_id
        body["status"] = self.status
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Token:
        status = data.get("status")
        # Positional: read for every token of a state or a saved plan, and keywords cost.
        return cls(data["token"], data.get("integration_id"), 1 if status is None else int(status))


ChannelValue: TypeAlias = str | tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class ChannelData:
    """What one profile holds: non-empty managed channels, plus channel keys we do not manage.

    `channels` never holds an empty value: an empty channel is an absent one.
    `unmanaged` keeps channel keys read from the server that the reconciler does not know
    (e.g. `webpush`), so that they survive a round trip and are never planned for deletion.
    """

    channels: Mapping[str, ChannelValue] = field(default_factory=dict)
    unmanaged: Mapping[str, Any] = field(default_factory=dict)

    def entry_count(self) -> int:
        """Entries as the safety rail counts them: one per single value, one per token."""
        return sum(1 if isinstance(value, str) else len(value) for value in self.channels.values())

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.unmanaged)
        for name in sorted(self.channels, key=CHANNEL_ORDER.__getitem__):
            value = self.channels[name]
            body[name] = value if isinstance(value, str) else [token.to_json() for token in value]
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChannelData:
        """Read an API/state `channel` object; `""`, `[]` and null count as absent."""
        channels: dict[str, ChannelValue] = {}
        unmanaged: dict[str, Any] = {}
        for name, value in data.items():
            if name in TOKEN_CHANNELS:
                if value:
                    channels[name] = tuple(Token.from_json(item) for item in value)
            elif name in SINGLE_VALUE_CHANNELS:
                if value:
                    channels[name] = value
            else:
                unmanaged[name] = value
        return cls(channels, unmanaged)


EMPTY: Final = ChannelData()
