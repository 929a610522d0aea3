"""The semantic checks of one document, shared by the fast and the precise path.

`check_document` walks plain data (dicts, lists, scalars) and returns what it means (the
workspace, the version, each profile's `ChannelData`) with every problem as a `Finding` at
a path. It never needs positions; on the fast path any finding only sends the file to the
precise path, whose findings are then positioned and reported. Phone numbers and e-mail
addresses are checked by `reconciler.values`; a phone number means its E.164 form, which
is what a PATCH sends.

`sources` maps the paths of plain scalars that YAML did not read as text to their source
text, so that a message can show exactly what was written and its quoted form.

A clean file of the common shape is read without these checks: the schema and
`assume.holds` decide, as a property test shows, exactly what these checks would. A rule
added here belongs in the schema or in `holds` as well, or that test fails.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from reconciler.config.findings import Finding, YamlPath
from reconciler.config.limits import (
    MAX_DISTINCT_ID_LENGTH,
    MAX_VALUE_LENGTH,
    SHOWN_LENGTH,
    is_clean,
    plain,
    shown,
    text_problem,
    workspace_problem,
)
from reconciler.config.scalars import kind_of, not_text_message, number_text
from reconciler.model import CHANNELS, SINGLE_VALUE_CHANNELS, TOKEN_CHANNELS, ChannelData, Token
from reconciler.ownership import MODES, WEBPUSH, Entry, Mode, webpush_key
from reconciler.values import EMAIL_CHANNEL, PHONE_CHANNELS, canonical, desired_value, same_value

ROOT_KEYS: Final = ("workspace", "version", "ownership", "profiles")
PROFILE_KEYS: Final = (*CHANNELS, "ownership", "remove")
"""A profile's keys: its channels, its own ownership modes, and the entries to remove."""
VERSIONS: Final = ("live", "test")
TOKEN_KEYS: Final = ("token", "integration_id", "status")
_SINGLE: Final = frozenset(SINGLE_VALUE_CHANNELS)
_TOKENS: Final = frozenset(TOKEN_CHANNELS)
_TOKEN_KEY_SET: Final = frozenset(TOKEN_KEYS)
_READ: Final = PHONE_CHANNELS | {EMAIL_CHANNEL}
"""Channels whose values are phone numbers or e-mail addresses, checked by `values`."""


@dataclass(slots=True)
class CheckedDocument:
    """What one document declares, and what is wrong with it."""

    workspace: str | None = None
    version: str | None = None
    profiles: dict[str, ChannelData] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    ownership: dict[str, Mode] | None = None  # the workspace's default modes, when stated
    # Profiles that state their own modes or list removals: (modes, removals).
    policies: dict[str, tuple[dict[str, Mode], frozenset[Entry]]] = field(default_factory=dict)


def _unknown_key(what: str, key: object, known: tuple[str, ...]) -> str:
    if isinstance(key, str):
        name = shown(key)
        # A key far longer than any known one cannot be a misspelling of it.
        close = difflib.get_close_matches(key, known, n=1) if len(key) < 40 else []
    else:  # only yaml_rs makes keys that are not text; its findings are never shown
        name, close = _describe(key), []
    if close:
        return f'unknown {what} {name}; did you mean "{close[0]}"?'
    return f"unknown {what} {name}; expected one of: {', '.join(known)}"


