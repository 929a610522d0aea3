"""Which workspace/version pair each configuration file belongs to, and choosing pairs.

Files under the given paths may declare several workspace/version pairs; each pair has its
own state, lock and ledger. A file's pair is resolved in this order:

    workspace   the file's workspace:; else FYNO_WSID; else the one workspace that the
                other files state; none stated anywhere, or several: a problem
    version     the file's version:; else FYNO_VERSION; else the one version that the files
                of its workspace state; else live; both live and test: a problem

FYNO_WSID and FYNO_VERSION name the pair of the run: a file stating another value is a
problem, never a second pair, since a silent choice would act on a pair nobody asked for.

`select_pairs` then keeps the pairs a command was asked for, by workspace and version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from reconciler.config.checks import VERSIONS
from reconciler.config.findings import Finding
from reconciler.config.limits import plain, shown, workspace_problem
from reconciler.errors import Problem, UsageError

if TYPE_CHECKING:
    from reconciler.config.loader import Config

Pair: TypeAlias = tuple[str, str]
"""(workspace, version): what names a state, its lock and its ledger."""

_LISTED: Final = 6
"""Values a message lists before it says how many more there are."""


@dataclass(frozen=True, slots=True)
class Statement:
    """What one readable file states about its pair.

    `workspace_read` and `version_read` are false when the file's own value is wrong (or
    the whole document is): that is reported already, and the file may well have meant a
    value, so it is not also said to state none.
    """

    name: str
    workspace: str | None
    version: str | None
    workspace_read: bool = True
    version_read: bool = True


@dataclass(slots=True)
class Resolution:
    """The pair of each statement (None: unresolved, with a problem saying why somewhere)."""

    pairs: list[Pair | None] = field(default_factory=list)
    # Problems at a place in a file (by index of its statement): positioned by the loader.
    findings: list[tuple[int, Finding]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # whole-file and variable problems


def _listed(values: Iterable[str]) -> str:
    items = [plain(value) for value in values]
    if len(items) > _LISTED:
        return ", ".join(items[:_LISTED]) + f" and {len(items) - _LISTED} more"
    return ", ".join(items)


def resolve_pairs(
    statements: Sequence[Statement],
    workspace: str | None,
    version: str | None,
    *,
    complete: bool,
) -> Resolution:
    """The pair of each file, from what the files state and the variables `workspace`
    (FYNO_WSID) and `version` (FYNO_VERSION); `complete` says every file could be read, so
    that a workspace stated nowhere is known to be missing rather than unreadable."""
    result = Resolution()
    # A variable that is set but wrong is reported once; the files' own values are used
    # meanwhile, and no file is also told that it states none.
    workspace_set, version_set = bool(workspace), version is not None
    if workspace and (wrong := workspace_problem(workspace)) is not None:
        result.problems.append(Problem("FYNO_WSID", 0, 0, wrong))
        workspace = None
    if version is not None and version not in VERSIONS:
        result.problems.append(
            Problem("FYNO_VERSION", 0, 0, f"must be live or test, not {version!r}"))
        version = None

    stated = sorted({s.workspace for s in statements if s.workspace is not None})
    workspaces: list[str | None] = []
    for index, statement in enumerate(statements):
        chosen = workspace or statement.workspace
        if workspace and statement.workspace not in (None, workspace):
            assert statement.workspace is not None
            result.findings.append((index, Finding(("workspace",), (
                f"workspace {shown(statement.workspace)} disagrees with {shown(workspace)} "
                "from FYNO_WSID"))))
        elif chosen is None and len(stated) == 1:
            chosen = stated[0]
        elif chosen is None and len(stated) > 1 and statement.workspace_read and not workspace_set:
            result.problems.append(Problem(statement.name, 0, 0, (
                f"states no workspace:, and the other files state several ({_listed(stated)}): "
                "state workspace: in this file")))
        workspaces.append(chosen)
    if (not stated and not workspace_set and complete and statements
            and all(s.workspace_read for s in statements)):
        result.problems.append(Problem(statements[0].name, 0, 0, (
            "no workspace: state workspace: in a file, or set FYNO_WSID")))

    versions: dict[str, set[str]] = {}  # workspace -> the versions its files state
    for statement, chosen_workspace in zip(statements, workspaces, strict=True):
        if chosen_workspace is not None and statement.version is not None:
            versions.setdefault(chosen_workspace, set()).add(statement.version)
    for index, (statement, chosen_workspace) in enumerate(zip(statements, workspaces,
                                                              strict=True)):
        if chosen_workspace is None:
            result.pairs.append(None)
            continue
        chosen = version or statement.version
        if version and statement.version not in (None, version):
            assert statement.version is not None
            result.findings.append((index, Finding(("version",), (
                f"version {shown(statement.version)} disagrees with {shown(version)} "
                "from FYNO_VERSION"))))
        elif chosen is None:
            of_workspace = sorted(versions.get(chosen_workspace, ()))
            if len(of_workspace) <= 1:
                chosen = of_workspace[0] if of_workspace else "live"
            elif statement.version_read and not version_set:
                result.problems.append(Problem(statement.name, 0, 0, (
                    f"states no version:, and the other files of workspace "
                    f"{plain(chosen_workspace)} state both {' and '.join(of_workspace)}: "
                    "state version: in this file")))
        result.pairs.append((chosen_workspace, chosen) if chosen is not None else None)
    return result


def pair_label(config: Config) -> str:
    """The pair of `config` as messages show it: `FYXXXXXXXX (live)`."""
    return f"{plain(config.workspace)} ({config.version})"


def select_pairs(
    configs: Sequence[Config], workspace: str | None, version: str | None
) -> tuple[Config, ...]:
    """The configurations of the pairs a command was asked for (None, or empty: any).

    Raises UsageError, listing the pairs the files declare, when none matches: a filter
    that selects nothing is a mistake, and running on nothing would hide it.
    """
    chosen = tuple(
        config for config in configs
        if (not workspace or config.workspace == workspace)
        and (not version or config.version == version)
    )
    if not chosen and (workspace or version):
        asked = " ".join(part for part in (
            f"workspace {plain(workspace)}" if workspace else "",
            f"version {plain(version)}" if version else "") if part)
        declared = ", ".join(pair_label(config) for config in configs) or "no pair"
        raise UsageError(
            f"no configuration file declares {asked}; the files declare: {declared}")
    return chosen
