"""The JSON form of a `State` (`schemas/state.schema.json`), shared by every backend.

Decoding believes nothing before it is checked: the bytes are parsed strictly (a repeated key
is refused, see `strictjson`), the whole document is validated against the schema (every
field's type, every token's shape, the id rules, the serial's range), and only then is the
`State` built. The file is ours, but people edit, merge and truncate files, and a state read
wrong turns into wrong deletes on the server. A 100,000-profile state (45 MB) loads in about
1.2 s of CPU on a slow shared 2-CPU machine, most of it spent building the model objects
(`bench/state_scale.py`); the repeated-key check costs about 6% of it.

`decode_channel` and `distinct_id_problem` apply the same rules to what other files read
back carry (the journal's events).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson

from reconciler import strictjson
from reconciler.errors import StateCorruptError, StateError
from reconciler.heap import collector_paused
from reconciler.model import (
    SINGLE_VALUE_CHANNELS,
    TOKEN_CHANNELS,
    ChannelData,
    ChannelValue,
    Token,
)
from reconciler.ownership import Entry
from reconciler.plan import DeleteChannels, call_from_json
from reconciler.state.base import Doubt, State

FORMAT_VERSION: Final = 1
PROFILES_PER_BLOCK: Final = 1_000
"""Profiles `encode` turns into JSON and checks at a time."""
MAX_SERIAL: Final = 2**53 - 1
"""The schema's maximum: the largest integer that every JSON reader (JavaScript, jq) holds
exactly."""
MAX_LOADED_SERIAL: Final = 2**52
"""The largest serial a state is loaded with. A run saves a few times (a journal folded in,
the apply itself), so a loaded state must leave room below `MAX_SERIAL`: refused at load,
such a state stops a run before its first call, not at its save, after the calls."""
_TOKEN_CHANNELS: Final = frozenset(TOKEN_CHANNELS)
_SINGLE_VALUE_CHANNELS: Final = frozenset(SINGLE_VALUE_CHANNELS)
# The schema allows 0 and 1, which JSON Schema also matches as 0.0 and 1.0: keep ints.
_STATUS: Final = {0: 0, 1: 1}
_new_tuple: Final = tuple.__new__


def encode(state: State) -> bytes:
    """The file content for a saved state (lineage set, serial already incremented).

    Profiles are sorted and the JSON indented so that the file diffs well in git. A state
    that would not pass `decode` (e.g. an empty workspace) is a `StateError`.

    The parts with a member per profile (`profiles`, `managed`) are encoded
    `PROFILES_PER_BLOCK` at a time into one buffer: the JSON document of a whole
    100,000-profile state, next to its bytes, took the final save of an apply 230 MB above
    the rest of the run. The bytes are those of the one document (`OPT_INDENT_2`, a block's
    members indented one level deeper), and each block is checked with the rest of the
    document: the schema checks those parts member by member.
    """
    if state.lineage is None:
        raise ValueError("only a state with a lineage can be encoded")
    with collector_paused():
        head = {
            "format_version": FORMAT_VERSION,
            "lineage": state.lineage,
            "serial": state.serial,
            "workspace": state.workspace,
            "version": state.version,
        }
        document: dict[str, Any] = {**head, "profiles": {}}
        blocked: dict[str, tuple[list[str], Callable[[str], Any]]] = {
            "profiles": (sorted(state.profiles), lambda key: state.profiles[key].to_json())}
        if state.unconfirmed:
            document["unconfirmed"] = sorted(state.unconfirmed)
        if state.managed:
            document["managed"] = {}
            blocked["managed"] = (sorted(state.managed),
                                  lambda key: _managed_json(state.managed[key]))
        if state.doubts:
            document["doubts"] = {distinct_id: [doubt_to_json(doubt) for doubt in doubts]
                                  for distinct_id, doubts in sorted(state.doubts.items())}
        if state.missing:
            document["missing"] = sorted(state.missing)
        text = _dumps(document, orjson.OPT_APPEND_NEWLINE)
        problems = _schema_problems(document)
        out = io.BytesIO()
        written = 0
        for name, (ids, to_json) in blocked.items():
            # Its members go where the document holds `{}`: the member at depth 1, since
            # the document's only newlines are its indentation.
            opening = f'\n  "{name}": {{'.encode()
            split = text.index(opening + b"}", written) + len(opening)
            out.write(text[written:split])
            for start in range(0, len(ids), PROFILES_PER_BLOCK):
                block = {key: to_json(key) for key in ids[start:start + PROFILES_PER_BLOCK]}
                members = _dumps(block)[1:-2].replace(b"\n", b"\n  ")  # no `{`, no `\n}`
                out.write(members if start == 0 else b"," + members)
                if not problems:  # the first invalid part is reason enough, and says why
                    problems = _schema_problems({**head, "profiles": {}, name: block})
            out.write(b"\n  " if ids else b"")
            written = split
        out.write(text[written:])
        # Never write what the next load would refuse: that would lock the user out.
        if problems:
            raise StateError(f"refusing to save an invalid state: {'; '.join(problems)}")
        return out.getvalue()  # the buffer itself, not a copy of it


def _dumps(value: dict[str, Any], option: int = 0) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | option)
    except orjson.JSONEncodeError as err:  # an unmanaged value beyond 64-bit ints, an id
        # with a lone surrogate (a command-line argument that was not UTF-8)...
        raise StateError(f"refusing to save a state JSON cannot hold: {err}") from None


def decode(data: bytes, source: str) -> State:
    """Parse and validate stored bytes; `StateCorruptError` names `source` and the problem.

    Nothing is built before the whole document passed: a repeated key, a field of the wrong
    type, a token of the wrong shape, an id the backends cannot hold or a serial that the
    next saves would push past what JSON holds exactly are all refused here, before any
    command acts on the state.
    """
    with collector_paused():
        try:
            document = strictjson.loads(data, what=f"state {source}")
        except strictjson.JSONError as err:
            raise StateCorruptError(str(err)) from None
        return decode_document(document, source)


def decode_document(document: Any, source: str) -> State:
    """`decode` of a document already parsed (strictly): a backend that keeps a state in
    parts assembles the document and has it checked exactly as a file's."""
    with collector_paused():
        if not isinstance(document, dict) or "format_version" not in document:
            raise StateCorruptError(
                f"state {source} is not a reconciler state file (no format_version)")
        if document["format_version"] != FORMAT_VERSION:
            raise StateCorruptError(
                f"state {source} has format_version "
                f"{strictjson.shown_json(document['format_version'])}; this reconciler reads "
                f"format_version {FORMAT_VERSION} only (a newer reconciler may have written it)")
        problems = _schema_problems(document)
        if problems:
            raise StateCorruptError(
                f"state {source} does not match schemas/state.schema.json: "
                + "; ".join(problems))
        # JSON Schema counts 7.0 as an integer: keep the model's ints ints.
        serial = int(document["serial"])
        if serial > MAX_LOADED_SERIAL:
            raise StateCorruptError(
                f"state {source} has serial {serial}, above {MAX_LOADED_SERIAL} (2^52): "
                "every save adds 1, and past 2^53 no JSON reader holds a serial exactly. "
                "No reconciler writes such a serial; the file was edited")
        unconfirmed = set(document.get("unconfirmed", ()))
        strays = sorted(document.get("doubts", {}).keys() - unconfirmed)
        if strays:
            raise StateCorruptError(
                f"state {source} records doubtful calls for profiles it does not mark "
                f"unconfirmed: {strictjson.shown_json(strays[:5])}")
        return State(
            lineage=document["lineage"],
            serial=serial,
            workspace=document["workspace"],
            version=document["version"],
            profiles={distinct_id: _channel_data(channel)
                      for distinct_id, channel in document["profiles"].items()},
            unconfirmed=unconfirmed,
            doubts={distinct_id: tuple(_doubt(distinct_id, item) for item in doubts)
                    for distinct_id, doubts in document.get("doubts", {}).items()},
            managed={distinct_id: frozenset(_managed_entries(channel))
                     for distinct_id, channel in document.get("managed", {}).items()},
            missing=set(document.get("missing", ())),
        )


