"""The desired-state loader: YAML files in, checked `Config`s out, or every problem at once.

    load_configs(paths, workspace=FYNO_WSID, version=FYNO_VERSION) -> (Config, ...)
        one per workspace/version pair the files declare, sorted by pair
    load_configs_then(paths, meanwhile, ...) -> ((Config, ...), meanwhile(configs))
        the same, with the caller's next step run while a large file's checks finish
    load_config(paths, ...) -> Config          when the files must declare one pair
    select_pairs(configs, workspace, version)  the pairs a command was asked for

Modules, in the order a file meets them:
    sources   which files to read (directories recursively), and their UTF-8 text
    fast      yaml_rs without positions, used only when provably equivalent to `precise`
    precise   libyaml events: the authoritative document
    locate    a second pass over the events, for the positions of problems
    scalars   what a plain scalar means (YAML 1.2 core schema) and "quote it" messages
    checks    the semantic checks, shared by both paths, reporting findings by path
    assume    a clean file's meaning built unchecked, for the checks to confirm beside
    limits    the lengths and characters every text keeps; hostile text shown escaped
    schema    the same rules as `schemas/profiles.schema.json`, which editors use
    findings  findings by path, and turning them into positioned Problems
    pairs     which workspace/version pair each file belongs to; choosing pairs
    loader    the two paths per file, then the merge of the files of each pair
"""

from __future__ import annotations

from reconciler.config.loader import (
    Config,
    config_digest,
    load_config,
    load_configs,
    load_configs_then,
)
from reconciler.config.pairs import pair_label, select_pairs

__all__ = ["Config", "config_digest", "load_config", "load_configs", "load_configs_then",
           "pair_label", "select_pairs"]
