"""Export: what the server holds, written as configuration YAML that plans to nothing.

    render(origin, found) -> str                               one file
    render_files(origin, found, per_file) -> (name, text)...   a directory of files
    sort_out(found) -> Sorted      declared, missing and refused profiles (render takes it too)

`found` is what `reconciler.refresh.read_profiles` answers: distinct_id -> `ChannelData`, or
None when the server has no such profile. The YAML declares every profile exactly as the
server holds it, values unmasked (it is configuration), so that `import` and then `plan`
show no change. What a configuration cannot declare is written as comments, never dropped
silently: channel keys the profile API does not document (`ChannelData.unmanaged`, e.g.
`webpush`, kept as the server holds them and never planned), profiles the server lacks, and
profiles whose data breaks the loader's own rules (a control character in a distinct_id, an
empty token): the loader's checks (`reconciler.config.checks`) decide that, so the two can
never disagree.

Every distinct_id and value is written double-quoted, with `\\"`, `\\\\` and `\\uXXXX` /
`\\UXXXXXXXX` for every character that is not printable (no YAML-1.1-only escapes such as
`\\N` or `\\_`, so the fast and the precise parser of the loader read the same text). Output
is deterministic: profiles sorted by distinct_id, channels in the model's order, tokens in
the server's order, comments sorted; the header names the day, not the time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from reconciler.config.checks import check_document
from reconciler.config.limits import WORKSPACE_ID
from reconciler.model import CHANNEL_ORDER, ChannelData, Token

FILE_PATTERN: Final = "profiles-{number}.yaml"
"""The names of a directory export's files, numbered from 1 with at least 4 digits."""

_PROFILE: Final = "  "
_CHANNEL: Final = "    "
_ITEM: Final = "      "
_LONGEST_SIMPLE_KEY: Final = 1000
"""Characters of the longest key written `key: value`. YAML limits such implicit keys to
1,024 characters of source; a longer distinct_id (up to 2,048, and escapes lengthen it) is
written as an explicit key, `? key` then `: value`."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an export comes from, named in the header of every file it writes."""

    workspace: str
    version: str
    base_url: str  # shown without credentials: see `public_url`
    generator: str  # the reconciler version
    day: date  # UTC; a day, not a time, so that two runs of one day are byte-identical


@dataclass(frozen=True, slots=True)
class Sorted:
    """What the server answered, sorted into what the YAML declares and what it only names."""

    declared: tuple[tuple[str, ChannelData], ...]  # by distinct_id
    missing: tuple[str, ...]  # the server has no such profile
    refused: tuple[tuple[str, str], ...]  # (distinct_id, why the YAML cannot declare it)

    @property
    def with_unmanaged(self) -> int:
        """Declared profiles holding channels the YAML cannot declare (kept, shown as comments)."""
        return sum(1 for _, data in self.declared if data.unmanaged)


def sort_out(found: Mapping[str, ChannelData | None]) -> Sorted:
    """Split `found` into declared, missing and refused profiles, each sorted by distinct_id."""
    missing = tuple(sorted(name for name, data in found.items() if data is None))
    present = {name: data for name, data in found.items() if data is not None}
    problems = _problems(present)
    declared = tuple((name, present[name]) for name in sorted(present) if name not in problems)
    return Sorted(declared, missing, tuple(sorted(problems.items())))


def render(origin: Origin, found: Mapping[str, ChannelData | None] | Sorted) -> str:
    """The whole export as one YAML file."""
    sorted_out = found if isinstance(found, Sorted) else sort_out(found)
    return _file(origin, sorted_out, sorted_out.declared, part=None)


def render_files(origin: Origin, found: Mapping[str, ChannelData | None] | Sorted,
                 per_file: int) -> Iterator[tuple[str, str]]:
    """The export as files of at most `per_file` profiles each, `profiles-0001.yaml` on:
    each a valid configuration of the same workspace and version (the loader merges a
    directory's files). The comments on missing and refused profiles go in the first."""
    if per_file < 1:
        raise ValueError(f"per_file must be at least 1, not {per_file}")
    sorted_out = found if isinstance(found, Sorted) else sort_out(found)
    count = max(1, math.ceil(len(sorted_out.declared) / per_file))
    width = max(4, len(str(count)))
    for index in range(count):
        chunk = sorted_out.declared[index * per_file:(index + 1) * per_file]
        name = FILE_PATTERN.format(number=f"{index + 1:0{width}d}")
        yield name, _file(origin, sorted_out, chunk, part=(index + 1, count, index * per_file))


def public_url(url: str) -> str:
    """`url` without user name, password, query or fragment: what a header may show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an unparsable URL)"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def quoted(text: str) -> str:
    """`text` as a double-quoted YAML scalar that every YAML parser reads back as `text`."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(map(_escaped, text)) + '"'


