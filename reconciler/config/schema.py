"""Validation of a document against `schemas/profiles.schema.json`, the schema editors use.

The semantic checks (`checks.py`) are written to catch everything the schema does, with
clearer messages; the schema runs as well so that the file editors validate against can
never accept what the loader rejects, or the reverse, without a test noticing. A schema
error on the same branch of the document as a custom finding is dropped in its favour.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema_rs

from reconciler.config.findings import Finding, YamlPath
from reconciler.config.limits import shown

_MESSAGE_LENGTH = 200


@functools.cache
def _validator() -> Any:
    text = resources.files("reconciler").joinpath("schemas/profiles.schema.json").read_text()
    return jsonschema_rs.validator_for(json.loads(text))


def is_valid(data: Any) -> bool:
    """Whether `data` satisfies the schema; False also when it is not JSON-shaped data."""
    try:
        return bool(_validator().is_valid(data))
    except (ValueError, TypeError, OverflowError):
        return False


_Renumbered = dict[YamlPath, list[int]]
"""For each list that lost items (by its path in the document): the old index of each item."""


def _prune(data: Any, paths: set[YamlPath], at: YamlPath, renumbered: _Renumbered) -> Any:
    """`data` (found at `at`) without the nodes at `paths`, copying only what leads to them.

    Custom findings already cover those nodes, and they may be anything (an alias repeated
    a million times, keys that are not text, huge numbers) that the schema should not have
    to walk. They are left out rather than replaced: a placeholder would make one schema
    error per covered node, each to be dropped, which costs seconds and gigabytes when a
    file has 100,000 problems. A list that loses items is recorded in `renumbered`.
    """
    heads: dict[str | int, set[YamlPath]] = {}
    for path in paths:
        heads.setdefault(path[0], set()).add(path[1:])
    if isinstance(data, dict):
        copy = dict(data)
        for key, rest in heads.items():
            if key in copy:
                if () in rest:
                    del copy[key]
                else:
                    copy[key] = _prune(copy[key], rest, (*at, key), renumbered)
        return copy
    if isinstance(data, list):
        items, kept = [], []
        for index, item in enumerate(data):
            below = heads.get(index)
            if below is None:
                items.append(item)
            elif () in below:
                continue
            else:
                items.append(_prune(item, below, (*at, index), renumbered))
            kept.append(index)
        if len(kept) < len(data):
            renumbered[at] = kept
        return items
    return data


def _original(path: YamlPath, renumbered: _Renumbered) -> YamlPath:
    """A path in pruned data as a path in the document."""
    original: YamlPath = ()
    for part in path:
        old = renumbered.get(original)
        if old is not None and isinstance(part, int) and 0 <= part < len(old):
            part = old[part]
        original = (*original, part)
    return original


def _errors(data: Any) -> list[tuple[YamlPath, str, bool, bool]]:
    """(path, message, at a key, is a oneOf/anyOf summary) for each schema error.

    An "additional properties" error is reported by JSON Schema at the object; it is split
    here into one error per unexpected key, at that key, as the checks report it. A
    "required" error is put at the missing key, so that a custom finding there covers it.
    """
    errors = []
    try:
        found = list(_validator().iter_errors(data))
    except (ValueError, TypeError, OverflowError, RecursionError) as failure:
        # Data the validator cannot take; the checks, which run first, report what it holds.
        return [((), f"cannot be checked against the schema: {failure}", False, False)]
    for error in found:
        path = tuple(error.instance_path)
        kind = type(error.kind).__name__
        if kind == "AdditionalProperties":
            for key in error.kind.unexpected:
                errors.append(((*path, key), f"{shown(str(key))} is not allowed here", True,
                               False))
            continue
        message = error.message
        if len(message) > _MESSAGE_LENGTH:  # it quotes the instance, which may be long
            message = message[:_MESSAGE_LENGTH] + "…"
        if kind == "Required":
            errors.append(((*path, str(error.kind.property)), message, True, False))
            continue
        errors.append((path, message, False, kind in ("OneOfNotValid", "AnyOf")))
    return errors


def schema_findings(data: Any, custom: list[Finding]) -> list[Finding]:
    """Schema errors as findings, less those that a custom finding already explains.

    Explained: an error at or under a path the checks reported, and a oneOf/anyOf summary
    ("not valid under any of the schemas") over one: its cause is what the checks reported.
    """
    covered = {finding.path for finding in custom}
    leads = {path[:end] for path in covered for end in range(len(path))}
    renumbered: _Renumbered = {}
    pruned = None if () in covered else _prune(data, covered, (), renumbered)
    findings = []
    for path_in_pruned, message, at_key, summary in _errors(pruned):
        path = _original(path_in_pruned, renumbered)
        if any(path[:end] in covered for end in range(len(path) + 1)):
            continue
        if summary and path in leads:
            continue
        where = "/".join(str(part) for part in path) or "the document"
        findings.append(Finding(path, f"{where}: {message} (schema)", at_key=at_key))
    return findings
