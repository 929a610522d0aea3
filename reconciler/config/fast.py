"""The fast path: yaml_rs reads a file without positions, about twice as fast as libyaml's events.

`load_fast` returns yaml_rs's document only when it is provably the data that the precise
path (`precise.py`, the authority) would build from the same text; otherwise it returns
None and the caller uses the precise path. The caller also takes the precise path when the
semantic checks or the schema find anything in the fast document, so every reported
problem, and every message, comes from the precise path. Being wrong here in the cautious
direction only costs time; each guard below sends a file to the precise path when:

- text has a tag (`!` at a token start): yaml_rs applies or drops tags (`!!int "12"` is 12,
  `!foo bar` is "bar"); the precise path honours `!!str` and reports every other tag.
- text has an anchor or alias (`&`/`*` at a token start, including right after the `:` of a
  JSON-like key, `{"a":*x}`): the precise path bounds alias expansion with its own budget
  (yaml_rs copies every repetition) and reports unknown aliases and alias keys its own way.
- text has `<<`: yaml_rs may apply YAML 1.1 merge keys; the precise path rejects them.
- text has a directive (`%` at a line start): `%YAML 1.1` could change how one parser, not
  the other, reads scalars; `%TAG` defines tag handles.
- text has a complex key (`?` at a token start): its key could be anything, and it escapes
  the numeric-key scan below.
- text has a flow collection (`{`, `[`) continued on another line: yaml_rs accepts implicit
  keys there that span lines, which libyaml rejects.
- text has a tab before the first character of a line (`\t{profiles: {}}`): libyaml
  refuses a tab where indentation stands, while yaml_rs reads some such lines.
- text has a character that libyaml rejects or treats as a line break where YAML 1.2 does
  not (controls, U+0085, U+2028, U+2029, a BOM past the start, a lone CR): the two
  parsers would disagree on the text or on whether it is valid at all.
- yaml_rs raises anything (syntax error, duplicate key, alias limits): only the precise
  path positions errors, and its key identity (source text) differs from yaml_rs's
  (resolved value: `1:` and `01:` clash there, not in the precise path).
- the document is not a mapping, or it holds several documents (yaml_rs returns a list).
- a top-level key is not text, or a distinct_id is not text and not a canonical integer.
  Keys are source text on the precise path; yaml_rs resolves them (`0123:` is 123). An
  integer distinct_id is taken as `str(key)` only when a scan of the text proves that
  no plain key in the file is a non-canonical number (leading zero, `+`, `-0`, `_`, 0x, 0o,
  0b, a float), no flow mapping could hide one, and no two keys become the same text
  (`1:` and `"1":`). Deeper keys need no guard: the checks reject any key that is not a
  known channel or token field, which includes every non-text key.
- a value is not text where text is expected: the checks report it, so the file goes to
  the precise path, which resolves scalars by the YAML 1.2 core schema. yaml_rs resolves
  a superset of the core forms to non-text (`1_000`, `0b1`), never the reverse (pinned by
  tests), so a text value here is a text value there.
"""

from __future__ import annotations

import re
from typing import Any, Final

import yaml_rs

# Each guard is a cheap substring test first: a regex alternation scanned over 26 MB costs
# seconds, while most files hold none of these characters at all.
# A node's properties (tag, anchor) and an alias start a token: at a line start, after white
# space or a flow indicator, and after the ":" of a JSON-like key (`{"a":*x}`), which YAML 1.2
# allows adjacent to its value in a flow collection.
_TOKEN_START_INDICATORS: Final = {
    "!": re.compile(r"(?:^|[\s\[\]{},:])!", re.MULTILINE),  # a tag
    "&": re.compile(r"(?:^|[\s\[\]{},:])&", re.MULTILINE),  # an anchor
    "*": re.compile(r"(?:^|[\s\[\]{},:])\*", re.MULTILINE),  # an alias
    "?": re.compile(r"(?:^|[\s\[\]{},])\?(?:\s|$)", re.MULTILINE),  # an explicit key
}
# A flow collection continued on another line: there yaml_rs takes an implicit key that spans
# lines (`{u\n-1: x}` is the id "u -1"), which YAML forbids and libyaml rejects. Found as a
# line that opens more brackets than it closes (nested ones included); a bracket in a quoted
# string or a comment only sends the file to the precise path.
_FLOW_LINE: Final = re.compile(r"^[^\n]*[{\[][^\n]*$", re.MULTILINE)
_TAB_INDENT: Final = re.compile(r"^ *\t", re.MULTILINE)
_DISAGREEING_CHARACTERS: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]"
)
_DISAGREEING_ASCII: Final = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
"""The ASCII characters of `_DISAGREEING_CHARACTERS`."""


