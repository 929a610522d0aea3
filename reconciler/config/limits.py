"""The limits every text of a configuration keeps, and how messages show hostile text.

Fyno documents no limit on the length of a workspace, a distinct_id, a channel value or a
token, nor on the characters they may hold. The limits below are generous (ten times and
more what real data needs) and each is chosen for what the text becomes downstream: a file
name, a URL path segment, a JSON body, a line of a plan that a person reads. They are the
same in `schemas/profiles.schema.json` (`maxLength`, and a `pattern` that excludes the
forbidden characters), so that editors flag what the loader rejects.

Characters: no text may hold a control character (Unicode category Cc: U+0000 to U+001F,
U+007F to U+009F) or a line or paragraph separator (U+2028, U+2029). A NUL cannot be stored
by PostgreSQL (the state backend) nor be part of a file name; the others are invisible or
break lines in plans, logs and terminals (where an escape sequence could rewrite what the
reviewer sees), and in a value they are almost always a mistake (the newline that a `|`
block scalar adds). Messages show such text escaped as YAML would write it (`"u\\x00"`) and
cut to a readable length (`shown`).
"""

from __future__ import annotations

import re
from typing import Final

MAX_WORKSPACE_LENGTH: Final = 50
"""Characters in a workspace. Fyno's workspace ids have 10 (FYXXXXXXXX). The workspace names
the state file `state/<workspace>-<version>.json`, whose longest companion (the temporary
backup link `.<name>.backup-<12 hex>.tmp`) adds 35 bytes; file names are limited to 255
bytes on common file systems, and 50 characters are at most 200 bytes in UTF-8."""

MAX_DISTINCT_ID_LENGTH: Final = 2_048
"""Characters in a distinct_id. Real ids (user ids, UUIDs, emails) are under 320. A
distinct_id is a path segment of every profile URL: percent-encoded (3 bytes per byte),
2,048 ASCII characters keep the request line within the 8 KB that common servers and
proxies accept (nginx, for one)."""

MAX_VALUE_LENGTH: Final = 4_096
"""Characters in a channel value, a token or an integration_id. Emails have at most 254
(RFC 5321), phone numbers 15 digits (E.164), FCM tokens about 160, APNs tokens 64, Slack and
Teams webhook URLs a few hundred. Values travel in JSON bodies, not URLs; the limit keeps
the state, saved plans and the audit ledger (which hold each value, sometimes twice per
call) proportionate to real data."""

MAX_FILE_BYTES: Final = 64 * 1024 * 1024
"""Bytes in one configuration file: about 260,000 profiles (100,000 take 24 MB, and 450 MB of
memory to load). A larger file is almost certainly not a configuration kept by hand (a log,
a dump), and reading it would take gigabytes; a configuration that large belongs in several
files."""

SHOWN_LENGTH: Final = 60
"""Characters of a text that a message shows; longer texts are cut in the middle."""

_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TEXT_PATTERN: Final = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
"""`_FORBIDDEN` as a JSON Schema pattern (the schema file repeats it; a test compares)."""
WORKSPACE_PATTERN: Final = "^FY[A-Z0-9]+$"
"""The form of a Fyno workspace id (WSID), as Fyno shows them (FYXXXXXXXX); the schema file
repeats it, and a test compares."""

_SEPARATOR: Final = re.compile(r"[/\\]")
_SEPARATORS: Final = {"\u2028": "the line separator", "\u2029": "the paragraph separator"}
_NAMED_ESCAPES: Final = {
    "\x07": "\\a", "\x08": "\\b", "\t": "\\t", "\n": "\\n", "\x0b": "\\v",
    "\x0c": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\",
}


def _escaped(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: str, limit: int = SHOWN_LENGTH, *, count: bool = True) -> str:
    """`text` in double quotes, escaped as YAML would write it, cut to about `limit` characters.

    Invisible characters (controls, separators, format characters such as U+200B) are
    escaped, so that a message shows exactly what is in the file and never drives the
    terminal that prints it. A cut text is followed by its length, unless `count` is false.
    """
    if len(text) > limit:
        head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
        body = "".join(map(_escaped, head)) + "…" + "".join(map(_escaped, tail))
        return f'"{body}" ({len(text):,} characters)' if count else f'"{body}"'
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(map(_escaped, text)) + '"'


def plain(text: str) -> str:
    """`text` as it is when it is short and printable, else `shown(text)`."""
    return text if len(text) <= SHOWN_LENGTH and text.isprintable() else shown(text)


def text_problem(label: str, text: str, max_length: int) -> str | None:
    """What is wrong with `text` as the value of `label`, or None: too long, or a character
    that no text may hold (see the module docstring)."""
    if len(text) > max_length:
        return (
            f"{label} {shown(text, count=False)} is {len(text):,} characters long; at most "
            f"{max_length:,} are allowed"
        )
    if not text.isprintable():  # cheap, in C; true for nearly every text
        found = _FORBIDDEN.search(text)
        if found is not None:
            char = found.group()
            what = _SEPARATORS.get(char, "the control character")
            advice = "remove it"
            if char == "\n" and found.start() == len(text) - 1:
                advice = 'a "|" block scalar keeps its final line break: write "|-" instead'
            return (
                f"{label} {shown(text)} holds {what} {_escaped(char)} (U+{ord(char):04X}) "
                f"at character {found.start() + 1:,}; {advice}"
            )
    return None


WORKSPACE_ID: Final = re.compile(WORKSPACE_PATTERN)


def workspace_problem(workspace: str) -> str | None:
    """What is wrong with a workspace: `text_problem`'s rules, no path separator (the
    workspace names the state file), and the form of Fyno's workspace ids, `WORKSPACE_ID`."""
    problem = text_problem("workspace", workspace, MAX_WORKSPACE_LENGTH)
    if problem is None:
        found = _SEPARATOR.search(workspace)
        if found is not None:
            problem = (
                f"workspace {shown(workspace)} holds {found.group()} at character "
                f"{found.start() + 1}; a workspace names the state file, so it may not hold "
                "/ or \\"
            )
        elif WORKSPACE_ID.match(workspace) is None:
            problem = (
                f"workspace {shown(workspace)} is not a Fyno workspace id: FY followed by "
                "upper-case letters and digits (e.g. FYXXXXXXXX); copy it from the Fyno "
                "dashboard"
            )
    return problem


def is_clean(text: str, max_length: int) -> bool:
    """Whether `text` is within the limits: `text_problem` would say nothing."""
    return len(text) <= max_length and (text.isprintable() or _FORBIDDEN.search(text) is None)
