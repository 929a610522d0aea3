"""The command line: each command parses options, calls one core function, renders, exits.

    group       the `reconciler` group and `main`: where errors become output
    options     options and helpers shared by the commands
    planning    validate, plan, show
    state_cmds  state list | show | rm | unlock
    apply_cmd   apply (with progress: a bar on a terminal, periodic lines otherwise)
"""

from __future__ import annotations

from reconciler.cli import apply_cmd, planning, state_cmds
from reconciler.cli.group import cli, main

__all__ = ["apply_cmd", "cli", "main", "planning", "state_cmds"]
