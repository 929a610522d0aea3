"""Load the desired state: read every file, check it, merge the files of each pair.

Each file goes through one of two paths (see `fast.py` and `precise.py`):

    text ──> load_fast ──(None)──────────────────> parse_precise ──> checks + schema
               │                                        ^                  │
               └──> checks + schema ──(any finding)─────┘                  v
                         │ (clean)                                findings by path
                         v                                                 │
                   the file's data                         locate: line and column

The fast path (yaml_rs, no positions) serves clean files; the precise path (libyaml events)
serves every file that has, or may have, a problem, and is the only source of reported
problems. Each file then gets its workspace/version pair (`pairs.py`), and the files of each
pair are merged into one `Config`: within a pair a distinct_id may be declared once, and the
files agree on `ownership:`. Every problem of every file is collected into one `ConfigError`.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import orjson

from reconciler.beside import Beside, can_fork
from reconciler.config.assume import assumed_text, checked_document, confirms
from reconciler.config.checks import CheckedDocument, check_document
from reconciler.config.fast import load_fast
from reconciler.config.findings import Finding, Marks, YamlPath, YamlProblem, wanted_paths
from reconciler.config.limits import shown
from reconciler.config.locate import locate
from reconciler.config.pairs import Pair, Statement, pair_label, resolve_pairs
from reconciler.config.precise import parse_precise
from reconciler.config.schema import schema_findings
from reconciler.config.sources import expand_paths, read_text
from reconciler.errors import ConfigError, Problem
from reconciler.heap import collector_paused
from reconciler.model import ChannelData
from reconciler.ownership import EVERYTHING_EXCLUSIVE, Mode, Ownership, Policy, merged_modes

T = TypeVar("T")

ASSUME_FROM: Final = 1_000_000
"""Characters of configuration from which its meaning is assumed and confirmed beside this
process (`assume.py`): about 4,000 profiles, which take a second to check; below, the
fork costs more than it saves."""


@dataclass(frozen=True)
class Config:
    """The desired state of one workspace and version, from the configuration files of that
    pair."""

    workspace: str
    version: str  # "live" | "test"
    profiles: dict[str, ChannelData]  # distinct_id -> desired channel data
    files: tuple[str, ...]  # the YAML files read, in order
    ownership: Ownership = EVERYTHING_EXCLUSIVE  # who owns what (`reconciler.ownership`)

    @functools.cached_property
    def digest(self) -> str:
        """"sha256:<hex>" of the meaning, not the text (`config_digest`): computed when first
        read, since a plan printed as text never shows it (0.3 s at 100,000 profiles)."""
        return config_digest(self.workspace, self.version, self.profiles, self.ownership)


@dataclass(slots=True)
class _File:
    """One file's result, and what the merge adds to it."""

    name: str
    text: str
    checked: CheckedDocument | None  # None when the file could not be parsed
    findings: list[Finding] = field(default_factory=list)
    yaml_problems: list[YamlProblem] = field(default_factory=list)
    # Places in this file that problems of other files refer to ("first at ...").
    referenced: set[YamlPath] = field(default_factory=set)
    marks: Marks | None = None


def _load_file(name: str, text: str) -> _File:
    data = load_fast(text)
    if data is not None:
        checked = checked_document(data)
        if checked is not None:
            return _File(name, text, checked)
    document = parse_precise(text)
    if not document.has_document and document.complete:
        problem = YamlProblem(0, 0, "the file is empty; expected a mapping with profiles:")
        return _File(name, text, None, yaml_problems=[problem])
    if not document.complete:
        return _File(name, text, None, yaml_problems=document.problems)
    checked = check_document(document.data, document.sources)
    findings = checked.findings + schema_findings(document.data, checked.findings)
    return _File(name, text, checked, findings, document.problems)


@dataclass(frozen=True, slots=True)
class _Elsewhere:
    """A finding whose message names a place in another file."""

    file: _File
    finding: Finding
    other: _File
    other_path: YamlPath


def _ownership_disagreements(files: list[_File]) -> list[_Elsewhere]:
    """The workspace's `ownership:` may be stated in several files, always the same."""
    first: tuple[_File, dict[str, Mode]] | None = None
    found = []
    for file in files:
        if file.checked is None or file.checked.ownership is None:
            continue
        if first is None:
            first = file, file.checked.ownership
        elif file.checked.ownership != first[1]:
            message = "ownership disagrees with the one stated in another file"
            found.append(_Elsewhere(file, Finding(("ownership",), message), first[0],
                                    ("ownership",)))
            first[0].referenced.add(("ownership",))
    return found


