"""Options and helpers shared by the commands: defined once, used everywhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.audit import (
    AuditContext,
    Fact,
    record_facts,
    record_lost_requests,
)
from reconciler.core import open_state
from reconciler.encryption import Encryption
from reconciler.state import State, StateBackend

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHANGES = 2


def _remember(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta[key] = True  # ctx.meta is shared by the group and its commands
    return callback


def common_options(function: F) -> F:
    """`--no-color` and `--debug`, accepted before or after the command name."""
    function = click.option("--no-color", is_flag=True, expose_value=False,
                            callback=_remember("no_color"),
                            help="Never color the output (also: NO_COLOR).")(function)
    # `--debug` is read off the raw arguments by ReconcilerGroup.main, which needs it first.
    return click.option("--debug", is_flag=True, expose_value=False,
                        help="Show the traceback of an error.")(function)


_ENCRYPTION_OPTIONS = (
    ("--encryption-key", "RECONCILER_ENCRYPTION_KEY", "PROVIDER",
     "Encrypt state, journal, saved plans and the ledger's values with this key: env:NAME, "
     "file:PATH or passphrase:NAME (where the secret is, never the secret)."),
    ("--encryption-fallback", "RECONCILER_ENCRYPTION_FALLBACK", "PROVIDERS",
     "Keys that only read (comma-separated): the old key while rotating."),
    ("--encryption-method", "RECONCILER_ENCRYPTION_METHOD", "METHOD",
     "aes-gcm (default) or chacha20-poly1305."),
)


_STORE_OPTIONS = (
    ("--backend", "RECONCILER_BACKEND", "URL",
     "Keep state, lock and ledger in PostgreSQL (postgresql://user@host/db; the password "
     "from PGPASSWORD or ~/.pgpass) instead of files."),
    ("--lock-timeout", "RECONCILER_LOCK_TIMEOUT", "SECONDS",
     "Wait up to this long for the state lock instead of refusing at once."),
)
_TYPES: dict[str, click.ParamType[Any]] = {
    "--encryption-method": click.Choice(["aes-gcm", "chacha20-poly1305"]),
    "--lock-timeout": click.FloatRange(0, 86400),
}


def encryption_options(function: F) -> F:
    """The settings of where and how state is kept (backend, lock, encryption), given
    before the command name or in the environment."""
    for flag, variable, metavar, text in reversed((*_STORE_OPTIONS, *_ENCRYPTION_OPTIONS)):
        function = click.option(flag, envvar=variable, show_envvar=True, metavar=metavar,
                                expose_value=False, callback=_setting(flag), help=text,
                                type=_TYPES.get(flag))(function)
    return function


def backend_url() -> str | None:
    """The PostgreSQL backend's URL, if one is given; None: the file backend."""
    value = click.get_current_context().meta.get("--backend")
    return str(value) if value else None


def lock_timeout() -> float:
    return float(click.get_current_context().meta.get("--lock-timeout") or 0.0)


def open_store(state_path: Path | None, workspace: str, version: str) -> StateBackend:
    """The state of a workspace as this run's settings say: `--backend`, else `--state`
    or the default file; with `--lock-timeout` and the encryption key."""
    return open_state(state_path, workspace, version, encryption(), backend_url(),
                      lock_timeout())


def _setting(flag: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.meta[flag] = value
    return callback


def encryption() -> Encryption:
    """This run's encryption, built once from `encryption_options`."""
    meta = click.get_current_context().meta
    if "encryption" not in meta:
        meta["encryption"] = Encryption.configure(
            *(meta.get(flag) for flag, *_ in _ENCRYPTION_OPTIONS))
    built: Encryption = meta["encryption"]
    return built


def paths_argument(function: F) -> F:
    path = click.Path(path_type=Path)
    return click.argument("paths", nargs=-1, required=True, type=path)(function)


def state_option(function: F) -> F:
    return click.option(
        "--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
        help="State file (default: state/<workspace>-<version>.json).",
    )(function)


def format_option(*choices: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return click.option("--format", "fmt", type=click.Choice(choices), default=choices[0],
                            show_default=True, help="Output format.")(function)
    return decorate


def show_values_option(function: F) -> F:
    return click.option("--show-values", is_flag=True,
                        help="Show emails, phone numbers and tokens unmasked.")(function)


def _a_number(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if value != value:  # NaN passes every range check by failing every comparison
        raise click.BadParameter("must be a number from 0 to 100, not nan", param=param)
    return value


def safety_options(function: F) -> F:
    function = click.option(
        "--force", is_flag=True, help="Allow a plan that deletes more than --max-delete-percent.",
    )(function)
    function = click.option(
        "--max-delete-percent", type=click.FloatRange(0, 100), default=30.0, show_default=True,
        callback=_a_number,
        help="Refuse plans deleting more than this share of recorded entries (state of 10+).",
    )(function)
    return click.option("--target", "targets", multiple=True, metavar="ID",
                        help="Plan only this profile (repeatable).")(function)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def use_color(ctx: click.Context) -> bool:
    return not ctx.meta.get("no_color") and "NO_COLOR" not in os.environ and is_terminal()


def record(backend: StateBackend, workspace: str, version: str, facts: Sequence[Fact],
           config_dir: Path | None = None, plan_id: str = "") -> None:
    """Put `facts` (changes to what is managed made without an API call) in the ledger of
    `backend`."""
    if not facts:
        return
    context = AuditContext.current(config_dir=config_dir, plan_id=plan_id,
                                   workspace=workspace, version=version, forced=False)
    record_facts(backend.ledger(), context, facts)


def record_lost(backend: StateBackend, state: State, config_dir: Path | None = None) -> None:
    """Before a command settles the requests `state` holds in doubt (a read, `state rm`),
    put in the ledger those it lacks: their process died before recording them."""
    if not state.doubts:
        return
    context = AuditContext.current(config_dir=config_dir, plan_id="",
                                   workspace=state.workspace, version=state.version,
                                   forced=False)
    with backend.ledger(durable=True) as ledger:
        ledger.prepare((state.workspace, state.version, distinct_id)
                       for distinct_id in sorted(state.doubts))
        record_lost_requests(state, ledger, context)
