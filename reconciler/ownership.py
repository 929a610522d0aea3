"""Who owns what on a profile shared with the app, and what that leaves the plan to do.

Fyno's SDKs add and remove push, in-app and webpush tokens on the same profiles whenever a
user installs the app; support staff edit profiles in the dashboard. So each channel of a
profile has an ownership mode (workspace default, overridden per profile):

    exclusive  what the YAML declares is the channel's complete content (the default, and the
               meaning of every file written before modes existed)
    owned      the reconciler adds and changes what is declared, and deletes only entries it
               wrote itself (its *managed* entries) or that the YAML lists under `remove`;
               entries written by others are kept, shown as unmanaged
    ignored    never planned; whatever the server holds is kept (and recorded)

An *entry* is one single value (`("email", "a@example.com")`) or one token, by its token
string (`("push", "fcm_token:abc")`). The state records, per profile, the entries the
reconciler wrote (`State.managed`), as Kubernetes' server-side apply records field managers:
an entry becomes managed when a call of ours writes it, and stops being managed when it
leaves the profile. An entry whose writer is unknown (recorded before modes existed, adopted
by `import`, added by the app) is not managed: under `owned` it is never deleted unless the
YAML lists it under `remove`, which works in every mode.

The planner does not change: `effective` turns the declaration into the complete channel data
the profile should hold under these rules, and the exclusive diff is made against that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, TypeAlias

import orjson

from reconciler.model import CHANNELS, TOKEN_CHANNELS, ChannelData, ChannelValue, Token
from reconciler.values import canonical

WEBPUSH: Final = "webpush"
"""A channel no profile API schema documents; the web SDK writes it, with tokens that are
objects. It is never planned, except for the tokens a profile's `remove:` lists."""

Entry: TypeAlias = tuple[str, str]
"""(channel, value) for a single-value channel, the value in its normal form (the same phone
number written two ways is one entry); (channel, token string) for a token."""
NO_ENTRIES: Final[frozenset[Entry]] = frozenset()


class Mode(Enum):
    """How much of a channel the configuration speaks for."""

    EXCLUSIVE = "exclusive"
    OWNED = "owned"
    IGNORED = "ignored"


MODES: Final = tuple(mode.value for mode in Mode)


@dataclass(frozen=True, slots=True)
class Policy:
    """A profile's ownership modes (a channel not named is exclusive) and explicit removals."""

    modes: Mapping[str, Mode] = field(default_factory=dict)
    remove: frozenset[Entry] = NO_ENTRIES

    def mode(self, channel: str) -> Mode:
        return self.modes.get(channel, Mode.EXCLUSIVE)

    @property
    def is_exclusive(self) -> bool:
        """Today's meaning: the declaration is complete and nothing is listed for removal."""
        return not self.remove and all(mode is Mode.EXCLUSIVE for mode in self.modes.values())

    @property
    def shared_token_channels(self) -> frozenset[str]:
        """Token channels others may write to: tokens there are only ever deleted by name."""
        return frozenset(channel for channel in TOKEN_CHANNELS
                         if self.mode(channel) is not Mode.EXCLUSIVE)

    def to_json(self) -> dict[str, Any]:
        """As a saved plan carries it: the modes, and the removals as a `channel`-like
        object (a single value, or a list of token strings)."""
        remove: dict[str, Any] = {}
        for channel, value in sorted(self.remove):
            if channel in TOKEN_CHANNELS or channel == WEBPUSH:
                remove.setdefault(channel, []).append(value)
            else:
                remove[channel] = value
        return {"modes": {channel: mode.value for channel, mode in sorted(self.modes.items())},
                "remove": remove}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        """From a validated saved plan."""
        remove: list[Entry] = []
        for channel, value in data["remove"].items():
            if isinstance(value, list):
                remove.extend((channel, token) for token in value)
            else:
                remove.append((channel, value))
        return cls({channel: Mode(mode) for channel, mode in data["modes"].items()},
                   frozenset(remove))


EXCLUSIVE: Final = Policy()


@dataclass(frozen=True, slots=True)
class Ownership:
    """The policies of a configuration: the workspace's default modes, and the policies of
    profiles that set their own modes or list removals."""

    default: Policy = EXCLUSIVE
    profiles: Mapping[str, Policy] = field(default_factory=dict)

    def policy(self, distinct_id: str) -> Policy:
        """A declared profile's policy; a profile no longer declared has the default's."""
        return self.profiles.get(distinct_id, self.default)

    @property
    def is_exclusive(self) -> bool:
        return self.default.is_exclusive and not self.profiles


EVERYTHING_EXCLUSIVE: Final = Ownership()


def merged_modes(default: Mapping[str, Mode], override: Mapping[str, Mode]) -> dict[str, Mode]:
    """A profile's modes: the workspace's, with the profile's own on top."""
    return {**default, **override} if override else dict(default)


