"""The command group, and the one place where errors become output and exit codes.

`--debug` adds the traceback; anything unexpected becomes one line, never a bare traceback.
A message may embed a distinct_id, a file name or a server's `_message`: it is escaped with
`printable` here, so no terminal control character reaches stderr. An error (and each problem
of a ConfigError) is one line, so an embedded newline is escaped too and cannot forge a line;
click's usage errors keep the line breaks click puts between usage, hint and error.
"""

from __future__ import annotations

import io
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from reconciler import __version__
from reconciler.cli.options import common_options, encryption_options
from reconciler.errors import ConfigError, Interrupted, ReconcilerError
from reconciler.mask import mask_text
from reconciler.render.common import printable


class ReconcilerGroup(click.Group):
    """The group whose `main` is the one place where errors become output and exit codes.

    `CliRunner` calls `main` too, so tests see exactly what users see.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            # Without standalone mode, click returns the code of `ctx.exit(code)` instead.
            code = super().main(args=argv, prog_name=prog_name or "reconciler",
                                standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _fail(Interrupted("interrupted"), debug)
        except click.ClickException as error:
            # Usage errors exit 1, never 2: 2 means "changes pending" under --detailed-exitcode.
            shown = io.StringIO()  # click writes plain text to a buffer: no styles to keep
            error.show(file=shown)
            _say(shown.getvalue(), keep="\n")
            sys.exit(1)
        except ReconcilerError as error:
            _fail(error, debug, show_values="--show-values" in argv)
        except Exception as error:  # the last line of defence: never a bare traceback
            if debug:
                traceback.print_exc()
            _say(f"Error: internal error: {error!r}; re-run with --debug for the traceback, "
                 "and please report it")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@common_options
@encryption_options
def cli() -> None:
    """Declare the channel data of Fyno profiles in YAML; plan and apply the changes.

    \b
    Example:
      reconciler validate profiles/
      reconciler plan profiles/ --out plan.json
    """


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: run the group, which turns every error into output and an exit code."""
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="reconciler")
    raise AssertionError("unreachable: ReconcilerGroup.main always exits")


def _fail(error: ReconcilerError, debug: bool, show_values: bool = False) -> NoReturn:
    if debug:
        traceback.print_exc()
    if isinstance(error, ConfigError):
        # Problems are posted into pull requests by CI: their values are masked too.
        for problem in error.problems:
            _say(str(problem) if show_values else mask_text(str(problem), problem.secrets))
    _say(f"Error: {error}")
    sys.exit(error.exit_code)


def _say(message: str, *, keep: str = "") -> None:
    """`message` on stderr, every control character escaped except those in `keep`."""
    click.echo(printable(message.rstrip("\n"), keep=keep), err=True)
