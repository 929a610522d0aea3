"""`reconciler fmt`: configuration YAML rewritten into one canonical layout, comments kept.

    format_text(text) -> str                        the canonical layout of one file's text
    format_paths(paths, write=...) -> FmtReport     which files changed, which were refused

The layout (shown by `reconciler fmt --help` and the README, from `LAYOUT`):
top-level keys in the order workspace, version, ownership, profiles; profiles sorted by
distinct_id as the planner orders them (by code point); a profile's keys in the model's
channel order, then ownership, then remove; tokens that hold only `token` as the shorthand
string, other tokens as block mappings keyed token, integration_id, status; phone numbers and
tokens always double-quoted, any other text double-quoted only when a YAML 1.1 or 1.2 reader
could take it for something else (a number, a boolean, null, a date, `yes`...) or it cannot be
written plain, and plain otherwise; block style with 2-space indentation, list items indented
2 under their key; one newline at the end.

Why it is built this way:
- ruamel.yaml reads the file round-trip with every plain scalar kept as the text written (no
  type resolved), so a value is never re-typed: `status: 0` stays the number it was, and a
  text is quoted only when the rules above say so.
- Comments are found in the source itself and tied to the node they describe by position
  (`reconciler.fmt_comments`): a comment above a profile belongs to that profile, one on its
  line to it, one indented inside a block to that block's end, so they move with it.
- Nothing is written on trust: a file the loader refuses is refused with the loader's own
  problems (file:line:column); the formatted text must load to exactly the same
  configuration and hold exactly the same comments, or the file is refused as a bug in fmt;
  the write is atomic and keeps the file's mode.
"""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Final

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.emitter import RoundTripEmitter
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tag import Tag

from reconciler.atomic import replace_file
from reconciler.config import Config, load_config
from reconciler.config.checks import PROFILE_KEYS, ROOT_KEYS, TOKEN_KEYS
from reconciler.config.precise import parse_precise
from reconciler.config.scalars import resolve_plain
from reconciler.config.sources import expand_paths, read_text
from reconciler.errors import ConfigError, Problem
from reconciler.fmt_comments import (
    INDENT,
    Container,
    Moved,
    Placer,
    clear_comments,
    find_comments,
    place,
    slots_of,
)
from reconciler.model import CHANNELS, TOKEN_CHANNELS, Token
from reconciler.ownership import WEBPUSH
from reconciler.values import PHONE_CHANNELS

LAYOUT: Final = """\
top-level keys: workspace, version, ownership, profiles;
profiles sorted by distinct_id (as plans order them);
a profile's keys: sms, whatsapp, voice, email, slack, discord, teams, push, inapp,
ownership, remove;
a token with only `token` is the shorthand string, any other a block mapping keyed
token, integration_id, status;
phone numbers and tokens double-quoted, other text double-quoted only when YAML could
read it as something else (12345, true, null, yes, 2024-01-01...), plain otherwise;
block style, 2-space indentation, list items 2 under their key, one final newline;
comments kept: one above or beside a profile, channel or token moves with it."""
"""The canonical layout in a few lines, for `reconciler fmt --help`."""

_PLACEHOLDER_WORKSPACE: Final = "FYFMT00000"
"""Stands in for FYNO_WSID when a file states no workspace: fmt looks at one file alone."""
_LONGEST_SIMPLE_KEY: Final = 500
"""Characters of the longest key written `key: value` (YAML allows 1,024 of source; escapes
may double a key's length); a longer one is written as an explicit `? key`."""
_STR: Final = "tag:yaml.org,2002:str"
_YAML_11: Final = yaml.resolver.Resolver()

class _TextResolver(VersionedResolver):
    """YAML 1.2, with every plain scalar the text written, except an empty one, which is
    null: what a plain scalar means is left to the loader, so formatting never changes it."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return Tag(suffix="tag:yaml.org,2002:null" if value == "" else _STR)
        return super().resolve(kind, value, implicit)


class _Emitter(RoundTripEmitter):
    """ruamel's emitter, with double quotes wherever it would choose single ones."""

    MAX_SIMPLE_KEY_LENGTH = _LONGEST_SIMPLE_KEY

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _yaml() -> YAML:
    handler = YAML(typ="rt", pure=True)
    handler.Resolver = _TextResolver
    handler.Emitter = _Emitter
    handler.preserve_quotes = True  # a quoted scalar is text; only a plain one may be a number
    handler.indent(mapping=INDENT, sequence=2 * INDENT, offset=INDENT)
    handler.width = 1 << 30  # never fold a long value onto a second line
    return handler


# ---- the canonical structure -------------------------------------------------------------


def _misread(text: str) -> bool:
    """Whether YAML 1.2 (the loader) or 1.1 (many other tools) reads `text`, written plain,
    as anything but this text."""
    if not isinstance(resolve_plain(text), str):
        return True
    tag = _YAML_11.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(tag != _STR)