def decode_channel(value: Any, source: str) -> ChannelData:
    """A profile's channel object read back from outside the state file (a journal's event),
    checked exactly as the state's profiles are; `StateCorruptError` names `source`."""
    problems = strictjson.schema_problems(strictjson.validator("state.schema.json", "channel"),
                                          value)
    if problems:
        raise StateCorruptError(f"{source}: not a profile's channel data: " + "; ".join(problems))
    return _channel_data(value)


def _managed_json(managed: frozenset[Entry]) -> dict[str, Any]:
    """The entries a profile's calls wrote, as a `channel`-like object: a single value's
    normal form, or the list of token strings."""
    document: dict[str, Any] = {}
    for channel, value in sorted(managed):
        if channel in _TOKEN_CHANNELS:
            document.setdefault(channel, []).append(value)
        else:
            document[channel] = value
    return document


def _managed_entries(document: dict[str, Any]) -> list[Entry]:
    found: list[Entry] = []
    for channel, value in document.items():
        if isinstance(value, list):
            found.extend((channel, token) for token in value)
        else:
            found.append((channel, value))
    return found


def doubt_to_json(doubt: Doubt) -> dict[str, Any]:
    """A doubtful request as the state and the journal keep it: its call, without the body
    (derived from the changes) or the profile id (the key it is kept under)."""
    call = doubt.call
    document: dict[str, Any] = {"request_id": doubt.request_id, "operation": call.operation,
                                "changes": [change.to_json() for change in call.changes]}
    if isinstance(call, DeleteChannels) and call.forget:
        document["forget"] = True
    return document


