"""Events that change the recorded state, and the one function that applies them.

Every change to what the state records is one of these events, applied by `apply_event`:
by a running apply (`reconciler.apply`), by the journal folded in after a crash
(`journal.replay`), by import and refresh, and by `state rm`. A rule written twice would
one day disagree with itself, and crash safety depends on the running apply and the folded
journal agreeing, so there is exactly one.

Their journal lines (one JSON object each; the encoding of journal format 1):

    {"begin": ID, "doubt": {...}}   Begun: a call for ID is about to be sent (the doubt
                                    names the request; older journals lack it)
    {"settle": ID}                  Unchanged: its outcome is known; the record stands
    {"settle": ID, "data": {...}}   Holds: the server holds this for ID
    {"settle": ID, "data": null}    Forgotten: ID left management
    {"missing": ID}                 Missing: the server has no such profile
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from reconciler.effects import written_by
from reconciler.errors import StateCorruptError
from reconciler.model import ChannelData
from reconciler.ownership import NO_ENTRIES, still_managed
from reconciler.state import codec
from reconciler.state.base import Doubt, State


@dataclass(frozen=True, slots=True)
class Begun:
    """A call for the profile is about to be sent: unconfirmed until an event settles it."""

    distinct_id: str
    doubt: Doubt | None = None  # the request, so that whoever settles it can name it


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The outcome of the profile's call is known, and the record stands."""

    distinct_id: str


@dataclass(frozen=True, slots=True)
class Holds:
    """The server holds `data` for the profile (after a call, a read-back, an import)."""

    distinct_id: str
    data: ChannelData


@dataclass(frozen=True, slots=True)
class Forgotten:
    """The profile left management (its channels deleted, or `state rm`)."""

    distinct_id: str


@dataclass(frozen=True, slots=True)
class Missing:
    """The server has no such profile (found by import or refresh)."""

    distinct_id: str


Event: TypeAlias = Begun | Unchanged | Holds | Forgotten | Missing


def apply_event(state: State, event: Event) -> None:
    """Change `state` in place as `event` says: the only place that does."""
    distinct_id = event.distinct_id
    match event:
        case Begun(doubt=doubt):
            state.unconfirmed.add(distinct_id)
            if doubt is not None:
                state.doubts[distinct_id] = (*state.doubts.get(distinct_id, ()), doubt)
            return
        case Holds(data=data):
            state.profiles[distinct_id] = data
            state.missing.discard(distinct_id)
            _keep_managed(state, distinct_id, data)
        case Forgotten():
            state.profiles.pop(distinct_id, None)
            state.missing.discard(distinct_id)
            state.managed.pop(distinct_id, None)
        case Missing():
            state.profiles.pop(distinct_id, None)
            state.missing.add(distinct_id)
            state.managed.pop(distinct_id, None)
        case Unchanged():
            pass
    state.unconfirmed.discard(distinct_id)
    state.doubts.pop(distinct_id, None)


def _keep_managed(state: State, distinct_id: str, data: ChannelData) -> None:
    """The profile holds `data`: what the requests it settles wrote is ours if it is there,
    and what left the profile is no longer ours (`reconciler.ownership`)."""
    managed = state.managed.get(distinct_id, NO_ENTRIES)
    wrote = [entry for doubt in state.doubts.get(distinct_id, ())
             for entry in written_by(doubt.call)]
    if not managed and not wrote:
        return
    kept = still_managed(managed, wrote, data)
    if kept:
        state.managed[distinct_id] = kept
    else:
        state.managed.pop(distinct_id, None)


def to_json(event: Event) -> dict[str, Any]:
    """The journal line of `event`."""
    match event:
        case Begun(doubt=doubt):
            if doubt is None:
                return {"begin": event.distinct_id}
            return {"begin": event.distinct_id, "doubt": codec.doubt_to_json(doubt)}
        case Unchanged():
            return {"settle": event.distinct_id}
        case Holds(data=data):
            return {"settle": event.distinct_id, "data": data.to_json()}
        case Forgotten():
            return {"settle": event.distinct_id, "data": None}
        case Missing():
            return {"missing": event.distinct_id}


class NotAnEvent(ValueError):
    """A journal line that is not one of the events above; the message says why."""


def from_json(line: Any) -> Event:
    """The event a journal line holds; `NotAnEvent` when it holds none."""
    if not isinstance(line, dict):
        raise NotAnEvent("not a JSON object")
    kinds = [key for key in ("begin", "settle", "missing") if key in line]
    extra = sorted(set(line) - {"begin", "settle", "missing", "data", "doubt"})
    if (len(kinds) != 1 or extra or ("data" in line and kinds != ["settle"])
            or ("doubt" in line and kinds != ["begin"])):
        raise NotAnEvent("not one of begin, settle, missing")
    distinct_id = line[kinds[0]]
    problem = codec.distinct_id_problem(distinct_id)
    if problem:
        raise NotAnEvent(f"its profile id {problem}")
    if kinds == ["begin"]:
        if "doubt" not in line:
            return Begun(distinct_id)
        try:
            return Begun(distinct_id, codec.doubt_from_json(distinct_id, line["doubt"],
                                                            "its request"))
        except StateCorruptError as error:
            raise NotAnEvent(str(error)) from None
    if kinds == ["missing"]:
        return Missing(distinct_id)
    if "data" not in line:
        return Unchanged(distinct_id)
    data = line["data"]
    if data is None:
        return Forgotten(distinct_id)
    try:  # checked exactly as the state's own profiles are
        return Holds(distinct_id, codec.decode_channel(data, "its channel data"))
    except StateCorruptError as error:
        raise NotAnEvent(str(error)) from None


def drop_profiles(state: State, ids: set[str]) -> bool:
    """Remove every trace of `ids` from `state` (an erasure: profiles, doubts, marks and
    what was written by whom); whether there was any."""
    found = False
    for held in (state.profiles, state.doubts, state.managed):
        for distinct_id in ids & held.keys():
            del held[distinct_id]
            found = True
    for marks in (state.unconfirmed, state.missing):
        found = found or bool(marks & ids)
        marks -= ids
    return found
