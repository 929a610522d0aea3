"""The settings of one run: one object, made once, filled by the options that configure it.

`ReconcilerGroup.main` makes the `Settings` of a run and hands it to click as the context
object; an option that configures the run (`--no-color`, `--backend`, `--encryption-key`,
`--base-url`, ..., given before or after the command name, or through its environment
variable) writes its value into it from its callback, and a command that needs the settings
asks for them with `@pass_settings`. Errors become output (`cli.group`) as these settings say:
`--debug` adds the traceback, `--show-values` unmasks a configuration problem's values.

The workspace/version pair of the environment (FYNO_WSID, FYNO_VERSION) is kept here too:
it is the pair of the files that state none, while `--workspace`/`--version` given on the
command line choose among the pairs the files declare (`cli.pairs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from reconciler.encryption import Encryption


@dataclass
class Settings:
    """What configures this run, whichever command it runs."""

    no_color: bool = False
    debug: bool = False
    show_values: bool = False  # read where errors become output: problems quote values
    backend: str | None = None  # the PostgreSQL backend's URL; None: the file backend
    lock_timeout: float = 0.0  # seconds to wait for a state lock
    encryption_key: str | None = None  # where the key is: env:NAME, file:PATH, passphrase:NAME
    encryption_fallback: str | None = None
    encryption_method: str | None = None
    base_url: str | None = None  # the API's; None: the default (`reconciler.api`)
    actor: str | None = None  # who runs it, for the ledger; None: the CI's actor, else user@host
    workspace: str | None = None  # FYNO_WSID: the workspace of files that state none
    version: str | None = None  # FYNO_VERSION: the version of files that state none
    _encryption: Encryption | None = field(default=None, repr=False, compare=False)

    def encryption(self) -> Encryption:
        """This run's encryption, built on first use from the encryption settings."""
        if self._encryption is None:
            self._encryption = Encryption.configure(
                self.encryption_key, self.encryption_fallback, self.encryption_method)
        return self._encryption

    def audit_environment(self) -> dict[str, str]:
        """The environment as the audit context reads it (`AuditContext.current`), with this
        run's actor in place of RECONCILER_ACTOR, which `--actor` may have been given
        instead of: who ran it is still decided in one place, `resolve_actor`."""
        return {**os.environ, "RECONCILER_ACTOR": self.actor or ""}


pass_settings = click.make_pass_decorator(Settings, ensure=True)
"""Hand a command this run's `Settings` as its first argument."""


def setting(name: str, *, keep_true: bool = False
            ) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """An option's callback that puts its value, when it has one, into field `name` of the
    run's settings and passes the value on; an empty text is none, as an empty variable is.
    `keep_true`: a flag, which a later `False` (the same flag not given after the command
    name) does not undo."""
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None and value != "" and not (keep_true and value is False):
            setattr(ctx.ensure_object(Settings), name, value)
        return value
    return callback
