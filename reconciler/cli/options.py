"""Options and helpers shared by the commands: defined once, used everywhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.cli.settings import Settings, setting
from reconciler.render.formats import FORMATS, OutputFormat

if TYPE_CHECKING:  # imported where used: `show` needs neither the ledger nor the state
    from reconciler.audit import AuditContext, Fact
    from reconciler.state import State, StateBackend

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CHANGES = 2


def common_options(function: F) -> F:
    """`--no-color` and `--debug`, accepted before or after the command name: either place
    sets the run's `Settings`."""
    function = click.option("--no-color", is_flag=True, expose_value=False,
                            callback=setting("no_color", keep_true=True),
                            help="Never color the output (also: NO_COLOR).")(function)
    return click.option("--debug", is_flag=True, expose_value=False,
                        callback=setting("debug", keep_true=True),
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
_RUN_OPTIONS = (
    ("--actor", "RECONCILER_ACTOR", "NAME",
     "Who runs this, as the audit ledger records it (default: the CI's actor variable, "
     "else user@host)."),
)
_TYPES: dict[str, click.ParamType[Any]] = {
    "--encryption-method": click.Choice(["aes-gcm", "chacha20-poly1305"]),
    "--lock-timeout": click.FloatRange(0, 86400),
}


def group_options(function: F) -> F:
    """The settings of where and how state is kept (backend, lock, encryption) and who runs
    it, given before the command name or in the environment."""
    options = (*_STORE_OPTIONS, *_ENCRYPTION_OPTIONS, *_RUN_OPTIONS)
    for flag, variable, metavar, text in reversed(options):
        function = click.option(flag, envvar=variable, show_envvar=True, metavar=metavar,
                                expose_value=False, help=text, type=_TYPES.get(flag),
                                callback=setting(flag[2:].replace("-", "_")))(function)
    return function


def open_store(settings: Settings, state_path: Path | None, workspace: str,
               version: str) -> StateBackend:
    """The state of a workspace as this run's settings say: `--backend`, else `--state`
    or the default file; with `--lock-timeout` and the encryption key."""
    from reconciler.core import open_state

    return open_state(state_path, workspace, version, settings.encryption(), settings.backend,
                      settings.lock_timeout)


def paths_argument(function: F) -> F:
    path = click.Path(path_type=Path)
    return click.argument("paths", nargs=-1, required=True, type=path)(function)


def state_option(function: F) -> F:
    return click.option(
        "--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
        help="State file (default: state/<workspace>-<version>.json).",
    )(function)


def format_option(*choices: str) -> Callable[[F], F]:
    """`--format`, one of `choices`, the first the default: for outputs of their own kind
    (apply's events, a state's profile, the ledger)."""
    def decorate(function: F) -> F:
        return click.option("--format", "fmt", type=click.Choice(choices), default=choices[0],
                            show_default=True, help="Output format.")(function)
    return decorate


def output_format_option(function: F) -> F:
    """`--format` of plans and drift reports: the formats of `render.formats`, handed to the
    command as the `OutputFormat` named."""
    def chosen(_ctx: click.Context, _param: click.Parameter, name: str) -> OutputFormat:
        return FORMATS[name]
    return click.option("--format", "fmt", type=click.Choice(list(FORMATS)),
                        default=next(iter(FORMATS)), show_default=True, callback=chosen,
                        help="Output format.")(function)


def show_values_option(function: F) -> F:
    """`--show-values`; the run's settings hear of it too, for the values of its errors."""
    return click.option("--show-values", is_flag=True,
                        callback=setting("show_values", keep_true=True),
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


def use_color(settings: Settings) -> bool:
    """Color on a terminal, unless `--no-color` or NO_COLOR says otherwise."""
    return not settings.no_color and "NO_COLOR" not in os.environ and is_terminal()


def audit_context(settings: Settings, *, config_dir: Path | None, plan_id: str,
                  workspace: str, version: str, forced: bool = False) -> AuditContext:
    """What the ledger's records of this run share: its actor (`--actor`), commit, plan."""
    from reconciler.audit import AuditContext

    return AuditContext.current(config_dir=config_dir, plan_id=plan_id, workspace=workspace,
                                version=version, forced=forced,
                                env=settings.audit_environment())


def record(settings: Settings, backend: StateBackend, workspace: str, version: str,
           facts: Sequence[Fact], config_dir: Path | None = None, plan_id: str = "") -> None:
    """Put `facts` (changes to what is managed made without an API call) in the ledger of
    `backend`."""
    from reconciler.audit import record_facts

    if not facts:
        return
    context = audit_context(settings, config_dir=config_dir, plan_id=plan_id,
                            workspace=workspace, version=version)
    record_facts(backend.ledger(), context, facts)


def record_lost(settings: Settings, backend: StateBackend, state: State,
                config_dir: Path | None = None) -> None:
    """Before a command settles the requests `state` holds in doubt (a read, `state rm`),
    put in the ledger those it lacks: their process died before recording them."""
    from reconciler.audit import record_lost_requests

    if not state.doubts:
        return
    context = audit_context(settings, config_dir=config_dir, plan_id="",
                            workspace=state.workspace, version=state.version)
    with backend.ledger(durable=True) as ledger:
        ledger.prepare((state.workspace, state.version, distinct_id)
                       for distinct_id in sorted(state.doubts))
        record_lost_requests(state, ledger, context)
