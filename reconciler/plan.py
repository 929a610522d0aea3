"""The plan: a value describing the API calls that converge recorded state on desired state.

A `Plan` is a sorted tuple of frozen call objects plus the facts needed to apply it safely
later (state lineage and serial, config digest). It never prints and never calls the network;
renderers and the executor dispatch on the call type. Its JSON form, the saved-plan document
written and read one line at a time, is `reconciler.plandoc`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, NamedTuple
from urllib.parse import quote

import orjson

from reconciler.errors import TooMuchChangeError
from reconciler.model import CHANNEL_ORDER, Token
from reconciler.ownership import Policy

PLAN_FORMAT_VERSION: Final = 2

Value = str | Token | None


class Change(NamedTuple):
    """One entry of one channel: added (no `before`), changed, or removed (no `after`).

    A named tuple, as immutable as a frozen dataclass: a first plan of 100,000 profiles makes
    500,000 of them, and reading it back as many again. A tuple is built in C, several times
    faster than a frozen dataclass (whose `__init__` goes through `object.__setattr__` once
    per field), and orjson writes a saved plan's changes faster through `plandoc`'s callback
    than it walks a dataclass with slots.
    """

    channel: str
    before: Value
    after: Value

    @property
    def action(self) -> str:
        if self.before is None:
            return "+"
        if self.after is None:
            return "-"
        return "~"

    def to_json(self, *, compact: bool = False) -> dict[str, Any]:
        """`{channel, before, after}`; `compact` leaves out a side that is None (as a saved
        plan writes it: an added entry has no before, a removed one no after)."""
        if compact:
            data: dict[str, Any] = {"channel": self.channel}
            if self.before is not None:
                data["before"] = _value_json(self.before)
            if self.after is not None:
                data["after"] = _value_json(self.after)
            return data
        return {"channel": self.channel, "before": _value_json(self.before),
                "after": _value_json(self.after)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        before, after = data.get("before"), data.get("after")
        # A side is a token when it is an object; tested inline, without a call per side:
        # a saved plan of 100,000 profiles has 500,000 changes. Each tuple is made by
        # `tuple.__new__`, without the named tuple's `__new__` in Python (a tenth of a read).
        return _new_tuple(cls, (data["channel"],
                                _token(before) if type(before) is dict else before,
                                _token(after) if type(after) is dict else after))


_new_tuple: Final = tuple.__new__


def _token(data: Mapping[str, Any]) -> Token:
    """`Token.from_json`, for a saved plan's side that its schema checked."""
    status = data.get("status")
    return _new_tuple(Token, (data["token"], data.get("integration_id"),
                              1 if status is None else int(status)))


def _value_json(value: Value) -> Any:
    return value.to_json() if isinstance(value, Token) else value


