"""What the commands that talk to the API share: the key check, the client, the run options."""

from __future__ import annotations

import sys
from collections.abc import Mapping

import click

from reconciler.answers import ProfileApi
from reconciler.cli.options import F
from reconciler.cli.progress import Progress
from reconciler.errors import ApiSetupError
from reconciler.pacing import RetryPolicy


def require_api_key(env: Mapping[str, str]) -> None:
    """Fail before anything is planned or shown when no key is set."""
    if not env.get("FYNO_API_KEY"):
        raise ApiSetupError("FYNO_API_KEY is not set: export the API key of the workspace "
                            "(it is read from the environment only, never from a file)")


def run_options(function: F) -> F:
    """`--parallelism` and `--rate`."""
    function = click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
                            help="At most this many calls per second.")(function)
    return click.option("--parallelism", type=click.IntRange(1, 256), default=10,
                        show_default=True, help="Calls in flight at once.")(function)


def client(env: Mapping[str, str], workspace: str, version: str,
           parallelism: int) -> ProfileApi:
    # Imported here: httpx costs every start-up ~0.1 s, and most commands never call the API.
    from reconciler.api import FynoClient

    return FynoClient.from_env(env, workspace=workspace, version=version,
                               max_connections=parallelism)


def retry_policy(env: Mapping[str, str]) -> RetryPolicy:
    return RetryPolicy(base=float(env.get("RECONCILER_RETRY_BASE", "0.5")))


def progress(total: int, label: str) -> Progress:
    return Progress(total, terminal=sys.stderr.isatty(), label=label)
