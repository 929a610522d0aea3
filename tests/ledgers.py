"""Reading a test run's audit ledger as `reconciler audit` does: sealed values opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import stores

from reconciler.encryption import NO_ENCRYPTION, Encryption


def ledger_records(workdir: Path, encryption: Encryption = NO_ENCRYPTION) -> list[dict[str, Any]]:
    """The records of the ledger the CLI runs in `workdir` wrote, values opened (None once
    erased): `workdir/state/audit.jsonl` (none if it does not exist), or the test's PostgreSQL
    database (`stores.ACTIVE`)."""
    return stores.ACTIVE.ledger_records(workdir, encryption)