def _escaped(char: str) -> str:
    if char == '"':
        return '\\"'
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _comment(text: str) -> str:
    """`text` made safe for one comment line: every unprintable character (a line break
    among them) as a JSON escape, so that a comment can neither end early nor hide text."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
            continue
        code = ord(char)
        if code > 0xFFFF:  # a surrogate pair, as JSON writes it
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def _problems(present: Mapping[str, ChannelData]) -> dict[str, str]:
    """Why each profile the YAML cannot declare cannot be: the loader's own checks, run on
    the data as the YAML would state it; plus text no UTF-8 file can hold (a lone surrogate)."""
    plain = {name: _plain(data) for name, data in present.items()}
    findings = check_document({"profiles": plain}).findings
    problems: dict[str, str] = {}
    for finding in findings:
        if len(finding.path) >= 2 and isinstance(finding.path[1], str):
            where = ".".join(map(str, finding.path[2:]))
            problems.setdefault(finding.path[1], f"{where}: {finding.message}" if where
                                else finding.message)
    for name in present:
        if name not in problems and not _encodable(name, plain[name]):
            problems[name] = "holds a lone surrogate, which no UTF-8 file can hold"
    return problems


def _plain(data: ChannelData) -> dict[str, Any]:
    """`data`'s managed channels as the YAML states them (tokens once each)."""
    return {name: value if isinstance(value, str) else [token.to_json() for token in
                                                         _unique(value)]
            for name, value in data.channels.items()}


def _encodable(name: str, plain: Mapping[str, Any]) -> bool:
    try:
        json.dumps([name, plain], ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _unique(tokens: tuple[Token, ...]) -> list[Token]:
    """Each token string once, with the fields of its first copy: a configuration declares
    a token once (the loader refuses a repeated one)."""
    seen: set[str] = set()
    kept = []
    for token in tokens:
        if token.token not in seen:
            seen.add(token.token)
            kept.append(token)
    return kept


def _file(origin: Origin, sorted_out: Sorted, chunk: tuple[tuple[str, ChannelData], ...],
          part: tuple[int, int, int] | None) -> str:
    lines = _header(origin, sorted_out, chunk, part)
    if part is None or part[0] == 1:
        lines += _left_out(sorted_out)
    lines.append("")
    # Plain when nothing else could be read from them: the README's layout.
    workspace, version = origin.workspace, origin.version
    lines.append(f"workspace: {workspace if WORKSPACE_ID.match(workspace) else quoted(workspace)}")
    lines.append(f"version: {version if version in ('live', 'test') else quoted(version)}")
    if not chunk:
        lines.append("profiles: {}")
    else:
        lines.append("profiles:")
        for name, data in chunk:
            lines += _profile(name, data)
    return "\n".join(lines) + "\n"


def _header(origin: Origin, sorted_out: Sorted, chunk: tuple[tuple[str, ChannelData], ...],
            part: tuple[int, int, int] | None) -> list[str]:
    held = _count(len(sorted_out.declared), "profile")
    if part is not None and part[1] > 1:
        number, count, start = part
        held = (f"profiles {start + 1:,} to {start + len(chunk):,} of {held} (file "
                f"{number:,} of {count:,})")
    lines = [
        f"Exported by reconciler {origin.generator} on {origin.day.isoformat()} (UTC)",
        f"from {origin.base_url}, workspace {origin.workspace}, version {origin.version}:",
        f"the channel data of {held}, exactly as the server held it.",
        "Values are not masked: this file is configuration. To adopt these profiles:",
        "  reconciler import PATH && reconciler plan PATH    # plans no change",
        "(PATH: this file, or the directory that holds all the files of this export.)",
    ]
    return [f"# {_comment(line)}" for line in lines]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _left_out(sorted_out: Sorted) -> list[str]:
    lines = []
    if sorted_out.missing:
        lines += ["", f"# Not declared: {_count(len(sorted_out.missing), 'profile')} the server "
                  "does not have."]
        lines += [f"#   {_comment(quoted(name))}" for name in sorted_out.missing]
    if sorted_out.refused:
        lines += ["", f"# Not declared: {_count(len(sorted_out.refused), 'profile')} whose data "
                  "no configuration can hold, each with why."]
        lines += [f"#   {_comment(quoted(name))}: {_comment(why)}"
                  for name, why in sorted_out.refused]
    return lines


def _profile(name: str, data: ChannelData) -> list[str]:
    key = quoted(name)
    if len(key) > _LONGEST_SIMPLE_KEY:
        lines = [f"{_PROFILE}? {key}", f"{_PROFILE}:"]
    else:
        lines = [f"{_PROFILE}{key}:"]
    if not data.channels:
        lines[-1] += " {}"
    if data.unmanaged:
        lines.append(f"{_CHANNEL}# Not declared, kept as the server holds them, never planned: "
                     "channels the profile API does not document")
        for channel in sorted(data.unmanaged):
            held = json.dumps(data.unmanaged[channel], ensure_ascii=False, sort_keys=True,
                              separators=(", ", ": "))
            lines.append(f"{_CHANNEL}#   {_comment(channel)}: {_comment(held)}")
    for channel in sorted(data.channels, key=CHANNEL_ORDER.__getitem__):
        value = data.channels[channel]
        if isinstance(value, str):
            lines.append(f"{_CHANNEL}{channel}: {quoted(value)}")
        else:
            lines.append(f"{_CHANNEL}{channel}:")
            lines += _tokens(channel, value)
    return lines


def _tokens(channel: str, tokens: tuple[Token, ...]) -> list[str]:
    counts: dict[str, int] = {}
    for token in tokens:
        counts[token.token] = counts.get(token.token, 0) + 1
    lines = []
    for token in _unique(tokens):
        if counts[token.token] > 1:
            lines.append(f"{_ITEM}# the server holds this {channel} token "
                         f"{counts[token.token]} times: declared once, the first plan "
                         "deletes the copies and adds it once")
        lines.append(f"{_ITEM}- token: {quoted(token.token)}")
        if token.integration_id is not None:
            lines.append(f"{_ITEM}  integration_id: {quoted(token.integration_id)}")
        lines.append(f"{_ITEM}  status: {token.status}")
    return lines