def _text(value: Any, *, quote: bool = False) -> Any:
    """A scalar as the layout writes it; a plain scalar that is not text (a number, null)
    stays exactly as written, since the loader gives it its meaning."""
    if not isinstance(value, str):
        return value
    if type(value) is str and not isinstance(resolve_plain(value), str):
        return value
    text = str.__str__(value)
    return DoubleQuotedScalarString(text) if quote or _misread(text) else text


def _put(container: Container, key: Any, value: Any) -> None:
    """`container[key] = value`, without ruamel's keeping of the old value's quoting style:
    the layout decides it."""
    if isinstance(container, CommentedMap):
        ordereddict.__setitem__(container, key, value)
    else:
        list.__setitem__(container, key, value)


def _rekey(mapping: CommentedMap, order: Sequence[str] | None) -> None:
    """Put `mapping`'s keys in `order` (known keys first, in that order; None: sorted by
    code point) and write each key as the layout does."""
    keys = list(mapping)
    if order is None:
        keys.sort()
    else:
        rank = {name: index for index, name in enumerate(order)}
        keys.sort(key=lambda key: rank.get(key, len(rank)))
    values = [(key, mapping.pop(key)) for key in keys]
    for key, value in values:
        mapping[_text(key)] = value  # a new key: nothing to keep


def _canonical(root: CommentedMap, moved: Moved
               ) -> None:
    """Rearrange the document into the layout, in place. A token mapping that becomes the
    shorthand string is recorded in `moved`, so that its comments follow it."""
    _rekey(root, ROOT_KEYS)
    for key in ("workspace", "version"):
        if key in root:
            _put(root, key, _text(root[key]))
    if "ownership" in root:
        _put(root, "ownership", _modes(root["ownership"]))
    profiles = root.get("profiles")
    if isinstance(profiles, CommentedMap):
        _rekey(profiles, None)
        for profile in profiles.values():
            if isinstance(profile, CommentedMap):
                _profile(profile, moved)


def _profile(profile: CommentedMap, moved: Moved
             ) -> None:
    _rekey(profile, PROFILE_KEYS)
    for key, value in profile.items():
        if key in TOKEN_CHANNELS and isinstance(value, CommentedSeq):
            _tokens(value, moved)
        elif key == "ownership":
            _put(profile, key, _modes(value))
        elif key == "remove" and isinstance(value, CommentedMap):
            _removals(value)
        else:
            _put(profile, key, _text(value, quote=key in PHONE_CHANNELS))


def _tokens(items: CommentedSeq, moved: Moved) -> None:
    for index, item in enumerate(items):
        if isinstance(item, CommentedMap):
            if list(item) == ["token"]:
                _put(items, index, _text(item["token"], quote=True))
                moved[id(item), "token"] = (items, index)
                continue
            _rekey(item, TOKEN_KEYS)
            for key, value in item.items():
                _put(item, key, _text(value, quote=key == "token"))
        else:
            _put(items, index, _text(item, quote=True))


def _modes(value: Any) -> Any:
    if isinstance(value, CommentedMap):
        _rekey(value, CHANNELS)
        for key, mode in value.items():
            _put(value, key, _text(mode))
        return value
    return _text(value)


def _removals(remove: CommentedMap) -> None:
    _rekey(remove, (*CHANNELS, WEBPUSH))
    for key, value in remove.items():
        if key in TOKEN_CHANNELS and isinstance(value, CommentedSeq):
            for index, token in enumerate(value):
                _put(value, index, _text(token, quote=True))
        else:
            _put(remove, key, _any(value, quote=key in PHONE_CHANNELS))


def _any(node: Any, *, quote: bool = False) -> Any:
    """Data the layout does not shape (a web push subscription): keys kept in their order."""
    if isinstance(node, CommentedMap):
        _rekey(node, list(node))
        for key, value in node.items():
            _put(node, key, _any(value))
    elif isinstance(node, CommentedSeq):
        for index, value in enumerate(node):
            _put(node, index, _any(value))
    else:
        return _text(node, quote=quote)
    return node


# ---- one file ----------------------------------------------------------------------------


