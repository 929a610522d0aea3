"""Which files a run reads, and their text: the only module of the loader that touches disk.

Paths name files or directories. A directory contributes its YAML files (names ending in
`.yaml` or `.yml`, in any case: `.YAML`, `.Yml`) and those of its subdirectories, at any
depth, sorted by path; names starting with `.` (hidden files and directories) are skipped.
Reading subdirectories matters for safety: a file moved into a subfolder must not vanish
from the configuration, which would plan the deletion of all its profiles' channels.
Symlinked directories are followed, each directory at most once, so a link loop ends.

A missing path, an empty directory, an unreadable file, a file that is not a regular file
(a device, a FIFO: reading one could block or never end), a file over `MAX_FILE_BYTES` and a
file that is not UTF-8 are problems of the run like any other, reported together with the
rest.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterator, Sequence

from reconciler.config.limits import MAX_FILE_BYTES
from reconciler.errors import Problem

YAML_SUFFIXES = (".yaml", ".yml")
"""Suffixes of the YAML files of a directory, compared in lower case."""


def is_yaml_name(name: str) -> bool:
    """Whether a directory entry named `name` is a YAML file to read (hidden ones are not)."""
    return not name.startswith(".") and name.lower().endswith(YAML_SUFFIXES)


def _walk(top: str, problems: list[Problem]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path parts below `top`, path) of each YAML entry under the directory `top`.

    Iterative, so that depth costs no recursion; a directory already visited (by device and
    inode: a symlink loop, or two links to one directory) is not entered again.
    """
    visited: set[tuple[int, int]] = set()
    pending: list[tuple[tuple[str, ...], str]] = [((), top)]
    while pending:
        parts, directory = pending.pop()
        try:
            info = os.stat(directory)
            if (info.st_dev, info.st_ino) in visited:
                continue
            visited.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as entries:
                listed = [(entry.name, entry.path, _is_directory(entry)) for entry in entries]
        except OSError as error:
            problems.append(Problem(directory, 0, 0, f"cannot list directory: "
                                    f"{error.strerror or error}"))
            continue
        for name, path, is_directory in listed:
            if name.startswith("."):
                continue
            if is_directory:
                pending.append(((*parts, name), path))
            elif is_yaml_name(name):
                # Not only regular files: a dangling link or a FIFO named *.yaml is reported
                # by `read_text`, rather than silently leaving its profiles out.
                yield (*parts, name), path


def _is_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a symlink
    except OSError:
        return False


def _directory_files(path: str, problems: list[Problem]) -> list[str] | None:
    """The YAML files under the directory `path`, sorted by path; None if it has none."""
    found = sorted(_walk(path, problems))
    return [file for _, file in found] or None


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
            before = len(problems)
            listed = _directory_files(path, problems)
            if listed is None:
                if len(problems) == before:
                    problems.append(Problem(path, 0, 0, "directory holds no *.yaml or *.yml "
                                            "file (subdirectories included)"))
                continue
            found = listed
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


_OTHER_ENCODINGS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _not_regular(mode: int) -> str:
    """Why a file of this mode is not read."""
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device"
    if stat.S_ISSOCK(mode):
        return "it is a socket"
    return "it is not a regular file"


def _read_bytes(file: str) -> bytes | Problem:
    """The bytes of the regular file `file`, at most MAX_FILE_BYTES of them."""
    try:
        info = os.stat(file)  # before opening: opening a FIFO blocks until a writer comes
        if not stat.S_ISREG(info.st_mode):
            return Problem(file, 0, 0, f"cannot read file: {_not_regular(info.st_mode)}")
        if info.st_size > MAX_FILE_BYTES:
            return Problem(file, 0, 0, f"the file is larger than {MAX_FILE_BYTES // 2**20:,} "
                           "MiB, the most one configuration file may hold; split it into "
                           "several files")
        with open(file, "rb") as handle:
            return handle.read()
    except OSError as error:
        return Problem(file, 0, 0, f"cannot read file: {error.strerror or error}")


def read_text(file: str) -> str | Problem:
    """The file's text, without a leading byte order mark; or why it cannot be had."""
    data = _read_bytes(file)
    if isinstance(data, Problem):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        for mark, encoding in _OTHER_ENCODINGS:
            if data.startswith(mark):
                return Problem(file, 1, 1, f"not UTF-8: the file is {encoding} (it starts "
                               f"with a {encoding} byte order mark); save it as UTF-8")
        line, column = _position_of_byte(data, error.start)
        return Problem(
            file,
            line,
            column,
            f"not UTF-8: byte 0x{data[error.start]:02x} cannot start or continue a character; "
            "save the file as UTF-8",
        )
    return text.removeprefix("\ufeff")
