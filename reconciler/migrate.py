"""`state migrate`: move a state and its ledger between backends, and prove the copy.

Both backends are locked; the state is stored at the destination exactly as it is (lineage,
serial, every profile: a plan saved against the source is fresh against the copy), and the
ledger's records and data keys are copied line for line, so the chain, its head and every
sealed value are the same. Then the copy is read back and compared: the state's canonical
form (its digest), the number of profiles, and the ledger's record count and head. The source
is only read. A ledger holds the records of every workspace kept beside it, so it moves whole;
a destination whose ledger already ends at the source's head is left as it is (the second
workspace of a directory), any other non-empty one is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.audit.base import Ledger
from reconciler.errors import StateError, UsageError
from reconciler.state import State, StateBackend, codec


@dataclass(frozen=True, slots=True)
class Moved:
    """What was moved and checked."""

    profiles: int
    serial: int
    digest: str  # sha256 of the state's canonical form, the same at both ends
    records: int
    head: str  # the ledger's last hash, the same at both ends
    ledger_copied: bool  # False: the destination's ledger already ended at the same head


def migrate_state(source: StateBackend, destination: Callable[[str, str], StateBackend],
                  workspace: str | None, version: str | None) -> Moved:
    """Move the state (and ledger) of `source` to `destination(workspace, version)`."""
    with source.lock("state migrate"):
        state = source.load(workspace, version)
        if state.lineage is None:
            raise UsageError(f"there is no state in {source.describe()} to move")
        target = destination(state.workspace, state.version)
        with target.lock("state migrate"):
            with source.ledger() as origin, target.ledger() as copy:
                records, head = _chain(origin, source.describe())
                there, there_head = _chain(copy, target.describe())
                copied = not (there and (there, there_head) == (records, head))
                if copied and there:
                    raise StateError(f"the ledger of {target.describe()} already holds other "
                                     f"records ({there}, head {there_head}); nothing was moved")
                target.restore(state)
                if copied:
                    copy.restore(origin.lines(), origin.keys.lines.read_new()[1])
                moved_records, moved_head = _chain(copy, target.describe())
            moved = target.load(state.workspace, state.version)
    digest, moved_digest = _digest(state), _digest(moved)
    problems = [what for what, ok in (
        ("the state's digest", digest == moved_digest),
        ("the serial", (moved.lineage, moved.serial) == (state.lineage, state.serial)),
        ("the ledger's records and head", (moved_records, moved_head) == (records, head)),
    ) if not ok]
    if problems:
        raise StateError(f"the copy in {target.describe()} differs from the source in "
                         f"{', '.join(problems)}; the source is untouched: remove the copy "
                         "and try again")
    return Moved(len(state.profiles), state.serial, digest, records, head, copied)


def _chain(ledger: Ledger, where: str) -> tuple[int, str]:
    check = ledger.chain()
    for _ in check.records():
        pass
    result = check.result
    if not result.ok:
        raise StateError(f"the ledger of {where} is damaged ({result.describe()}); nothing "
                         "was moved")
    return result.count, result.head


def _digest(state: State) -> str:
    return hashlib.sha256(codec.encode(state)).hexdigest()
