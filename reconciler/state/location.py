"""Where the default state directory is, whatever the current directory.

The rule (the README's "Where the state lives"):

1. `--state FILE` or `--backend URL`, when given, say it; this module is not asked.
2. Otherwise the state directory is `state/` in the configuration's root: starting in the
   configuration's directory (a directory given as a path, or the directory of a file given)
   and going up, the first directory that holds a `state/` directory, never above the top of
   the git repository the configuration is in.
3. When none does, the top of that git repository; outside git, the current directory (so a
   repository's first run creates `state/` at its top, wherever it was started from).

Commands that read no configuration (`state`, `audit`) start from the current directory.
A run that would start a new, empty state while a state file of the same workspace and
version exists elsewhere in the tree is told so (`states_elsewhere`): a plan against an
empty state would add everything, or delete nothing it should.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

STATE_DIR: Final = "state"
# What the search for states elsewhere never enters: version control, environments, caches.
_SKIPPED: Final = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__",
                             ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox"})
_MAX_DEPTH: Final = 6
_MAX_DIRECTORIES: Final = 5_000  # a bound on the search, whatever the tree


def state_root(start: Path, cwd: Path | None = None) -> Path:
    """The directory whose `state/` holds the default state of a configuration at `start`
    (a directory), by the rule above."""
    cwd = (cwd or Path.cwd()).absolute()
    here = (start if start.is_absolute() else cwd / start).resolve()
    top = git_top(here)
    # Outside git the search never goes above the current directory: a `state/` found in
    # /tmp or a home directory would be nobody's.
    limit = top if top is not None else (cwd if _within(here, cwd) else here)
    for directory in (here, *here.parents):
        if _is(directory / STATE_DIR, stat.S_ISDIR):
            return directory
        if directory == limit:
            break
    return top if top is not None else cwd


def default_state_dir(start: Path) -> Path:
    """The `state/` directory of a configuration at `start` (or, for the commands that read
    none, of the current directory), relative to the current directory as people name it."""
    return Path(os.path.relpath(state_root(start) / STATE_DIR))


def config_start(paths: tuple[Path, ...] | list[Path]) -> Path:
    """The directory the search starts from: the first path if it is a directory, else its
    directory; the current directory when there are no paths."""
    if not paths:
        return Path.cwd()
    first = paths[0]
    return first if first.is_dir() else (first.parent if str(first.parent) else Path("."))


def git_top(directory: Path) -> Path | None:
    """The top of the git work tree holding `directory` (a `.git` directory or file, as in
    a worktree or submodule), or None outside git."""
    for candidate in (directory, *directory.parents):
        if _is(candidate / ".git", lambda _mode: True):
            return candidate
    return None


def states_elsewhere(start: Path, root: Path, name: str, chosen: Path) -> list[Path]:
    """State files called `name` other than `chosen`: in a `state/` directory under the top
    of the git repository holding `start` (else under `root`), at most 6 levels deep and
    5,000 directories searched, skipping hidden directories and environments; and in the
    `state/` of each directory above `start`."""
    chosen = chosen.resolve()
    here = start.resolve()
    base = git_top(here) or root.resolve()
    found: list[Path] = []
    candidates = [directory / STATE_DIR / name for directory in _directories(base)]
    candidates += [directory / STATE_DIR / name for directory in (here, *here.parents)
                   if directory != base and base not in directory.parents]
    for candidate in candidates:
        if (_is(candidate, stat.S_ISREG) and candidate.resolve() != chosen
                and candidate not in found):
            found.append(candidate)
    return found


def _directories(root: Path) -> Iterator[Path]:
    seen = 0
    stack = [(root, 0)]
    while stack and seen < _MAX_DIRECTORIES:
        directory, depth = stack.pop()
        seen += 1
        yield directory
        if depth >= _MAX_DEPTH:
            continue
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name, reverse=True)
        except OSError:
            continue
        stack.extend((Path(entry.path), depth + 1) for entry in entries
                     if entry.is_dir(follow_symlinks=False) and entry.name not in _SKIPPED
                     and not entry.name.startswith(".") and entry.name != STATE_DIR)


def _is(path: Path, kind: Callable[[int], bool]) -> bool:
    """Whether `path` exists and its mode is of `kind`; a directory that cannot be searched
    (no permission) hides what it holds rather than stopping the run."""
    try:
        return kind(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def _within(directory: Path, cwd: Path) -> bool:
    return directory == cwd or cwd in directory.parents
