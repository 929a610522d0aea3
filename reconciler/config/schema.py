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


def _prune(data: Any, paths: set[YamlPath]) -> Any:
    """`data` with the nodes at `paths` replaced by None, copying only what leads to them.

    Custom findings already cover those nodes, and they may be anything (an alias repeated
    a million times, keys that are not text) that the schema should not have to walk.
    """
    if () in paths:
        return None
    heads: dict[str | int, set[YamlPath]] = {}
    for path in paths:
        heads.setdefault(path[0], set()).add(path[1:])
    if isinstance(data, dict):
        copy = dict(data)
        for key, rest in heads.items():
            if key in copy:
                copy[key] = _prune(copy[key], rest)
        return copy
    if isinstance(data, list):
        items = list(data)
        for index, rest in heads.items():
            if isinstance(index, int) and 0 <= index < len(items):
                items[index] = _prune(items[index], rest)
        return items
    return data


def _errors(data: Any) -> list[tuple[YamlPath, str, bool, bool]]:
    """(path, message, at a key, is a oneOf/anyOf summary) for each schema error.

    An "additional properties" error is reported by JSON Schema at the object; it is split
    here into one error per unexpected key, at that key, as the checks report it.
    """
    errors = []
    for error in _validator().iter_errors(data):
        path = tuple(error.instance_path)
        kind = type(error.kind).__name__
        if kind == "AdditionalProperties":
            for key in error.kind.unexpected:
                errors.append(((*path, key), f'"{key}" is not allowed here', True, False))
            continue
        errors.append((path, error.message, False, kind in ("OneOfNotValid", "AnyOf")))
    return errors


def schema_findings(data: Any, custom: list[Finding]) -> list[Finding]:
    """Schema errors as findings, less those that a custom finding already explains.

    Explained: an error at or under a path the checks reported, and a oneOf/anyOf summary
    ("not valid under any of the schemas") over one: its cause is what the checks reported.
    """
    covered = {finding.path for finding in custom}
    leads = {path[:end] for path in covered for end in range(len(path))}
    findings = []
    for path, message, at_key, summary in _errors(_prune(data, covered)):
        if any(path[:end] in covered for end in range(len(path) + 1)):
            continue
        if summary and path in leads:
            continue
        shown = "/".join(str(part) for part in path) or "the document"
        findings.append(Finding(path, f"{shown}: {message} (schema)", at_key=at_key))
    return findings
