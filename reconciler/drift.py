"""Drift: what changed on the server behind the reconciler's back, as a value.

`refresh` reads every managed profile and hands each (recorded, server) pair to `compare`,
which returns a `ProfileDrift` describing the difference, or None when there is none. Each
change is a `Change` from the plan module, read as "the state recorded `before`, the server
holds `after`": `+` added on the server, `~` changed there, `-` removed there. Unmanaged
channel keys (e.g. `webpush`) are compared too and shown, never planned.

Pure: no I/O. Equal profiles, the common case over 100,000 of them, cost one comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model import CHANNELS, EMPTY, ChannelData, ChannelValue, Token
from reconciler.ownership import EXCLUSIVE, NO_ENTRIES, Entry, Mode, Policy
from reconciler.plan import Change
from reconciler.values import canonical, same_value

Unmanaged = tuple[str, Any, Any]
"""(key, recorded raw JSON, server raw JSON); None stands for absent."""


@dataclass(frozen=True, slots=True)
class ProfileDrift:
    """How one profile on the server differs from what the state recorded."""

    distinct_id: str
    changes: tuple[Change, ...]  # before: recorded, after: on the server
    unmanaged: tuple[Unmanaged, ...] = ()
    missing: bool = False  # the server has no such profile any more
    appeared: bool = False  # recorded as missing, and the server has it again
    # Changes others made where they may write (`owned` or `ignored` channels) to entries
    # that are not ours: not drift, only shown, once (the state then records them).
    foreign: tuple[Change, ...] = ()

    @property
    def is_drift(self) -> bool:
        """Whether anything changed that the configuration speaks for."""
        return bool(self.changes or self.unmanaged or self.missing or self.appeared)

    @property
    def action(self) -> str:
        """The profile's marker: `-` deleted on the server, `+` back there, else `~`."""
        if self.missing:
            return "-"
        if self.appeared:
            return "+"
        return "~"

    @property
    def entries(self) -> int:
        """Changed channel entries plus changed unmanaged keys."""
        return len(self.changes) + len(self.unmanaged)

    def to_json(self) -> dict[str, Any]:
        return {
            "distinct_id": self.distinct_id,
            "missing": self.missing,
            "appeared": self.appeared,
            "changes": [change.to_json() for change in self.changes],
            "unmanaged": [{"key": key, "before": before, "after": after}
                          for key, before, after in self.unmanaged],
            "foreign": [change.to_json() for change in self.foreign],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileDrift:
        return cls(
            distinct_id=data["distinct_id"],
            changes=tuple(Change.from_json(item) for item in data["changes"]),
            unmanaged=tuple((item["key"], item["before"], item["after"])
                            for item in data["unmanaged"]),
            missing=bool(data["missing"]),
            appeared=bool(data["appeared"]),
            foreign=tuple(Change.from_json(item) for item in data.get("foreign", ())),
        )


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """Counts a reader looks at first."""

    profiles: int  # profiles that drifted
    added: int
    changed: int
    removed: int
    unmanaged: int  # unmanaged keys that differ
    missing: int  # profiles deleted on the server
    appeared: int  # profiles back on the server
    foreign: int = 0  # entries others changed where they may write: shown, not drift

    def to_json(self) -> dict[str, int]:
        return {"profiles": self.profiles, "added": self.added, "changed": self.changed,
                "removed": self.removed, "unmanaged": self.unmanaged,
                "missing": self.missing, "appeared": self.appeared, "foreign": self.foreign}


def summarize(profiles: Iterable[ProfileDrift]) -> DriftSummary:
    counts = {"+": 0, "~": 0, "-": 0}
    drifted = unmanaged = missing = appeared = foreign = 0
    for profile in profiles:
        drifted += profile.is_drift
        foreign += len(profile.foreign)
        unmanaged += len(profile.unmanaged)
        missing += profile.missing
        appeared += profile.appeared
        for change in profile.changes:
            counts[change.action] += 1
    return DriftSummary(drifted, counts["+"], counts["~"], counts["-"], unmanaged, missing,
                        appeared, foreign)


@dataclass(frozen=True)
class DriftReport:
    """The drift of one refresh: only the profiles that drifted, sorted by distinct_id."""

    workspace: str
    version: str
    profiles: tuple[ProfileDrift, ...]
    checked: int  # profiles read from the server
    summary: DriftSummary = field(init=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.profiles, key=_by_distinct_id))
        object.__setattr__(self, "profiles", ordered)
        object.__setattr__(self, "summary", summarize(ordered))

    @property
    def has_drift(self) -> bool:
        return any(profile.is_drift for profile in self.profiles)

    def to_json(self) -> dict[str, Any]:
        """The whole report with full values: JSON output is for machines."""
        return {
            "workspace": self.workspace,
            "version": self.version,
            "checked": self.checked,
            "has_drift": self.has_drift,
            "summary": self.summary.to_json(),
            "profiles": [profile.to_json() for profile in self.profiles],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftReport:
        return cls(data["workspace"], data["version"],
                   tuple(ProfileDrift.from_json(item) for item in data["profiles"]),
                   data["checked"])


def _by_distinct_id(profile: ProfileDrift) -> str:
    return profile.distinct_id


def compare(distinct_id: str, recorded: ChannelData | None, server: ChannelData | None, *,
            recorded_missing: bool = False, policy: Policy = EXCLUSIVE,
            managed: frozenset[Entry] = NO_ENTRIES) -> ProfileDrift | None:
    """The drift of one profile, or None when there is none to report.

    Under a `policy` that shares channels with other writers, a change to an entry that is
    not ours (`managed`) in an `owned` channel, or to anything in an `ignored` one, is not
    drift: it is reported as `foreign`.

    `recorded` None: the state has no record of the profile yet (e.g. during import), so
    nothing can have drifted. `server` None: the server has no such profile.
    `recorded_missing`: the state recorded that the server had no such profile; the drift,
    if the server now has it, lists everything it holds as added.
    """
    if recorded_missing:
        if server is None:
            return None
        recorded = recorded or EMPTY
        return ProfileDrift(distinct_id, _changes(recorded, server),
                            _unmanaged(recorded, server), appeared=True)
    if recorded is None:
        return None
    if server is None:
        return ProfileDrift(distinct_id, _changes(recorded, EMPTY),
                            _unmanaged(recorded, EMPTY), missing=True)
    if recorded == server:
        return None
    changes = _changes(recorded, server) if recorded.channels != server.channels else ()
    unmanaged = _unmanaged(recorded, server) if recorded.unmanaged != server.unmanaged else ()
    foreign: tuple[Change, ...] = ()
    if changes and not policy.is_exclusive:
        foreign = tuple(change for change in changes if _others(change, policy, managed))
        changes = tuple(change for change in changes if change not in foreign)
    if not changes and not unmanaged and not foreign:  # tokens in another order only
        return None
    return ProfileDrift(distinct_id, changes, unmanaged, foreign=foreign)


def _others(change: Change, policy: Policy, managed: frozenset[Entry]) -> bool:
    """Whether a change was others' to make: anything in an ignored channel; in an owned
    one, a change to an entry that was not ours (a new one included)."""
    mode = policy.mode(change.channel)
    if mode is Mode.IGNORED:
        return True
    if mode is Mode.EXCLUSIVE:
        return False
    before = change.before
    if before is None:
        return True
    key = before.token if isinstance(before, Token) else canonical(change.channel, before)
    return (change.channel, key) not in managed


def _changes(recorded: ChannelData, server: ChannelData) -> tuple[Change, ...]:
    """Per entry, in channel order; tokens in server order, then removed ones in recorded order."""
    changes: list[Change] = []
    old_channels, new_channels = recorded.channels, server.channels
    for channel in CHANNELS:
        old = old_channels.get(channel)
        new = new_channels.get(channel)
        if old == new or (isinstance(old, str) and isinstance(new, str)
                          and same_value(channel, old, new)):
            continue
        if isinstance(old, tuple) or isinstance(new, tuple):
            changes.extend(_token_changes(channel, _tokens(old), _tokens(new)))
        else:
            changes.append(Change(channel, old, new))
    return tuple(changes)


def _tokens(value: ChannelValue | None) -> tuple[Token, ...]:
    return value if isinstance(value, tuple) else ()


def _token_changes(channel: str, recorded: tuple[Token, ...],
                   server: tuple[Token, ...]) -> list[Change]:
    """Tokens matched by token string. A string held twice is matched copy by copy, so an
    extra copy on either side is one `+` or `-`."""
    unmatched: dict[str, list[Token]] = {}
    for token in recorded:
        unmatched.setdefault(token.token, []).append(token)
    changes: list[Change] = []
    for token in server:
        copies = unmatched.get(token.token)
        if not copies:
            changes.append(Change(channel, None, token))
            continue
        old = copies.pop(0)
        if old != token:
            changes.append(Change(channel, old, token))
    for token in recorded:
        copies = unmatched.get(token.token)
        if copies and copies[0] is token:
            copies.pop(0)
            changes.append(Change(channel, token, None))
    return changes


def _unmanaged(recorded: ChannelData, server: ChannelData) -> tuple[Unmanaged, ...]:
    """Unmanaged keys whose raw JSON differs, sorted by key; a null value counts as absent."""
    old, new = recorded.unmanaged, server.unmanaged
    return tuple((key, old.get(key), new.get(key)) for key in sorted(old.keys() | new.keys())
                 if old.get(key) != new.get(key))