def _multiline_flow(text: str) -> bool:
    return any(line.count("{") + line.count("[") > line.count("}") + line.count("]")
               for line in _FLOW_LINE.findall(text))


def _suspicious(text: str) -> bool:
    """Whether `text` uses a feature for which yaml_rs may differ from the precise path."""
    if "<<" in text or text.startswith("%") or "\n%" in text:
        return True
    for indicator, pattern in _TOKEN_START_INDICATORS.items():
        if indicator in text and pattern.search(text):
            return True
    if "\r" in text and re.search(r"\r(?!\n)", text):
        return True
    if "\t" in text and _TAB_INDENT.search(text):
        return True
    if ("{" in text or "[" in text) and _multiline_flow(text):
        return True
    if text.isascii():  # known without a scan: the common case, tested three times faster
        data = text.encode("ascii")
        return len(data.translate(None, _DISAGREEING_ASCII)) != len(data)
    return _DISAGREEING_CHARACTERS.search(text) is not None


# A plain key made of digits, signs, dots and underscores (or starting with one of them),
# wherever an implicit key can stand: after indentation and any "- " entries.
_NUMERIC_LOOKING_KEY: Final = re.compile(
    r"^[ \t]*(?:-[ \t]+)*([-+.0-9_][^\s:#]*)[ \t]*:(?:[ \t]|$)", re.MULTILINE
)
_CANONICAL_INTEGER: Final = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")
# "{" not followed by "}" (after spaces): a non-empty flow mapping, whose keys the scan
# above does not see. The empty `{}` of `u-1: {}` is common and harmless.
_FLOW_MAPPING: Final = re.compile(r"\{(?![ \t]*\})")


def _integer_keys_are_safe(text: str) -> bool:
    """Whether every plain numeric-looking key in `text` reads back as itself via str(int)."""
    if _FLOW_MAPPING.search(text):
        return False
    return all(_CANONICAL_INTEGER.match(key) for key in _NUMERIC_LOOKING_KEY.findall(text))


def _profiles_as_text(profiles: dict[Any, Any], text: str) -> dict[str, Any] | None:
    """`profiles` with canonical integer keys as text, or None when that is not provable."""
    if all(type(key) is str for key in profiles):
        return profiles
    if not all(type(key) in (str, int) for key in profiles):
        return None
    if not _integer_keys_are_safe(text):
        return None
    try:
        converted = {str(key): value for key, value in profiles.items()}
    except ValueError:  # an integer key too long for str(): the precise path reports it
        return None
    if len(converted) != len(profiles):
        return None  # `1:` and `"1":` are one id declared twice: the precise path says so
    return converted


def load_fast(text: str) -> dict[str, Any] | None:
    """yaml_rs's document for `text`, or None when the precise path must read it."""
    if _suspicious(text):
        return None
    return parse_fast(text)


def parse_fast(text: str) -> dict[str, Any] | None:
    """`load_fast` without the scan of the text for what yaml_rs may read otherwise: for a
    meaning only assumed, which `load_fast` then confirms (`assume.py`)."""
    try:
        data = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # any failure here only means "take the precise path"
        return None
    if type(data) is not dict or not all(type(key) is str for key in data):
        return None
    profiles = data.get("profiles")
    if type(profiles) is dict:
        as_text = _profiles_as_text(profiles, text)
        if as_text is None:
            return None
        if as_text is not profiles:
            data["profiles"] = as_text
    return data
