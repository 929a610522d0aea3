"""`backend migrate`: create or upgrade the PostgreSQL backend's tables."""

from __future__ import annotations

import click

from reconciler.cli.group import cli
from reconciler.cli.options import common_options
from reconciler.cli.settings import Settings, pass_settings
from reconciler.errors import UsageError


@cli.group()
@common_options
def backend() -> None:
    """Manage the PostgreSQL backend (--backend URL, or RECONCILER_BACKEND).

    \b
    Example:
      RECONCILER_BACKEND=postgresql://ci@db.internal/reconciler reconciler backend migrate
    """


@backend.command("migrate")
@common_options
@pass_settings
def backend_migrate(settings: Settings) -> None:
    """Create the backend's tables, or upgrade them to this reconciler's schema.

    Every command does this on first use too; run it to upgrade at a time of your choosing
    (one runner at a time does it: the others wait for it).

    \b
    Example:
      reconciler --backend postgresql://ci@db.internal/reconciler backend migrate
    """
    url = settings.backend
    if url is None:
        raise UsageError("no backend to migrate: give --backend URL before the command, or set "
                         "RECONCILER_BACKEND")
    from reconciler.state.pgconnect import Connections, shown_url  # psycopg only when used
    from reconciler.state.schema import LATEST, migrate

    applied = migrate(Connections(url).get())
    if applied:
        click.echo(f"Migrated {shown_url(url)} to schema version {LATEST} (applied: "
                   f"{', '.join(map(str, applied))}).")
    else:
        click.echo(f"{shown_url(url)} is at schema version {LATEST}: nothing to do.")
