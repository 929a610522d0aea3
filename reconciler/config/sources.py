"""Which files a run reads, and their text: the only module of the loader that touches disk.

Paths name files or directories; a directory contributes its `*.yaml` and `*.yml` files,
sorted by name, not recursively. A missing path, an empty directory, an unreadable file and
a file that is not UTF-8 are problems of the run like any other, so that they are reported
together with the rest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from reconciler.errors import Problem

_SUFFIXES = (".yaml", ".yml")


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[Problem]]:
    """The files that `paths` name, in order, each once; and what is wrong with the paths."""
    files: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    if not paths:
        problems.append(Problem("(arguments)", 0, 0, "no configuration file or directory given"))
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            try:
                names = sorted(
                    name
                    for name in os.listdir(path)
                    if name.endswith(_SUFFIXES) and os.path.isfile(os.path.join(path, name))
                )
            except OSError as error:
                problems.append(Problem(path, 0, 0, f"cannot list directory: {error.strerror}"))
                continue
            if not names:
                problems.append(Problem(path, 0, 0, "directory holds no *.yaml or *.yml file"))
            found = [os.path.join(path, name) for name in names]
        elif os.path.lexists(path):
            found = [path]
        else:
            problems.append(Problem(path, 0, 0, "no such file or directory"))
            continue
        for file in found:
            # A file named twice (itself and through its directory) is read once: reading
            # it again would only make each of its profiles clash with itself.
            identity = os.path.realpath(file)
            if identity not in seen:
                seen.add(identity)
                files.append(file)
    return files, problems


def _position_of_byte(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of the byte at `offset`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def read_text(file: str) -> str | Problem:
    """The file's text, without a leading byte order mark; or why it cannot be had."""
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return Problem(file, 0, 0, f"cannot read file: {error.strerror or error}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position_of_byte(data, error.start)
        return Problem(
            file,
            line,
            column,
            f"not UTF-8: byte 0x{data[error.start]:02x} cannot start or continue a character; "
            "save the file as UTF-8",
        )
    return text.removeprefix("\ufeff")
