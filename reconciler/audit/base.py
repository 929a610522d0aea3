"""What every backend's audit ledger does: the interface apply and the commands write to.

The file backend's ledger is `AuditLedger` (`audit.jsonl` beside the state); another
backend keeps it as it keeps the state. Records come in as `AuditEntry`s and go out as the
JSON objects `audit` reads (sealed values still sealed: `report.opened` opens them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol

from reconciler.audit.entry import AuditEntry
from reconciler.audit.keys import Profile, ProfileKeys
from reconciler.audit.verify import ChainCheck


class Ledger(Protocol):
    """An append-only, hash-chained ledger of the calls made and facts learned."""

    keys: ProfileKeys  # the data keys that open (and erase) its records' sealed values

    def __enter__(self) -> Ledger: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...

    def close(self) -> None: ...

    def check(self) -> None:
        """Raise `AuditError` unless records can be chained on (before apply's first call)."""
        ...

    def prepare(self, profiles: Iterable[Profile]) -> int:
        """Make the data keys of `profiles` ready, in one write; how many were made."""
        ...

    def append(self, entry: AuditEntry) -> None:
        """Add `entry` as the next record, its personal values sealed."""
        ...

    def sync(self) -> None:
        """Make every record appended so far durable (one flush after many appends)."""
        ...

    def erase(self, entry: AuditEntry) -> int:
        """Destroy the data keys of `entry`'s profile and record `entry`; how many keys."""
        ...

    def rewrap(self) -> int:
        """Rewrite the data keys under the configured encryption; how many."""
        ...

    def unsealed(self, profile: Profile) -> int:
        """How many records of `profile` hold values in clear (written before sealing)."""
        ...

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record, in order, as stored."""
        ...

    def lines(self) -> Iterator[bytes]:
        """Every record exactly as stored, one line (with its newline) each, in order."""
        ...

    def restore(self, lines: Iterable[bytes], keys: list[bytes]) -> int:
        """Into an empty ledger: these records and data-key lines, exactly; how many
        records (`state migrate`)."""
        ...

    def chain(self) -> ChainCheck:
        """One pass over the records that judges the chain as it yields them."""
        ...
