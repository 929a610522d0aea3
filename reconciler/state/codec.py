"""The JSON form of a `State` (`schemas/state.schema.json`), shared by every backend.

Decoding validates against the schema every time: the file is ours, but people edit, merge
and truncate files, and a state read wrong turns into wrong deletes on the server.
With orjson and jsonschema_rs, a 100,000-profile state (45 MB) loads in about two seconds on a
slow shared 2-CPU machine, most of it spent building the model objects (`bench/state_scale.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any, Final

import jsonschema_rs
import orjson

from reconciler.errors import StateCorruptError, StateError
from reconciler.heap import collector_paused
from reconciler.model import (
    SINGLE_VALUE_CHANNELS,
    TOKEN_CHANNELS,
    ChannelData,
    ChannelValue,
    Token,
)
from reconciler.state.base import State

FORMAT_VERSION: Final = 1
MAX_REPORTED_ERRORS: Final = 5
_TOKEN_CHANNELS: Final = frozenset(TOKEN_CHANNELS)
_SINGLE_VALUE_CHANNELS: Final = frozenset(SINGLE_VALUE_CHANNELS)


def encode(state: State) -> bytes:
    """The file content for a saved state (lineage set, serial already incremented).

    Profiles are sorted and the JSON indented so that the file diffs well in git. A state
    that would not pass `decode` (e.g. an empty workspace) is a `StateError`.
    """
    if state.lineage is None:
        raise ValueError("only a state with a lineage can be encoded")
    with collector_paused():
        document = {
            "format_version": FORMAT_VERSION,
            "lineage": state.lineage,
            "serial": state.serial,
            "workspace": state.workspace,
            "version": state.version,
            "profiles": {
                distinct_id: state.profiles[distinct_id].to_json()
                for distinct_id in sorted(state.profiles)
            },
        }
        if state.unconfirmed:
            document["unconfirmed"] = sorted(state.unconfirmed)
        if state.missing:
            document["missing"] = sorted(state.missing)
        # Never write what the next load would refuse: that would lock the user out.
        problems = _schema_problems(document)
        if problems:
            raise StateError(f"refusing to save an invalid state: {'; '.join(problems)}")
        try:
            return orjson.dumps(document,
                                option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as err:  # e.g. an unmanaged value beyond 64-bit ints
            raise StateError(f"refusing to save a state JSON cannot hold: {err}") from None


def decode(data: bytes, source: str) -> State:
    """Parse and validate stored bytes; `StateCorruptError` names `source` and the problem."""
    with collector_paused():
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise StateCorruptError(
                f"state {source} is not valid JSON: {err.msg} at line {err.lineno} "
                f"column {err.colno}") from None
        if not isinstance(document, dict) or "format_version" not in document:
            raise StateCorruptError(
                f"state {source} is not a reconciler state file (no format_version)")
        if document["format_version"] != FORMAT_VERSION:
            raise StateCorruptError(
                f"state {source} has format_version "
                f"{json.dumps(document['format_version'])}; this reconciler reads "
                f"format_version {FORMAT_VERSION} only (a newer reconciler may have written it)")
        problems = _schema_problems(document)
        if problems:
            raise StateCorruptError(
                f"state {source} does not match schemas/state.schema.json: "
                + "; ".join(problems))
        return State(
            lineage=document["lineage"],
            serial=document["serial"],
            workspace=document["workspace"],
            version=document["version"],
            profiles={distinct_id: _channel_data(channel)
                      for distinct_id, channel in document["profiles"].items()},
            unconfirmed=set(document.get("unconfirmed", ())),
            missing=set(document.get("missing", ())),
        )


def _channel_data(channel: dict[str, Any]) -> ChannelData:
    """`ChannelData.from_json` for a channel object that passed the schema, a third faster.

    At 100,000 profiles this is most of the load time. The schema already guarantees what
    `from_json` checks for (no empty channel, every token with a status), and positional
    arguments make `Token` cheaper to build; tests check that both always agree.
    """
    channels: dict[str, ChannelValue] = {}
    unmanaged: dict[str, Any] = {}
    for name, value in channel.items():
        if name in _TOKEN_CHANNELS:
            channels[name] = tuple([Token(token["token"], token.get("integration_id"),
                                          token["status"]) for token in value])
        elif name in _SINGLE_VALUE_CHANNELS:
            channels[name] = value
        else:
            unmanaged[name] = value
    return ChannelData(channels, unmanaged)


def _schema_problems(document: dict[str, Any]) -> list[str]:
    validator = _validator()
    if validator.is_valid(document):  # the common case, at a third of the cost of listing
        return []
    problems: list[str] = []
    for error in validator.iter_errors(document):
        if len(problems) == MAX_REPORTED_ERRORS:
            problems.append("(further problems not shown)")
            break
        problems.append(f"at {_pointer(error.instance_path)}: {error.message}")
    return problems


def _pointer(path: Sequence[str | int]) -> str:
    """An RFC 6901 JSON pointer, so that a distinct_id holding `/` stays unambiguous."""
    if not path:
        return "the top level"
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@cache
def _validator() -> Any:
    schema_file = resources.files("reconciler") / "schemas" / "state.schema.json"
    return jsonschema_rs.validator_for(orjson.loads(schema_file.read_bytes()))