def path_segment(text: str) -> str:
    """`text` percent-encoded as exactly one path segment, whatever it holds.

    `/`, `?`, `#`, `%`, spaces and non-ASCII are encoded by `quote`; a segment of only dots
    would still be a dot-segment that clients and proxies may collapse, so its dots are
    encoded too.
    """
    segment = quote(text, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request exactly as it is sent: the API client adds only its prefix
    (`/{WSID}/{version}`), headers and the JSON encoding of `body`."""

    method: str
    path: str  # below `/{WSID}/{version}`, every distinct_id one percent-encoded segment
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One API call for one profile; subclasses say which endpoint and how the body looks."""

    distinct_id: str
    changes: tuple[Change, ...]

    operation: ClassVar[str]
    method: ClassVar[str]
    endpoint: ClassVar[str]
    # Order within one profile: PATCH first, so that replacements exist before old tokens go;
    # then Option 2, Option 1; re-adds last, after the delete of the tokens they re-add.
    rank: ClassVar[int]

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def path(self) -> str:
        """Path below `/{WSID}/{version}`; the distinct_id is always exactly one segment."""
        return f"/profiles/{path_segment(self.distinct_id)}{self.endpoint}"

    def request(self) -> HttpRequest:
        """The request this call is: what the API client sends and a saved plan shows."""
        return HttpRequest(self.method, self.path(), self.body())

    def sort_key(self) -> tuple[str, int]:
        return (self.distinct_id, self.rank)

    def to_json(self) -> dict[str, Any]:
        """The call as a saved plan holds it: its changes, each fact once. Its method, path
        and body are what the changes make (`request`), so they are not written."""
        return {
            "distinct_id": self.distinct_id,
            "operation": self.operation,
            "changes": [change.to_json(compact=True) for change in self.changes],
        }


def channel_object(changes: Iterable[Change]) -> dict[str, Any]:
    """The `channel` object that sets the `after` of every change: single values replace,
    tokens are listed to be inserted."""
    channel: dict[str, Any] = {}
    for change in changes:
        if isinstance(change.after, Token):
            channel.setdefault(change.channel, []).append(change.after.to_json())
        else:
            channel[change.channel] = change.after
    return {"channel": channel}


@dataclass(frozen=True, slots=True)
class PatchChannels(Call):
    """`PATCH .../channel`: set single values, add tokens the profile does not hold."""

    operation: ClassVar[str] = "patch_channel"
    method: ClassVar[str] = "PATCH"
    endpoint: ClassVar[str] = "/channel"
    rank: ClassVar[int] = 0

    def body(self) -> dict[str, Any]:
        return channel_object(self.changes)


@dataclass(frozen=True, slots=True)
class DeleteTokens(Call):
    """`POST .../channel/delete` Option 2: remove named push/inapp tokens (or, in a call of
    their own, web push tokens a profile's `remove:` lists: `before` is their JSON text).

    A removed token's change has no `after`; a token whose fields change (`~`) is deleted
    here and sent again, with its new fields, by the profile's `ReAddTokens`.
    """

    operation: ClassVar[str] = "delete_tokens"
    method: ClassVar[str] = "POST"
    endpoint: ClassVar[str] = "/channel/delete"
    rank: ClassVar[int] = 1

    def body(self) -> dict[str, Any]:
        body: dict[str, list[Any]] = {}
        for change in self.changes:
            names = body.setdefault(change.channel, [])
            if isinstance(change.before, str):  # web push: the token's canonical JSON text
                names.append(orjson.loads(change.before))
                continue
            assert isinstance(change.before, Token)
            if change.before.token not in names:  # a token held twice is deleted by one name
                names.append(change.before.token)
        return body


@dataclass(frozen=True, slots=True)
class DeleteChannels(Call):
    """`POST .../channel/delete` Option 1: remove whole channels.

    `forget` marks the profile as leaving management: once the call is done the profile is
    dropped from the state.
    """

    forget: bool = False

    operation: ClassVar[str] = "delete_channels"
    method: ClassVar[str] = "POST"
    endpoint: ClassVar[str] = "/channel/delete"
    rank: ClassVar[int] = 2

    def channels(self) -> list[str]:
        names = {change.channel for change in self.changes}
        return sorted(names, key=CHANNEL_ORDER.__getitem__)

    def body(self) -> dict[str, Any]:
        return {"channel": self.channels()}

    def to_json(self) -> dict[str, Any]:
        data = Call.to_json(self)
        data["forget"] = self.forget
        return data


@dataclass(frozen=True, slots=True)
class ReAddTokens(PatchChannels):
    """`PATCH .../channel` sent after the profile's `DeleteTokens`: the tokens whose
    integration_id or status change, with their new fields.

    Fyno documents that a PATCH inserts tokens rather than updating them, so a token's fields
    change only by deleting it (Option 2) and adding it again. Each change is `~`, and the
    same change appears in the `DeleteTokens` before it.
    """

    operation: ClassVar[str] = "readd_tokens"
    rank: ClassVar[int] = 3


@dataclass(frozen=True, slots=True)
class CreateProfile(Call):
    """`POST /profiles`: create a profile the server lacks, with the data of a PATCH.

    The planner never emits it: the executor sends it instead of a `PatchChannels` when the
    server answers that the profile does not exist.
    """

    operation: ClassVar[str] = "create_profile"
    method: ClassVar[str] = "POST"
    endpoint: ClassVar[str] = ""
    rank: ClassVar[int] = 0

    @classmethod
    def instead_of(cls, call: PatchChannels) -> CreateProfile:
        return cls(call.distinct_id, call.changes)

    def path(self) -> str:
        return "/profiles"

    def body(self) -> dict[str, Any]:
        return {"distinct_id": self.distinct_id, **channel_object(self.changes)}


CALL_TYPES: Final[dict[str, type[Call]]] = {
    kind.operation: kind for kind in (PatchChannels, DeleteTokens, DeleteChannels, ReAddTokens)
}
"""The calls a plan may hold, by operation; `CreateProfile` is never planned."""


def call_from_json(data: Mapping[str, Any], *, sent: bool = False) -> Call:
    """The call a plan's JSON form (a validated one) describes; `sent`: it may also be a
    `CreateProfile`, which no plan holds but a journal's or state's doubt may."""
    from_json = Change.from_json  # a saved plan of 100,000 profiles has 500,000 changes
    changes = tuple([from_json(item) for item in data["changes"]])
    operation = data["operation"]
    if sent and operation == CreateProfile.operation:
        return CreateProfile(data["distinct_id"], changes)
    kind = CALL_TYPES[operation]
    if kind is DeleteChannels:
        return DeleteChannels(data["distinct_id"], changes, forget=bool(data.get("forget")))
    return kind(data["distinct_id"], changes)


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts a reviewer reads first."""

    profiles: int
    add: int
    change: int
    remove: int
    calls: Mapping[str, int]
    forget: int = 0  # profiles leaving management with no channel data: no call needed

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.remove or self.forget)

    def to_json(self) -> dict[str, Any]:
        return {"profiles": self.profiles, "add": self.add, "change": self.change,
                "forget": self.forget,
                "remove": self.remove, "calls": dict(self.calls)}


def count_actions(calls: Iterable[Call]) -> dict[str, int]:
    """Entries added (`+`), changed (`~`) and removed (`-`) by `calls`.

    A token whose fields change appears in two calls (deleted, then re-added) and counts
    once, as a change: never as a removal, so the safety rail does not count it.
    """
    added = changed = removed = 0
    changed_tokens: set[tuple[str, Change]] = set()
    for call in calls:
        for change in call.changes:  # `Change.action` inline: a first plan has 500,000
            if change[1] is None:
                added += 1
            elif change[2] is None:
                removed += 1
            elif isinstance(change[2], Token):
                changed_tokens.add((call.distinct_id, change))
            else:
                changed += 1
    return {"+": added, "~": changed + len(changed_tokens), "-": removed}


def summarize(calls: Iterable[Call], forget: int = 0) -> Summary:
    calls = tuple(calls)
    by_operation = {operation: 0 for operation in CALL_TYPES}
    for call in calls:
        by_operation[call.operation] = by_operation.get(call.operation, 0) + 1
    counts = count_actions(calls)
    profiles = len({call.distinct_id for call in calls})
    return Summary(profiles, counts["+"], counts["~"], counts["-"], by_operation, forget)


def total_summary(summaries: Iterable[Summary]) -> Summary:
    """The totals of the summaries of several plans (one per workspace/version pair): each
    count summed, and the calls of each operation."""
    summaries = tuple(summaries)
    calls: dict[str, int] = {}
    for summary in summaries:
        for operation, count in summary.calls.items():
            calls[operation] = calls.get(operation, 0) + count
    return Summary(sum(summary.profiles for summary in summaries),
                   sum(summary.add for summary in summaries),
                   sum(summary.change for summary in summaries),
                   sum(summary.remove for summary in summaries), calls,
                   sum(summary.forget for summary in summaries))


@dataclass(frozen=True)
class Plan:
    """Everything `apply` needs, and everything a reviewer reads."""

    plan_id: str
    created_at: str
    workspace: str
    version: str
    lineage: str | None  # None: computed against a state that did not exist yet
    serial: int
    # The configuration's digest (`Config.digest`), or how to compute it when first read:
    # a plan printed as text never shows it. Read it with `digest()`.
    config_digest: str | Callable[[], str]
    recorded_entries: int  # entries in the whole state, the safety rail's denominator
    calls: tuple[Call, ...]
    targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    forced: bool = False
    # Recorded profiles no longer declared that hold no managed channel: they leave the
    # state without any call (the others leave through a DeleteChannels with `forget`).
    forget: tuple[str, ...] = ()
    # The ownership policies of the profiles it names that are not exclusive: apply keeps to
    # them when a read-back finds the profile changed (`reconciler.ownership`).
    policies: Mapping[str, Policy] = field(default_factory=dict)
    # The checksum of the saved plan this one was read from: a rendering names it, so that a
    # reviewer can tell which saved plan it shows (`reconciler.plandoc`).
    checksum: str | None = field(default=None, compare=False)
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", summarize(self.calls, len(self.forget)))

    def digest(self) -> str:
        """The configuration's digest, computed now if it was left for later."""
        if not isinstance(self.config_digest, str):
            object.__setattr__(self, "config_digest", self.config_digest())
        assert isinstance(self.config_digest, str)
        return self.config_digest

    @property
    def deletions(self) -> int:
        return self.summary.remove

    def check_deletions(self, max_delete_percent: float, force: bool) -> Plan:
        """The safety rail: refuse a plan deleting too much of a state of 10+ entries.

        Returns the plan, marked `forced` when `force` let a large deletion through.
        """
        if self.recorded_entries < 10 or self.deletions == 0:
            return self
        percent = 100.0 * self.deletions / self.recorded_entries
        if percent <= max_delete_percent:
            return self
        if force:
            return Plan(**{**self._fields(), "forced": True})
        raise TooMuchChangeError(
            f"refusing to delete {self.deletions} of {self.recorded_entries} recorded channel "
            f"entries ({percent:.1f}%, more than --max-delete-percent {max_delete_percent:g}); "
            "check the configuration, or re-run with --force if this is intended"
        )

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "plan_id", "created_at", "workspace", "version", "lineage", "serial",
            "config_digest", "recorded_entries", "calls", "targets", "warnings", "forced",
            "forget", "policies")}