def _duplicate_ids(files: list[_File]) -> list[_Elsewhere]:
    first: dict[str, _File] = {}
    found = []
    for file in files:
        if file.checked is None:
            continue
        for distinct_id in file.checked.profiles:
            earlier = first.setdefault(distinct_id, file)
            if earlier is not file:
                path = ("profiles", distinct_id)
                message = f"distinct_id {shown(distinct_id)} is declared twice"
                found.append(_Elsewhere(file, Finding(path, message, at_key=True), earlier, path))
                earlier.referenced.add(path)
    return found


def _marks(file: _File, elsewhere: list[_Elsewhere]) -> Marks:
    if file.marks is None:
        wanted = wanted_paths(file.findings, file.yaml_problems) | file.referenced
        wanted |= {item.finding.path for item in elsewhere if item.file is file}
        file.marks = locate(file.text, wanted) if wanted and file.checked else Marks()
    return file.marks


def config_digest(workspace: str, version: str, profiles: dict[str, ChannelData],
                  ownership: Ownership = EVERYTHING_EXCLUSIVE) -> str:
    """A digest of what the configuration means: the same for any comments, layout or split."""
    body: dict[str, object] = {
        "workspace": workspace,
        "version": version,
        "profiles": {distinct_id: data.channels for distinct_id, data in profiles.items()},
    }
    if not ownership.is_exclusive:  # today's files keep today's digest
        body["ownership"] = {
            "default": ownership.default.to_json(),
            "profiles": {distinct_id: policy.to_json()
                         for distinct_id, policy in ownership.profiles.items()}}
    # Tokens (named tuples) serialize as [token, integration_id, status] through `tuple`,
    # in C: building each profile's API form first would triple the cost.
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=tuple)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def load_configs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    workspace: str | None = None,
    version: str | None = None,
) -> tuple[Config, ...]:
    """Read and check the configuration at `paths`: one `Config` per workspace/version pair
    that the files declare, sorted by pair; raise ConfigError listing every problem.

    `workspace` and `version` are the fallbacks for files that do not state them (the CLI
    passes FYNO_WSID and FYNO_VERSION), and name the only pair a file may then state: see
    `pairs.py` for how each file's pair is resolved.
    """
    configs, _ = load_configs_then(paths, _nothing, workspace=workspace, version=version)
    return configs


def load_configs_then(
    paths: Sequence[str | os.PathLike[str]],
    meanwhile: Callable[[tuple[Config, ...]], T],
    *,
    workspace: str | None = None,
    version: str | None = None,
    discard: Callable[[T], None] | None = None,
) -> tuple[tuple[Config, ...], T]:
    """`load_configs`, and what `meanwhile(configs)` returns: the caller's next step, run
    while a large configuration's checks finish beside this process (`assume.py`).

    Neither is returned, nor is an error of `meanwhile` raised, before the checks confirm
    the configuration; when they do not, it is loaded again the slow way (which raises its
    problems) and `meanwhile` runs again on what it means. So `meanwhile` must only read,
    compute and prepare (nothing a person or another program sees): it may run twice, and
    its first result may be thrown away, through `discard` (which removes what it prepared).
    """
    return _load(paths, meanwhile, workspace, version, discard or _nothing)


def _nothing(value: object) -> None:
    del value


def _load(paths: Sequence[str | os.PathLike[str]], meanwhile: Callable[[tuple[Config, ...]], T],
          workspace: str | None, version: str | None, discard: Callable[[T], None]
          ) -> tuple[tuple[Config, ...], T]:
    with collector_paused():
        names, unreadable = expand_paths(paths)
        texts: list[tuple[str, str]] = []
        for name in names:
            text = read_text(name)
            if isinstance(text, Problem):
                unreadable.append(text)
            else:
                texts.append((name, text))
        if sum(len(text) for _, text in texts) >= ASSUME_FROM and can_fork():
            outcome = _assumed(texts, lambda files: _merged(
                files, list(unreadable), names, workspace, version, meanwhile), discard)
            if outcome is not None:
                return outcome()
        files = [_load_file(name, text) for name, text in texts]
        return _merged(files, unreadable, names, workspace, version, meanwhile)


def _assumed(texts: list[tuple[str, str]],
             work: Callable[[list[_File]], tuple[tuple[Config, ...], T]],
             discard: Callable[[T], None]) -> Callable[[], tuple[tuple[Config, ...], T]] | None:
    """`work` of the files, each taken for its assumed meaning where it has one
    (`assume.py`), while a process beside this one reads and checks them again; the outcome
    of `work`, to be returned or raised, once those checks confirm every meaning assumed;
    None (what `work` made, discarded) when they do not."""
    with Beside(lambda: [confirms(text) for _, text in texts]) as checks:
        files = []
        assumed: list[int] = []
        for index, (name, text) in enumerate(texts):
            meaning = assumed_text(text)
            if meaning is None:
                files.append(_load_file(name, text))
            else:
                files.append(_File(name, text, meaning))
                assumed.append(index)
        result: tuple[tuple[Config, ...], T] | Exception
        try:
            result = work(files)
        except Exception as error:  # its turn comes once the checks have spoken
            result = error
        try:
            confirmed = checks.result()
        except BaseException:
            _thrown_away(result, discard)
            raise
    if not all(confirmed[index] for index in assumed):
        _thrown_away(result, discard)
        return None

    def outcome() -> tuple[tuple[Config, ...], T]:
        if isinstance(result, Exception):
            raise result
        return result
    return outcome


