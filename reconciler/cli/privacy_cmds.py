"""`audit erase`, `state encrypt` and `state decrypt`: personal data at rest.

`audit erase ID` is a person's request to be forgotten: their values leave the state, its
backup and (by the destruction of their data keys) the ledger, whose chain still verifies.
`state encrypt` seals the state, its backup and the ledger's data keys with the configured
key, and run again with a new key (the old one as a fallback) rotates them; `state decrypt`
writes them in clear again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from reconciler.cli.audit_cmds import audit
from reconciler.cli.options import common_options, state_option
from reconciler.cli.pairs import state_pair_options
from reconciler.cli.settings import Settings, pass_settings
from reconciler.cli.state_cmds import state
from reconciler.cli.stored import erase_in, state_backend
from reconciler.encryption import KEY_HINT, Encryption
from reconciler.errors import UsageError
from reconciler.render.common import plural, printable


@audit.command("erase")
@common_options
@click.argument("distinct_ids", nargs=-1, required=True, metavar="ID...")
@state_option
@state_pair_options
@pass_settings
def audit_erase(settings: Settings, distinct_ids: tuple[str, ...], state_path: Path | None,
                workspace_filter: str | None, version_filter: str | None) -> None:
    """Erase every personal value of profiles the state no longer records, for good.

    Their data keys are destroyed, so the values of their ledger records (requests, answers,
    channel data) can no longer be read, while each record keeps its place, time, actor and
    outcome, and `audit verify` still passes. The state's backup is rewritten without them.
    The erasure itself is recorded. A profile still recorded is refused: delete its data
    first (drop it from the configuration and apply), or `reconciler state rm --erase ID`.
    Saved plans and exports outside the state directory are not touched.

    \b
    Example:
      reconciler audit erase u-1001 --state state/FYXXXXXXXX-live.json
    """
    backend, workspace, version = state_backend(settings, state_path, workspace_filter,
                                                version_filter)
    with backend.lock("audit erase"):
        recorded = backend.load(workspace or None, version if workspace else None)
        still = [name for name in distinct_ids if name in recorded.profiles]
        if still:
            raise UsageError(
                f"still recorded in the state: {', '.join(still)}. Delete its channel data "
                "first (remove it from the configuration and apply), or stop managing it "
                f"with `reconciler state rm --erase {' '.join(still)}`; nothing was erased")
        erase_in(settings, backend, recorded, distinct_ids)


@state.command("encrypt")
@common_options
@state_option
@state_pair_options
@pass_settings
def state_encrypt(settings: Settings, state_path: Path | None, workspace_filter: str | None,
                  version_filter: str | None) -> None:
    """Encrypt the state, its backup and the ledger's data keys with the configured key.

    Also rotates keys: with RECONCILER_ENCRYPTION_KEY naming the new key and
    RECONCILER_ENCRYPTION_FALLBACK the old one, everything is rewritten under the new key.

    \b
    Example:
      export STATE_KEY=$(openssl rand -base64 32)
      RECONCILER_ENCRYPTION_KEY=env:STATE_KEY reconciler state encrypt --state s.json
    """
    configured = settings.encryption()
    if configured.key is None:
        raise UsageError("no encryption key is configured: set RECONCILER_ENCRYPTION_KEY to "
                         f"env:NAME (with NAME holding a key, {KEY_HINT}), file:PATH or "
                         "passphrase:NAME")
    _reseal(settings, state_path, workspace_filter, version_filter,
            dataclasses.replace(configured, accept_clear=True), "state encrypt",
            f"encrypted with {configured.describe()}")


@state.command("decrypt")
@common_options
@state_option
@state_pair_options
@pass_settings
def state_decrypt(settings: Settings, state_path: Path | None, workspace_filter: str | None,
                  version_filter: str | None) -> None:
    """Write the state, its backup and the ledger's data keys in clear again.

    \b
    Example:
      RECONCILER_ENCRYPTION_KEY=env:STATE_KEY reconciler state decrypt --state s.json
      unset RECONCILER_ENCRYPTION_KEY
    """
    configured = settings.encryption()
    readers = tuple(key for key in (configured.key, *configured.fallbacks) if key is not None)
    if not readers:
        raise UsageError("no encryption key is configured to read the encrypted state with: "
                         "set RECONCILER_ENCRYPTION_KEY to the key it was written with")
    _reseal(settings, state_path, workspace_filter, version_filter,
            Encryption(fallbacks=readers, method=configured.method,
                       environ=configured.environ), "state decrypt",
            "in clear; unset RECONCILER_ENCRYPTION_KEY, or every command will refuse them")


def _reseal(settings: Settings, state_path: Path | None, workspace: str | None,
            version: str | None, sealing: Encryption, command: str, done: str) -> None:
    backend, workspace, version = state_backend(settings, state_path, workspace, version,
                                                sealing)
    with backend.lock(command):
        recorded = backend.load(workspace or None, version if workspace else None)
        if recorded.lineage is None:
            raise UsageError(f"there is no state in {backend.describe()}; nothing was changed")
        saved = backend.reseal(recorded)
        with backend.ledger(durable=True) as ledger:
            keys = ledger.rewrap()
    click.echo(printable(
        f"The state {backend.describe()} (serial {saved.serial}), any backup and "
        f"{plural(keys, 'data key')} of the ledger are now {done}. Copies made before (git "
        "history, saved plans, old backups) are as they were."))