class Refused(Exception):
    """A file fmt will not rewrite: `problems` say why, with file, line and column."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def format_text(text: str) -> str:
    """`text` (a configuration the loader accepts) in the canonical layout.

    Raises ruamel's YAMLError if ruamel cannot read what libyaml could; `format_file` turns
    that into a refusal.
    """
    handler = _yaml()
    root = handler.load(text)
    if not isinstance(root, CommentedMap) or not root:
        return text if text.endswith("\n") else text + "\n"
    slots = slots_of(root)
    placement = place(find_comments(text), slots)
    moved: Moved = {}
    clear_comments(root)
    _canonical(root, moved)
    Placer(root, slots, moved).place(placement)
    out = StringIO()
    handler.dump(root, out)
    return out.getvalue().rstrip("\n") + "\n"


@dataclass(frozen=True, slots=True)
class Formatted:
    """One file fmt looked at: its text before and in the layout."""

    path: str
    before: str
    after: str
    secrets: tuple[str, ...]  # the tokens it declares: masked in a diff

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        """A unified diff from the file to its layout (values unmasked: the caller masks)."""
        return "".join(difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
            fromfile=self.path, tofile=f"{self.path} (formatted)"))


def _load_one(path: str, workspace: str | None) -> Config:
    return load_config([path], workspace=workspace)


def _states_workspace(text: str) -> bool:
    data = parse_precise(text).data
    return isinstance(data, dict) and "workspace" in data


def _tokens_of(config: Config) -> tuple[str, ...]:
    return tuple(token.token for data in config.profiles.values()
                 for value in data.channels.values() if not isinstance(value, str)
                 for token in value if isinstance(token, Token))


def _meaning(config: Config) -> tuple[Any, ...]:
    return (config.workspace, config.version, config.profiles, config.ownership,
            config.digest)


def _bug(path: str, what: str) -> Refused:
    return Refused([Problem(path, 0, 0, f"not formatted: the formatted text would {what}; "
                            "this is a bug in reconciler fmt, please report it (the file is "
                            "left as it was)")])


def format_file(path: str) -> Formatted:
    """`path` and its text in the layout, checked; raises Refused when it may not be
    rewritten."""
    text = read_text(path)
    if isinstance(text, Problem):
        raise Refused([text])
    workspace = None if _states_workspace(text) else _PLACEHOLDER_WORKSPACE
    try:
        before = _load_one(path, workspace)
    except ConfigError as error:
        raise Refused(error.problems) from error
    try:
        after = format_text(text)
    except (YAMLError, RecursionError) as error:
        mark = getattr(error, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        raise Refused([Problem(path, line, column, "not formatted: the YAML library fmt uses "
                               "cannot read this file; it is left as it was")]) from error
    _check(path, text, after, before, workspace)
    return Formatted(path, text, after, _tokens_of(before))


def _check(path: str, text: str, after: str, before: Config, workspace: str | None) -> None:
    """Refuse a layout that would change what the file means or drop a comment."""
    if after == text:
        return
    with tempfile.TemporaryDirectory(prefix="reconciler-fmt-") as directory:
        copy = os.path.join(directory, os.path.basename(path))
        with open(copy, "w", encoding="utf-8") as handle:
            handle.write(after)
        try:
            formatted = _load_one(copy, workspace)
        except ConfigError as error:
            raise _bug(path, "not load") from error
    if _meaning(formatted) != _meaning(before):
        raise _bug(path, "mean another configuration")
    kept = sorted(comment.text for comment in find_comments(after))
    if kept != sorted(comment.text for comment in find_comments(text)):
        raise _bug(path, "lose or change a comment")


def write_formatted(formatted: Formatted) -> None:
    """Replace the file with its layout, atomically, keeping its mode; the file the path
    names (through a symlink) is replaced, not the link. Refuses a file changed meanwhile."""
    target = Path(os.path.realpath(formatted.path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        unchanged = read_text(str(target)) == formatted.before
    except OSError as error:
        raise Refused([Problem(formatted.path, 0, 0, f"cannot write: {error.strerror}")]
                      ) from error
    if not unchanged:
        raise Refused([Problem(formatted.path, 0, 0, "not formatted: the file changed while "
                               "it was being formatted; run fmt again")])
    try:
        replace_file(target, formatted.after.encode("utf-8"))
        os.chmod(target, mode)
    except OSError as error:
        raise Refused([Problem(formatted.path, 0, 0, f"cannot write: {error.strerror}")]
                      ) from error


# ---- many files ------------------------------------------------------------------------


@dataclass(slots=True)
class FmtReport:
    """What fmt found: every file it looked at, and the problems of those it refused."""

    files: list[Formatted] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> list[Formatted]:
        return [item for item in self.files if item.changed]


def format_paths(paths: Sequence[str | os.PathLike[str]], *, write: bool) -> FmtReport:
    """Format every configuration file `paths` name (as the loader finds them); with
    `write`, rewrite those not in the layout. A refused file is reported, never touched."""
    names, problems = expand_paths(paths)
    report = FmtReport(problems=problems)
    for name in names:
        try:
            formatted = format_file(name)
            if write and formatted.changed:
                write_formatted(formatted)
        except Refused as refused:
            report.problems.extend(refused.problems)
            continue
        report.files.append(formatted)
    return report