def _thrown_away(result: tuple[tuple[Config, ...], T] | Exception,
                 discard: Callable[[T], None]) -> None:
    if not isinstance(result, Exception):
        discard(result[1])


def _merged(files: list[_File], problems: list[Problem], names: list[str],
            workspace: str | None, version: str | None,
            meanwhile: Callable[[tuple[Config, ...]], T]) -> tuple[tuple[Config, ...], T]:
    """The configs of the files read, grouped by pair, and `meanwhile` of them; raise
    ConfigError listing every problem."""
    readable = [file for file in files if file.checked is not None]
    resolution = resolve_pairs(
        [_statement(file) for file in readable], workspace, version,
        complete=len(readable) == len(names))
    problems += resolution.problems
    for index, finding in resolution.findings:
        readable[index].findings.append(finding)
    groups: dict[Pair, list[_File]] = {}
    for file, pair in zip(readable, resolution.pairs, strict=True):
        if pair is not None:
            groups.setdefault(pair, []).append(file)
    # A distinct_id or the workspace's ownership belongs to one pair: the same id in
    # two pairs is two profiles, and each pair's files agree on their own modes.
    elsewhere: list[_Elsewhere] = []
    for group in groups.values():
        elsewhere += _duplicate_ids(group) + _ownership_disagreements(group)

    for item in elsewhere:
        other_marks = _marks(item.other, elsewhere)
        line, column = other_marks.locate(item.other_path, at_key=item.finding.at_key)
        message = f"{item.finding.message}; first at {item.other.name}:{line}:{column}"
        marks = _marks(item.file, elsewhere)
        problems.append(marks.problem(item.file.name, Finding(
            item.finding.path, message, item.finding.at_key)))
    for file in files:
        marks = _marks(file, elsewhere)
        problems.extend(marks.problem(file.name, problem) for problem in file.yaml_problems)
        problems.extend(marks.problem(file.name, finding) for finding in file.findings)
    if problems:
        raise ConfigError(problems)
    configs = tuple(_config(pair, groups[pair]) for pair in sorted(groups))
    return configs, meanwhile(configs)


def load_config(
    paths: Sequence[str | os.PathLike[str]],
    *,
    workspace: str | None = None,
    version: str | None = None,
) -> Config:
    """The configuration at `paths`, which must declare one workspace/version pair: for the
    callers that act on one pair (`fmt`, the benchmarks). See `load_configs`."""
    configs = load_configs(paths, workspace=workspace, version=version)
    if len(configs) > 1:
        labels = ", ".join(pair_label(config) for config in configs)
        raise ConfigError([Problem(configs[1].files[0], 0, 0, (
            f"the files declare {len(configs)} workspace/version pairs ({labels}); this reads "
            "one pair: give it the files of one pair only"))])
    return configs[0]


def _statement(file: _File) -> Statement:
    """What a readable file states about its pair, for `resolve_pairs`."""
    assert file.checked is not None
    # A wrong value is already a finding at its path; a wrong document, one at its root.
    paths = {finding.path for finding in file.findings}
    return Statement(file.name, file.checked.workspace, file.checked.version,
                     workspace_read=not paths & {(), ("workspace",)},
                     version_read=not paths & {(), ("version",)})


def _config(pair: Pair, files: list[_File]) -> Config:
    """The `Config` of one pair, from its files (checked: none has a problem)."""
    workspace, version = pair
    profiles: dict[str, ChannelData] = {}
    for file in files:
        assert file.checked is not None
        profiles.update(file.checked.profiles)
    ownership = _ownership(files)
    return Config(
        workspace=workspace,
        version=version,
        profiles=profiles,
        files=tuple(file.name for file in files),
        ownership=ownership,
    )


def _ownership(files: list[_File]) -> Ownership:
    """The workspace's modes (the files that state them agree: checked before) and the
    policies of profiles that set their own modes or list removals."""
    default: dict[str, Mode] = {}
    policies: dict[str, Policy] = {}
    for file in files:
        assert file.checked is not None
        default = file.checked.ownership or default
    for file in files:
        assert file.checked is not None
        for distinct_id, (modes, remove) in file.checked.policies.items():
            policies[distinct_id] = Policy(merged_modes(default, modes), remove)
    return Ownership(Policy(default), policies)
