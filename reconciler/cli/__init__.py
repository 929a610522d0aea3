"""The command line: each command parses options, calls one core function, renders, exits.

    group       the `reconciler` group and `main`: where errors become output
    settings    the run's settings: one object, filled by the options (`pass_settings`)
    options     options and helpers shared by the commands
    pairs       the workspace/version pairs of a run (`--workspace`, `--version`)
    remote      what the commands that call the API share (`--base-url`, the client)
    planning    validate, plan
    show_cmd    show
    state_cmds  state list | show | rm | unlock
    apply_cmd   apply (with progress: a bar on a terminal, periodic lines otherwise)
    apply_output what apply tells: prose or JSON events, and each pair's summary
    refresh_cmds import, refresh (and --refresh for plan and apply)
    export_cmd  export: configuration YAML from what the server holds
    fmt_cmd     fmt: the canonical layout of configuration YAML, comments kept
    audit_cmds  audit, audit verify
    privacy_cmds audit erase, state encrypt, state decrypt
    stored      the state a state command works on, and erasing from it
    doctor_cmd  doctor: a read-only check of the set-up
    backend_cmd backend migrate: the PostgreSQL backend's tables
    migrate_cmd state migrate --to: a state and its ledger to another backend
    sandbox_cmd sandbox: the local stand-in for the API
"""

from __future__ import annotations

from reconciler.cli.group import COMMAND_MODULES, cli, main

# The command modules are imported when their command runs (`group.COMMAND_MODULES`).
__all__ = ["COMMAND_MODULES", "cli", "main"]
