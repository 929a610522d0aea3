"""Reading a test run's audit ledger as `reconciler audit` does: sealed values opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.audit import query
from reconciler.encryption import NO_ENCRYPTION, Encryption


def ledger_records(workdir: Path, encryption: Encryption = NO_ENCRYPTION) -> list[dict[str, Any]]:
    """The records of `workdir/state/audit.jsonl`, values opened (None once erased)."""
    return list(query(workdir / "state" / "audit.jsonl", encryption=encryption))