def doubt_from_json(distinct_id: str, value: Any, source: str) -> Doubt:
    """A doubtful request read back from a journal, checked as the state's own are."""
    problems = strictjson.schema_problems(strictjson.validator("state.schema.json", "doubt"),
                                          value)
    if problems:
        raise StateCorruptError(f"{source}: not a recorded request: " + "; ".join(problems))
    return _doubt(distinct_id, value)


def _doubt(distinct_id: str, value: dict[str, Any]) -> Doubt:
    return Doubt(value["request_id"],
                 call_from_json({**value, "distinct_id": distinct_id}, sent=True))


def distinct_id_problem(value: Any) -> str | None:
    """What makes `value` not a distinct_id the state can record (None: it is one)."""
    problems = strictjson.schema_problems(
        strictjson.validator("state.schema.json", "distinct_id"), value)
    return "; ".join(problem.removeprefix("at the top level: ") for problem in problems) or None


def _channel_data(channel: dict[str, Any]) -> ChannelData:
    """`ChannelData.from_json` for a channel object that passed the schema, a third faster.

    At 100,000 profiles this is most of the load time. The schema already guarantees what
    `from_json` checks for (no empty channel, every token with a status), and building each
    `Token` as the tuple it is skips the Python-level `__new__` of a named tuple (a tenth of
    the load, which pays for the repeated-key check); tests check that both always agree.
    """
    channels: dict[str, ChannelValue] = {}
    unmanaged: dict[str, Any] = {}
    for name, value in channel.items():
        if name in _TOKEN_CHANNELS:
            channels[name] = tuple([_new_tuple(Token, (token["token"], token.get("integration_id"),
                                                       _STATUS[token["status"]]))
                                    for token in value])
        elif name in _SINGLE_VALUE_CHANNELS:
            channels[name] = value
        else:
            unmanaged[name] = value
    return ChannelData(channels, unmanaged)


def _schema_problems(document: dict[str, Any]) -> list[str]:
    return strictjson.schema_problems(strictjson.validator("state.schema.json"), document)


def profile_part(state: State, distinct_id: str) -> dict[str, Any] | None:
    """All `state` holds of one profile, as a backend keeping a row per profile stores it:
    its channel data, what our calls wrote, its requests in doubt and its marks; None when
    it holds nothing of it. `document_of` puts parts back together."""
    part: dict[str, Any] = {}
    if distinct_id in state.profiles:
        part["channel"] = state.profiles[distinct_id].to_json()
    if distinct_id in state.managed:
        part["managed"] = _managed_json(state.managed[distinct_id])
    if distinct_id in state.doubts:
        part["doubts"] = [doubt_to_json(doubt) for doubt in state.doubts[distinct_id]]
    if distinct_id in state.unconfirmed:
        part["unconfirmed"] = True
    if distinct_id in state.missing:
        part["missing"] = True
    return part or None


def document_of(head: dict[str, Any], parts: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The state document (`head`: format_version, lineage, serial, workspace, version) of
    profile parts, for `decode_document` to check and build as it does a file's."""
    profiles: dict[str, Any] = {}
    managed: dict[str, Any] = {}
    doubts: dict[str, Any] = {}
    unconfirmed: list[str] = []
    missing: list[str] = []
    for distinct_id, part in parts:
        if not isinstance(part, dict):
            raise StateCorruptError(f"the stored part of profile {distinct_id!r} is not an "
                                    "object")
        if "channel" in part:
            profiles[distinct_id] = part["channel"]
        if "managed" in part:
            managed[distinct_id] = part["managed"]
        if "doubts" in part:
            doubts[distinct_id] = part["doubts"]
        if part.get("unconfirmed") is True:
            unconfirmed.append(distinct_id)
        if part.get("missing") is True:
            missing.append(distinct_id)
    document = {**head, "profiles": profiles}
    for name, value in (("managed", managed), ("doubts", doubts),
                        ("unconfirmed", sorted(unconfirmed)), ("missing", sorted(missing))):
        if value:
            document[name] = value
    return document
