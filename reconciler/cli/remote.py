"""What the commands that talk to the API share: the key check, the client, the run options
(`--base-url` among them), the one pair a command without PATHS works on."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from reconciler.answers import ProfileApi
from reconciler.cli.options import F
from reconciler.cli.pairs import describe_pairs, label, load_pairs
from reconciler.cli.progress import Progress
from reconciler.cli.settings import Settings, setting
from reconciler.config import Config
from reconciler.errors import ApiSetupError, UsageError
from reconciler.pacing import RetryPolicy


def require_api_key(env: Mapping[str, str]) -> None:
    """Fail before anything is planned or shown when no key is set, or when a setting the
    API calls need is unusable."""
    if not env.get("FYNO_API_KEY"):
        raise ApiSetupError("FYNO_API_KEY is not set: export the API key of the workspace "
                            "(it is read from the environment only, never from a file)")
    retry_policy(env)
    request_timeout(env)


def base_url_option(function: F) -> F:
    """`--base-url`, the API's URL (FYNO_BASE_URL), kept in the run's settings."""
    return click.option(
        "--base-url", envvar="FYNO_BASE_URL", show_envvar=True, metavar="URL",
        expose_value=False, callback=setting("base_url"),
        # The default spelled out: `reconciler.api` (and httpx) is imported only when used.
        help="The API's URL, ending in /v1 (default: https://api.fyno.io/v1; the "
             "sandbox's URL to try a plan there).")(function)


def run_options(function: F) -> F:
    """`--parallelism`, `--rate` and `--base-url`."""
    function = base_url_option(function)
    function = click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
                            help="At most this many calls per second.")(function)
    return click.option("--parallelism", type=click.IntRange(1, 256), default=10,
                        show_default=True, help="Calls in flight at once.")(function)


def base_url(settings: Settings) -> str:
    """The API's URL this run calls."""
    from reconciler.api import DEFAULT_BASE_URL

    return settings.base_url or DEFAULT_BASE_URL


def client(settings: Settings, env: Mapping[str, str], workspace: str, version: str,
           parallelism: int) -> ProfileApi:
    """The API client of one pair, at this run's base URL with the key of `env`."""
    # Imported here: httpx costs every start-up ~0.1 s, and most commands never call the API.
    from reconciler.api import FynoClient, Timeouts

    total = request_timeout(env)
    return FynoClient(base_url=base_url(settings), api_key=env.get("FYNO_API_KEY", ""),
                      workspace=workspace, version=version, max_connections=parallelism,
                      timeouts=Timeouts(connect=min(10.0, total), total=total), env=env)


def request_timeout(env: Mapping[str, str]) -> float:
    """Seconds one whole answer may take (`RECONCILER_TIMEOUT`)."""
    return seconds_from(env, "RECONCILER_TIMEOUT", 60.0, low=0.1, high=3600.0)


def retry_policy(env: Mapping[str, str]) -> RetryPolicy:
    return RetryPolicy(base=seconds_from(env, "RECONCILER_RETRY_BASE", 0.5, low=0.0, high=60.0))


def seconds_from(env: Mapping[str, str], name: str, default: float, *, low: float,
                 high: float) -> float:
    """A number of seconds from environment variable `name`, checked, or `default`."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails both comparisons
        raise UsageError(f"{name} must be a number of seconds from {low:g} to {high:g}, "
                         f"not {text[:40]!r}")
    return value


def progress(total: int, label: str) -> Progress:
    return Progress(total, terminal=sys.stderr.isatty(), label=label)


def target_workspace(settings: Settings, paths: Sequence[Path], purpose: str,
                     workspace: str | None = None, version: str | None = None
                     ) -> tuple[str, str, Config | None]:
    """(workspace, version, configuration) of a command that works on one pair: from PATHS
    (which must declare one pair, or `--workspace`/`--version` choose one), else from
    `--workspace`/`--version`, given on the command line or as FYNO_WSID and FYNO_VERSION."""
    if paths:
        configs = load_pairs(settings, paths, workspace, version)
        if len(configs) > 1:
            names = ", ".join(label(config.workspace, config.version) for config in configs)
            raise UsageError(f"the configuration declares {describe_pairs(configs)} ({names}); "
                             f"choose the one {purpose} with --workspace and --version")
        return configs[0].workspace, configs[0].version, configs[0]
    chosen = workspace or settings.workspace
    if not chosen:
        raise UsageError(f"set FYNO_WSID (or --workspace), or give the configuration PATHS, "
                         f"to name the workspace {purpose}")
    return chosen, version or settings.version or "live", None
