"""Problems found in a document by path, before they are tied to a file, line and column.

The semantic checks and the schema run on plain Python data, on both the fast path (which
knows no positions) and the precise path. They report a `Finding` at a `YamlPath`; only
when a file has findings does the precise path look up where those paths are (`Marks`,
from `precise.locate`) and turn each finding into a positioned `Problem`. Problems of the
YAML itself (syntax, tags, duplicate keys) are found while parsing, with their position:
those are `YamlProblem`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from reconciler.errors import Problem

YamlPath: TypeAlias = tuple[str | int, ...]
"""Keys and list indexes from the document root, e.g. ("profiles", "u-1", "push", 0)."""

Mark: TypeAlias = tuple[int, int, int, int]
"""1-based (key line, key column, value line, value column); a list item's key is its value."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at a path of a document."""

    path: YamlPath
    message: str
    at_key: bool = False  # an unknown or misspelt key is best shown at the key itself
    first: YamlPath | None = None  # the earlier place that a "declared twice" refers to
    secrets: tuple[str, ...] = ()  # tokens the message shows: masked when it is printed


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """A problem of the YAML itself, at a known 1-based line and column (0, 0: whole file)."""

    line: int
    column: int
    message: str
    first: YamlPath | None = None  # for a duplicate key: the key it repeats


@dataclass(slots=True)
class Marks:
    """Where keys and values of one document start in its file (only those asked for)."""

    by_path: dict[YamlPath, Mark] = field(default_factory=dict)

    def locate(self, path: YamlPath, *, at_key: bool = False) -> tuple[int, int]:
        """The line and column of `path`, or of its nearest marked ancestor.

        An ancestor stands in for paths that have no mark of their own: the inside of an
        aliased node, or a property that a schema error says is missing.
        """
        for end in range(len(path), -1, -1):
            mark = self.by_path.get(path[:end])
            if mark is not None:
                if at_key and end == len(path):
                    return mark[0], mark[1]
                return mark[2], mark[3]
        return 1, 1

    def problem(self, file: str, finding: Finding | YamlProblem) -> Problem:
        if isinstance(finding, YamlProblem):
            line, column = finding.line, finding.column
            first_at_key = True  # a duplicate key refers to the key it repeats
        else:
            line, column = self.locate(finding.path, at_key=finding.at_key)
            first_at_key = finding.at_key
        message = finding.message
        if finding.first is not None:
            first_line, first_column = self.locate(finding.first, at_key=first_at_key)
            message = f"{message}; first at {file}:{first_line}:{first_column}"
        secrets = () if isinstance(finding, YamlProblem) else finding.secrets
        return Problem(file, line, column, message, secrets)


def wanted_paths(findings: list[Finding], yaml_problems: list[YamlProblem]) -> set[YamlPath]:
    """The paths whose marks are needed to position these problems."""
    wanted: set[YamlPath] = set()
    for finding in findings:
        wanted.add(finding.path)
        if finding.first is not None:
            wanted.add(finding.first)
    for problem in yaml_problems:
        if problem.first is not None:
            wanted.add(problem.first)
    return wanted
