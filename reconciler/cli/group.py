"""The command group, and the one place where errors become output and exit codes.

`--debug` adds the traceback; anything unexpected becomes one line, never a bare traceback.
A message may embed a distinct_id, a file name or a server's `_message`: it is escaped with
`printable` here, so no terminal control character reaches stderr. An error (and each problem
of a ConfigError) is one line, so an embedded newline is escaped too and cannot forge a line;
click's usage errors keep the line breaks click puts between usage, hint and error.
"""

from __future__ import annotations

import importlib
import io
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Final, NoReturn

import click

from reconciler import __version__, heap, termination
from reconciler.cli import streams
from reconciler.cli.options import common_options, group_options
from reconciler.cli.settings import Settings
from reconciler.errors import ConfigError, Interrupted, ReconcilerError, bug_location
from reconciler.mask import mask_text
from reconciler.render.common import printable

# The modules that define each command (and add subcommands to it), imported when the
# command is run or listed: `plan` then never imports `fmt`'s round-trip YAML, the sandbox's
# HTTP server or the commands it does not run, a tenth of a second of every start.
COMMAND_MODULES: Final[dict[str, tuple[str, ...]]] = {
    "apply": ("apply_cmd",),
    "audit": ("audit_cmds", "privacy_cmds"),
    "backend": ("backend_cmd",),
    "doctor": ("doctor_cmd",),
    "export": ("export_cmd",),
    "fmt": ("fmt_cmd",),
    "import": ("refresh_cmds",),
    "plan": ("planning",),
    "refresh": ("refresh_cmds",),
    "sandbox": ("sandbox_cmd",),
    "show": ("show_cmd",),
    "state": ("state_cmds", "privacy_cmds", "migrate_cmd"),
    "validate": ("planning",),
}


class ReconcilerGroup(click.Group):
    """The group whose `main` is the one place where errors become output and exit codes,
    and whose commands are imported when they are used (`COMMAND_MODULES`).

    `CliRunner` calls `main` too, so tests see exactly what users see.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES.keys() | self.commands.keys())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in COMMAND_MODULES.get(cmd_name, ()):
            importlib.import_module(f"reconciler.cli.{module}")  # registers its commands
        return super().get_command(ctx, cmd_name)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        # The run's settings, filled by the options as click parses them; read here after
        # the run, since the context is gone by then.
        settings: Settings = extra.setdefault("obj", Settings())
        streams.reset()
        try:
            # Without standalone mode, click returns the code of `ctx.exit(code)` instead.
            code = super().main(args=argv, prog_name=prog_name or "reconciler",
                                standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _fail(Interrupted("interrupted"), settings)
        except click.ClickException as error:
            # Usage errors exit 1, never 2: 2 means "changes pending" under --detailed-exitcode.
            shown = io.StringIO()  # click writes plain text to a buffer: no styles to keep
            error.show(file=shown)
            _say(shown.getvalue(), keep="\n")
            sys.exit(1)
        except ReconcilerError as error:
            _fail(error, settings)
        except Exception as error:  # the last line of defence: never a bare traceback
            if settings.debug:
                traceback.print_exc()
            if isinstance(error, OSError) and error.strerror:
                # The machine's, not a bug: a full disk, a permission. The system's words
                # and the file name say what to fix.
                where = f": {error.filename}" if error.filename else ""
                _say(f"Error: {error.strerror}{where} ({bug_location(error)}; --debug shows "
                     "the traceback)")
            else:
                _say(f"Error: internal error: {bug_location(error)}; re-run with --debug for "
                     "the traceback, and please report it")
            sys.exit(1)
        lost = streams.closed()
        if lost:
            # Said on standard error, if its reader is still there; the exit code tells CI.
            _say(f"Error: the reader of {' and '.join(lost)} went away before the command "
                 "ended (broken pipe); the command ran to its end unseen, and recorded what it "
                 "did as usual")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


_ENVIRONMENT = """\b
Environment:
  FYNO_API_KEY   the API key, needed by every call; from the environment
                 only, never an option: a command line is seen by every
                 process and kept in shell history
  FYNO_WSID      as --workspace; the workspace of files that state none
  FYNO_VERSION   as --version; the version of files that state none
  FYNO_BASE_URL  as --base-url (default https://api.fyno.io/v1)
  RECONCILER_*   as the options above; RECONCILER_TIMEOUT: seconds an
                 answer may take (60), RECONCILER_RETRY_BASE: seconds
                 before the first retry (0.5)
  NO_COLOR       as --no-color
  HTTPS_PROXY    the proxy to the API, unless NO_PROXY names its host
"""


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_ENVIRONMENT)
@click.version_option(__version__, prog_name="reconciler")
@common_options
@group_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Declare the channel data of Fyno profiles in YAML; plan and apply the changes.

    \b
    Example:
      reconciler validate profiles/
      reconciler plan profiles/ --out plan.json
    """
    ctx.ensure_object(Settings)  # made by `main`; made here when click is called otherwise


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: run the group, which turns every error into output and an exit code."""
    heap.ending_with_command()
    termination.handle_sigterm()  # a cancelled CI job stops as on Ctrl-C
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="reconciler")
    raise AssertionError("unreachable: ReconcilerGroup.main always exits")


def _fail(error: ReconcilerError, settings: Settings) -> NoReturn:
    if settings.debug:
        traceback.print_exc()
    if isinstance(error, ConfigError):
        # Problems are posted into pull requests by CI: their values are masked too.
        for problem in error.problems:
            _say(str(problem) if settings.show_values
                 else mask_text(str(problem), problem.secrets))
    _say(f"Error: {error}")
    sys.exit(error.exit_code)


def _say(message: str, *, keep: str = "") -> None:
    """`message` on stderr, every control character escaped except those in `keep`."""
    streams.echo(printable(message.rstrip("\n"), keep=keep), err=True)