def _describe(value: object) -> str:
    """A scalar as a message shows it: text quoted and escaped, numbers never too long."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    if isinstance(value, int | float):
        return number_text(value)
    return kind_of(value)


class _Checker:
    def __init__(self, sources: Mapping[YamlPath, str]) -> None:
        self.sources = sources
        self.findings: list[Finding] = []

    def add(self, path: YamlPath, message: str, **extra: Any) -> None:
        self.findings.append(Finding(path, message, **extra))

    def text(self, path: YamlPath, label: str, value: object, if_empty: str) -> str | None:
        """`value` when it is text; otherwise report it and return None."""
        if isinstance(value, str):
            return value
        source = self.sources.get(path)
        self.add(path, not_text_message(label, value, source, if_empty=if_empty))
        return None

    def _written(self, path: YamlPath, value: object) -> str:
        """A scalar that is not text as it was written (when known), for a message."""
        source = self.sources.get(path)
        if source is None:
            return _describe(value)
        return source if len(source) <= SHOWN_LENGTH else shown(source)

    def limited(self, path: YamlPath, label: str, value: str, max_length: int,
                *, at_key: bool = False) -> bool:
        """Whether text `value` keeps the limits (`limits.py`); if not, report why."""
        if is_clean(value, max_length):
            return True
        problem = text_problem(label, value, max_length)
        assert problem is not None
        self.add(path, problem, at_key=at_key)
        return False

    def root(self, data: object, result: CheckedDocument) -> None:
        if not isinstance(data, dict):
            what = "empty" if data is None else kind_of(data)
            self.add((), f"the document must be a mapping with a profiles: key, not {what}")
            return
        for key in data:
            if key not in ROOT_KEYS:
                self.add((key,), _unknown_key("top-level key", key, ROOT_KEYS), at_key=True)
        if "workspace" in data:
            workspace = self.text(("workspace",), "workspace", data["workspace"], "name it")
            if workspace == "":
                self.add(("workspace",), "workspace must not be empty")
            elif workspace is not None and (problem := workspace_problem(workspace)):
                self.add(("workspace",), problem)
                workspace = None
            result.workspace = workspace or None
        if "version" in data:
            version = data["version"]
            if isinstance(version, str) and version in VERSIONS:
                result.version = version
            else:
                if isinstance(version, str):
                    shown_version = repr(version) if plain(version) == version else shown(version)
                else:
                    shown_version = self._written(("version",), version)
                self.add(("version",), f"version must be live or test, not {shown_version}")
        if "ownership" in data:
            result.ownership = self.modes(("ownership",), data["ownership"])
        if "profiles" not in data:
            self.add((), "missing profiles: (a mapping of distinct_id to channel data)")
            return
        profiles = data["profiles"]
        if profiles is None:
            self.add(("profiles",), "profiles has no value; write profiles: {} for none")
        elif not isinstance(profiles, dict):
            self.add(("profiles",), f"profiles must be a mapping, not {kind_of(profiles)}")
        else:
            for distinct_id, profile in profiles.items():
                result.profiles[distinct_id] = declared = self.profile(distinct_id, profile)
                if isinstance(profile, dict) and ("ownership" in profile or "remove" in profile):
                    path: YamlPath = ("profiles", distinct_id)
                    modes = (self.modes((*path, "ownership"), profile["ownership"]) or {}
                             if "ownership" in profile else {})
                    removals = (self.removals((*path, "remove"), profile["remove"], declared)
                                if "remove" in profile else frozenset())
                    result.policies[distinct_id] = (modes, removals)

    def modes(self, path: YamlPath, value: object) -> dict[str, Mode] | None:
        """`ownership:` at the top or in a profile: one mode for every channel, or a
        mapping of channel to mode."""
        expected = f"one of {', '.join(MODES)}, or a mapping of channel to one of them"
        if isinstance(value, str) and value in MODES:
            return {channel: Mode(value) for channel in CHANNELS}
        if not isinstance(value, dict):
            written = shown(value) if isinstance(value, str) else self._written(path, value)
            self.add(path, f"ownership must be {expected}, not {written}")
            return None
        modes: dict[str, Mode] = {}
        for channel, mode in value.items():
            if channel not in CHANNELS:
                self.add((*path, channel), _unknown_key("channel", channel, CHANNELS),
                         at_key=True)
            elif isinstance(mode, str) and mode in MODES:
                modes[channel] = Mode(mode)
            else:
                written = shown(mode) if isinstance(mode, str) else self._written(
                    (*path, channel), mode)
                self.add((*path, channel), f"ownership of {channel} must be one of "
                         f"{', '.join(MODES)}, not {written}")
        return modes

    def removals(self, path: YamlPath, value: object, declared: ChannelData
                 ) -> frozenset[Entry]:
        """`remove:` of a profile: per channel, the value (single-value channels) or the
        token strings to delete wherever the server holds them, whatever the ownership."""
        if not isinstance(value, dict):
            self.add(path, "remove must be a mapping of channel to the value, or the list of "
                     f"tokens, to delete; not {kind_of(value)}")
            return frozenset()
        found: list[Entry] = []
        for channel, item in value.items():
            where = (*path, channel)
            if channel == WEBPUSH:
                found.extend(self.webpush_removals(where, item))
            elif channel not in CHANNELS:
                self.add(where, _unknown_key("channel", channel, (*CHANNELS, WEBPUSH)),
                         at_key=True)
            elif channel in _SINGLE:
                text = self.text(where, channel, item, f"name the {channel} value to remove")
                if text == "":
                    self.add(where, f"remove: {channel} names no value; name the one to "
                             "remove, or leave the channel out")
                elif text:
                    meant, problem = desired_value(channel, text)
                    held = declared.channels.get(channel)
                    if problem is not None:
                        self.add(where, f"{channel} {shown(text)} {problem}")
                    elif isinstance(held, str) and same_value(channel, held, meant):
                        self.add(where, f"{channel} {shown(text)} is both declared and listed "
                                 "for removal; keep one")
                    else:
                        found.append((channel, canonical(channel, meant)))
            else:
                items = item if isinstance(item, list) else None
                if not items:
                    self.add(where, f"remove: {channel} must be a non-empty list of token "
                             "strings")
                    continue
                declared_tokens = declared.channels.get(channel, ())
                names = {token.token for token in declared_tokens
                         if isinstance(token, Token)}
                for index, token in enumerate(items):
                    name = self.text((*where, index), "token", token, "name the token")
                    if name == "":
                        self.add((*where, index), "an empty token cannot be removed")
                    elif name is None:
                        continue
                    elif name in names:
                        self.add((*where, index), f"token {shown(name)} is both declared "
                                 f"in {channel} and listed for removal; keep one",
                                 secrets=(name,))
                    else:
                        found.append((channel, name))
        return frozenset(found)

    def webpush_removals(self, path: YamlPath, value: object) -> list[Entry]:
        """`remove: webpush:`: tokens as the server holds them (`state show --show-values`
        shows them): a PushSubscription mapping, or a string."""
        if not isinstance(value, list) or not value:
            self.add(path, "remove: webpush must be a non-empty list of tokens, each as the "
                     "server holds it (`reconciler state show ID --show-values` shows them)")
            return []
        found: list[Entry] = []
        for index, token in enumerate(value):
            if (isinstance(token, str) and token) or (isinstance(token, dict) and token):
                found.append((WEBPUSH, webpush_key(token)))
            else:
                self.add((*path, index), "a web push token to remove is a mapping (its "
                         f"subscription) or a string, not {kind_of(token)}")
        return found

    def profile(self, distinct_id: str, profile: object) -> ChannelData:
        path: YamlPath = ("profiles", distinct_id)
        if distinct_id == "":
            self.add(path, "a distinct_id must not be empty", at_key=True)
        elif len(distinct_id) > MAX_DISTINCT_ID_LENGTH or not distinct_id.isprintable():
            self.limited(path, "distinct_id", distinct_id, MAX_DISTINCT_ID_LENGTH, at_key=True)
        if profile is None:
            name = plain(distinct_id)
            self.add(
                path,
                f"profile {name} has no value; write {name}: {{}} to manage it "
                "with no channel data",
                at_key=True,
            )
            return ChannelData()
        if not isinstance(profile, dict):
            self.add(path, f"profile {plain(distinct_id)} must be a mapping of channels, "
                     f"not {kind_of(profile)}")
            return ChannelData()
        channels: dict[str, str | tuple[Token, ...]] = {}
        for channel, value in profile.items():
            if channel in _SINGLE:
                if type(value) is not str:
                    empty = f'write {channel}: "" to declare it empty'
                    self.text((*path, channel), channel, value, empty)
                elif value and (
                    # The common case first, inline: this runs for every value of a file.
                    (len(value) <= MAX_VALUE_LENGTH and value.isprintable())
                    or self.limited((*path, channel), channel, value, MAX_VALUE_LENGTH)
                ):
                    if channel in _READ:  # phones are sent in E.164
                        meant, problem = desired_value(channel, value)
                        if problem is not None:
                            self.add((*path, channel), f"{channel} {shown(value)} {problem}")
                            continue
                        value = meant
                    channels[channel] = value
            elif channel in _TOKENS:
                tokens = self.tokens((*path, channel), channel, value)
                if tokens:
                    channels[channel] = tokens
            elif channel in ("ownership", "remove"):
                continue  # read by `root`, once the channels are known
            else:
                self.add((*path, channel), _unknown_key("channel", channel, PROFILE_KEYS),
                         at_key=True)
        return ChannelData(channels)

    def tokens(self, path: YamlPath, channel: str, value: object) -> tuple[Token, ...]:
        if not isinstance(value, list):
            if value is None:
                self.add(path, f"{channel} has no value; write {channel}: [] to declare it empty")
            else:
                self.add(path, f"{channel} must be a list of tokens, not {kind_of(value)}")
            return ()
        # The common case first: every item plainly well formed, no token repeated. Checked
        # for the whole list at once, without the per-item bookkeeping that a finding needs.
        well_formed = [token for item in value
                       if (token := _well_formed_token(item)) is not None]
        if len(well_formed) == len(value) == len({token.token for token in well_formed}):
            return tuple(well_formed)
        tokens: list[Token] = []
        first_seen: dict[str, int] = {}
        for index, item in enumerate(value):
            token = _well_formed_token(item)
            if token is None:
                token = self.token((*path, index), f"{channel} item {index + 1}", item)
                if token is None:
                    continue
            if token.token in first_seen:
                first = first_seen[token.token]
                self.add(
                    _token_path(path, index, item),
                    f"token {shown(token.token)} is repeated in {channel}",
                    first=_token_path(path, first, value[first]),
                    secrets=(token.token,),
                )
                continue
            first_seen[token.token] = index
            tokens.append(token)
        return tuple(tokens)

    def token(self, path: YamlPath, label: str, item: object) -> Token | None:
        """A token item that is not plainly well formed: report what is wrong with it."""
        if not isinstance(item, dict):
            if isinstance(item, list):
                self.add(path, f"{label} must be a token or a mapping with token:, not a list")
                return None
            text = self.text(path, label, item, 'write the token, quoted: "..."')
            if text == "":
                self.add(path, f"{label} is an empty token")
            elif text is not None and not self.limited(path, "token", text, MAX_VALUE_LENGTH):
                return None
            return Token(text) if text else None
        ok = True
        for key in item:
            if key not in TOKEN_KEYS:
                self.add((*path, key), _unknown_key("token key", key, TOKEN_KEYS), at_key=True)
                ok = False
        if "token" not in item:
            self.add(path, f"{label} has no token: key")
            return None
        token = self.text((*path, "token"), "token", item["token"], "write the token")
        if token == "":
            self.add((*path, "token"), "token must not be empty")
        elif token is not None:
            ok = self.limited((*path, "token"), "token", token, MAX_VALUE_LENGTH) and ok
        integration_id = None
        if "integration_id" in item:
            integration_id = self.text(
                (*path, "integration_id"), "integration_id", item["integration_id"],
                "remove it to mean every integration",
            )
            if integration_id == "":
                self.add((*path, "integration_id"), "integration_id must not be empty; "
                         "remove it to mean every integration")
                ok = False
            elif integration_id is not None:
                ok = self.limited((*path, "integration_id"), "integration_id", integration_id,
                                  MAX_VALUE_LENGTH) and ok
            ok = ok and integration_id is not None
        status = 1
        if "status" in item:
            status = item["status"]
            if type(status) is not int or status not in (0, 1):
                written = self._written((*path, "status"), status)
                self.add((*path, "status"), f"status must be 0 or 1, not {written}")
                ok = False
        if not token or not ok:
            return None
        return Token(token, integration_id, status)


def _well_formed_token(item: object) -> Token | None:
    """The token of an item with nothing to report, or None: the common case, made cheap."""
    # Printable text within the limit is the common case; other text goes to `token`, which
    # accepts what is merely unprintable (a no-break space) and reports the rest.
    if type(item) is str:
        clean = item and len(item) <= MAX_VALUE_LENGTH and item.isprintable()
        return Token(item) if clean else None
    if type(item) is not dict or not item.keys() <= _TOKEN_KEY_SET:
        return None
    token = item.get("token")
    integration_id = item.get("integration_id")
    status = item.get("status", 1)
    if (
        type(token) is str
        and token
        and len(token) <= MAX_VALUE_LENGTH
        and token.isprintable()
        and (
            (
                type(integration_id) is str
                and integration_id
                and len(integration_id) <= MAX_VALUE_LENGTH
                and integration_id.isprintable()
            )
            or "integration_id" not in item
        )
        and type(status) is int
        and status in (0, 1)
    ):
        return Token(token, integration_id, status)
    return None


def _token_path(path: YamlPath, index: int, item: object) -> YamlPath:
    """Where the token text of an item is: the item itself, or its token: value."""
    return (*path, index) if isinstance(item, str) else (*path, index, "token")


def check_document(data: object, sources: Mapping[YamlPath, str] | None = None) -> CheckedDocument:
    """Check one document's data and read its meaning; see the module docstring."""
    result = CheckedDocument()
    checker = _Checker(sources or {})
    checker.root(data, result)
    result.findings = checker.findings
    return result