def entry_of(channel: str, value: str | Token) -> Entry:
    """The entry a value or a token is."""
    if isinstance(value, Token):
        return channel, value.token
    return channel, canonical(channel, value)


def webpush_key(token: Any) -> str:
    """A web push token (a PushSubscription object, or a string) as one canonical text."""
    return orjson.dumps(token, option=orjson.OPT_SORT_KEYS).decode()


def webpush_removals(data: ChannelData, policy: Policy) -> tuple[str, ...]:
    """The web push tokens `data` holds that `policy` lists for removal, as `webpush_key`s."""
    if not policy.remove:
        return ()
    held = data.unmanaged.get(WEBPUSH)
    found: list[str] = []
    for item in held if isinstance(held, list) else ():
        key = webpush_key(item.get("token") if isinstance(item, dict) else item)
        if (WEBPUSH, key) in policy.remove and key not in found:
            found.append(key)
    return tuple(found)


def entries(data: ChannelData) -> frozenset[Entry]:
    """Every entry `data` holds."""
    found: list[Entry] = []
    for channel, value in data.channels.items():
        if isinstance(value, str):
            found.append((channel, canonical(channel, value)))
        else:
            found.extend((channel, token.token) for token in value)
    return frozenset(found)


def still_managed(managed: frozenset[Entry], wrote: Iterable[Entry],
                  now: ChannelData) -> frozenset[Entry]:
    """What stays managed once the profile holds `now`, after calls that wrote `wrote`: an
    entry that left the profile (deleted, or changed by someone else) is no longer ours."""
    held = entries(now)
    return (managed | frozenset(wrote)) & held


def effective(desired: ChannelData, recorded: ChannelData, policy: Policy,
              managed: frozenset[Entry]) -> ChannelData:
    """The complete channel data the profile should hold: what the declaration means under
    `policy`, given what is recorded and which of it the reconciler wrote (`managed`)."""
    if policy.is_exclusive:
        return desired
    channels: dict[str, ChannelValue] = {}
    for channel in CHANNELS:
        mode = policy.mode(channel)
        want = desired.channels.get(channel)
        have = recorded.channels.get(channel)
        if mode is Mode.EXCLUSIVE:
            value = want
        elif mode is Mode.IGNORED:
            value = have
        elif isinstance(have, tuple) or isinstance(want, tuple):
            value = _owned_tokens(channel, want, have, managed)
        else:
            value = want if want is not None else (
                None if have is None or (channel, canonical(channel, have)) in managed
                else have)
        value = _without_removals(channel, value, policy.remove)
        if value:
            channels[channel] = value
    return ChannelData(channels, desired.unmanaged)


def unmanaged(recorded: ChannelData, policy: Policy,
              managed: frozenset[Entry]) -> tuple[Entry, ...]:
    """Entries the reconciler keeps without managing them: in `owned` channels those it did
    not write, and everything in `ignored` channels; sorted, for display."""
    if policy.is_exclusive:
        return ()
    return tuple(sorted(
        entry for entry in entries(recorded)
        if (mode := policy.mode(entry[0])) is Mode.IGNORED
        or (mode is Mode.OWNED and entry not in managed)))


def _owned_tokens(channel: str, want: ChannelValue | None, have: ChannelValue | None,
                  managed: frozenset[Entry]) -> tuple[Token, ...]:
    declared = want if isinstance(want, tuple) else ()
    named = {token.token for token in declared}
    kept = tuple(token for token in (have if isinstance(have, tuple) else ())
                 if token.token not in named and (channel, token.token) not in managed)
    return declared + kept


def _without_removals(channel: str, value: ChannelValue | None,
                      remove: frozenset[Entry]) -> ChannelValue | None:
    if value is None or not remove:
        return value
    if isinstance(value, str):
        return None if (channel, canonical(channel, value)) in remove else value
    return tuple(token for token in value if (channel, token.token) not in remove)


def declared_part(target: ChannelData, recorded: ChannelData, policy: Policy,
                  managed: frozenset[Entry]) -> ChannelData:
    """What a plan's `target` declares, less the entries it only keeps because others wrote
    them: what a read-back during apply plans toward again (`effective` then keeps whatever
    others hold at that moment, which may have changed since the plan)."""
    kept = frozenset(unmanaged(recorded, policy, managed))
    if not kept:
        return target
    channels: dict[str, ChannelValue] = {}
    for channel, value in target.channels.items():
        if isinstance(value, str):
            if (channel, canonical(channel, value)) not in kept:
                channels[channel] = value
        elif tokens := tuple(token for token in value if (channel, token.token) not in kept):
            channels[channel] = tokens
    return ChannelData(channels, target.unmanaged)

