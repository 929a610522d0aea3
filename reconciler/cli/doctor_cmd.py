"""`doctor`: check URL, key, workspace, version and one profile's shape, changing nothing."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click

from reconciler.cli.group import cli
from reconciler.cli.options import common_options, state_option
from reconciler.cli.pairs import Named, load_pairs, one_state_only, open_pair, pair_options
from reconciler.cli.remote import base_url, base_url_option, client, target_workspace
from reconciler.cli.settings import Settings, pass_settings
from reconciler.doctor import run_doctor
from reconciler.errors import ApiSetupError
from reconciler.render.common import printable


@cli.command()
@common_options
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--id", "profile_id", metavar="ID",
              help="Also read this profile and check its shape (default: the first one the "
                   "state records).")
@pair_options
@state_option
@base_url_option
@pass_settings
def doctor(settings: Settings, paths: tuple[Path, ...], profile_id: str | None,
           workspace_filter: str | None, version_filter: str | None,
           state_path: Path | None) -> None:
    """Check, read-only, that the API answers at FYNO_BASE_URL as Fyno's profile API should
    for this key, workspace and version; say what is wrong and how to fix it (exit 1).

    The workspaces come from the configuration PATHS (each pair it declares is checked), or
    --workspace and --version, or FYNO_WSID and FYNO_VERSION.

    \b
    Example:
      reconciler doctor profiles/
      FYNO_WSID=FYXXXXXXXX reconciler doctor --id u-1001
    """
    # Imported here: httpx costs every start-up ~0.1 s, and most commands never call the API.
    import httpx

    from reconciler.api import proxy_for

    env = os.environ
    if paths:
        pairs = [(config.workspace, config.version)
                 for config in load_pairs(settings, paths, workspace_filter, version_filter)]
    else:
        pairs = [target_workspace(settings, paths, "to check", workspace_filter,
                                  version_filter)[:2]]
    one_state_only(state_path, [Named(workspace, version) for workspace, version in pairs])
    url = base_url(settings)
    try:
        proxy = proxy_for(httpx.URL(url), env)
    except httpx.InvalidURL:
        proxy = None
    failed = False
    for workspace, version in pairs:
        first = profile_id
        if first is None:
            store = open_pair(settings, state_path, workspace, version, paths)
            first = min(store.backend.load(workspace, version).profiles, default=None)
        checks = run_doctor(env, url, proxy,
                            functools.partial(client, settings, env, workspace, version, 1),
                            first)
        click.echo(f"Workspace {printable(workspace)}, version {printable(version)}:")
        for check in checks:
            mark = "ok  " if check.ok else "FAIL"
            click.echo(printable(f"  {mark} {check.name}: {check.found}"))
            if check.fix:
                click.echo(printable(f"       fix: {check.fix}"))
        failed = failed or not all(check.ok for check in checks)
    if failed:
        raise ApiSetupError("doctor found a problem: see above")
