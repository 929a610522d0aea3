"""The default state backend: one JSON file per workspace and version, on local disk.

Next to `state/FYXXXXXXXX-live.json` live `...json.backup` (the previous version),
`...json.lock` (while a command holds the lock) and, while an apply runs (or after one died),
`...json.journal` (see `journal.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING

from reconciler import atomic
from reconciler.audit.entry import AuditEntry
from reconciler.audit.ledger import LEDGER_NAME, AuditLedger
from reconciler.config.limits import shown, workspace_problem
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.errors import StateCorruptError, StateError, StateMismatchError, UsageError
from reconciler.state import codec, journal
from reconciler.state.base import LockInfo, State, StateBackend
from reconciler.state.events import Event, drop_profiles
from reconciler.state.journal import Journal
from reconciler.state.lock import FileLock

# What identifies one version of the file on disk: every save makes a new inode, and an edit
# in place changes size or times, so an unchanged fingerprint means unchanged content.
_Fingerprint = tuple[int, int, int, int, int]


def default_state_path(workspace: str, version: str, directory: Path = Path("state")) -> Path:
    """`state/<workspace>-<version>.json` (in `directory`, the root's `state/`: see
    `reconciler.state.location`); a name that could leave `state/` (from the YAML or from
    FYNO_WSID / FYNO_VERSION) is refused before any path is built from it."""
    problem = workspace_problem(workspace) if workspace else "no workspace names the state"
    if problem is not None:
        raise UsageError(problem)
    if version not in ("live", "test"):
        raise UsageError(f"the version must be live or test, not {shown(version)}")
    return directory / f"{workspace}-{version}.json"


class LocalStateFile:
    """A `StateBackend` on a local JSON file; see `reconciler.atomic` for durability.

    With a key in `encryption`, the file and its journal are sealed (`reconciler.encryption`);
    the backup is the previous file itself, sealed as it was written.
    """

    def __init__(self, path: Path, encryption: Encryption = NO_ENCRYPTION, *,
                 lock_timeout: float = 0.0) -> None:
        self.path = path
        self.encryption = encryption
        self._lock = FileLock(self.lock_path, timeout=lock_timeout,
                              unlock_hint=f"reconciler state unlock --state {path}")
        # The stored version this object last read or wrote, so that `save` can tell whether
        # the file still is the one its caller loaded without parsing 40 MB again.
        self._known: tuple[_Fingerprint, str, int] | None = None
        self._saving = threading.Lock()  # one save at a time, even from apply's worker threads

    @property
    def backup_path(self) -> Path:
        return atomic.backup_path(self.path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def journal_path(self) -> Path:
        """The append-only record of what an apply learned since the last save."""
        return self.path.with_name(self.path.name + ".journal")

    def describe(self) -> str:
        return str(self.path)

    def load(self, workspace: str | None, version: str | None) -> State:
        state = self._read()
        if state is None:
            return self._replay_journal(State.new(workspace or "", version or "live"))
        wanted = (workspace or state.workspace, version or state.version)
        if wanted != (state.workspace, state.version):
            raise StateMismatchError(
                f"state {self.path} records workspace {state.workspace} version "
                f"{state.version}, but this run is for workspace {wanted[0]} version "
                f"{wanted[1]}; pass --state to use another state file")
        return self._replay_journal(state)

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        self._lock.acquire(command)
        try:
            yield
        finally:
            self._lock.release()

    def save(self, state: State) -> State:
        # Taking the lock here too means a save never races another writer, even when the
        # caller forgot to lock; inside the caller's `lock` block this is a no-op.
        with self._saving, self.lock("save"):
            self._check_unchanged_since_load(state)
            saved = dataclasses.replace(
                state,
                lineage=state.lineage or str(uuid.uuid4()),
                serial=state.serial + 1,
                profiles=dict(state.profiles),
                unconfirmed=set(state.unconfirmed),
                missing=set(state.missing),
                doubts=dict(state.doubts),
                managed=dict(state.managed),
            )
            data = self.encryption.seal_file("state", codec.encode(saved))
            self._remove_leftovers()
            try:
                atomic.replace_with_backup(self.path, data)
                stat = os.stat(self.path)
                # The saved state now holds all the journal said: it must not be folded again.
                with contextlib.suppress(FileNotFoundError):
                    self.journal_path.unlink()
            except OSError as err:
                raise StateError(f"could not save state {self.path}: {err.strerror or err}; "
                                 f"the previous state is unchanged") from err
            assert saved.lineage is not None
            self._known = (_fingerprint(stat), saved.lineage, saved.serial)
            return saved

    def erase(self, state: State, distinct_ids: Collection[str]) -> State:
        """Under the lock: remove every trace of `distinct_ids` (profiles `state` no longer
        records) from the state and from its backup, the previous version, rewritten in
        place without them. The journal was folded into `state` and removed by `load`."""
        if not self._lock.held:
            raise StateError("profiles are only erased under the state lock")
        ids = set(distinct_ids)
        if ids & state.profiles.keys():
            raise StateError(f"still recorded: {', '.join(sorted(ids & state.profiles.keys()))}")
        if drop_profiles(state, ids):
            state = self.save(state)
        self._rewrite_backup(lambda kept: drop_profiles(kept, ids))
        return state

    def reseal(self, state: State) -> State:
        """Under the lock: save `state` and rewrite its backup under this backend's
        encryption (`state encrypt` and `state decrypt`)."""
        state = self.save(state)
        self._rewrite_backup(lambda kept: True)
        return state

    def _rewrite_backup(self, change: Callable[[State], bool]) -> None:
        """Rewrite the backup if `change` (which edits the state it is given) says so."""
        what = f"state backup {self.backup_path}"
        try:
            raw = self.backup_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            raise StateError(f"cannot read {what}: {err.strerror}") from None
        try:
            kept = codec.decode(self.encryption.open_file(raw, what, clear_ok=True), source=what)
        except StateCorruptError as err:
            raise StateError(f"{err}; it cannot be rewritten: it is only the previous version, "
                             "so move it away (or delete it) and run again") from None
        if change(kept):
            atomic.replace_file(self.backup_path,
                                self.encryption.seal_file("state", codec.encode(kept)))

    def unlock(self) -> LockInfo | None:
        return self._lock.remove()

    def lock_info(self) -> LockInfo | None:
        return self._lock.info()

    def _read(self) -> State | None:
        """The stored state, validated; None if there is no file."""
        try:
            # O_NONBLOCK: opening a FIFO named as the state must not wait for a writer
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as file:
                stat = os.fstat(file.fileno())
                if not S_ISREG(stat.st_mode):
                    raise StateError(f"state {self.path} is not a regular file; give --state "
                                     "a JSON file (or a path where one may be created)")
                data = file.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StateError(f"cannot read state {self.path}: {err.strerror}") from None
        data = self.encryption.open_file(data, f"state {self.path}")
        try:
            state = codec.decode(data, source=str(self.path))
        except StateCorruptError as err:
            raise StateCorruptError(f"{err}. {self._corrupt_advice()}") from None
        assert state.lineage is not None  # the schema requires it
        self._known = (_fingerprint(stat), state.lineage, state.serial)
        return state

    def _corrupt_advice(self) -> str:
        advice = "The file was left unchanged; the reconciler will not overwrite it."
        if self.backup_path.exists():
            advice += f" The previous version is in {self.backup_path}."
        return advice + " Repair or restore it, then run again."

    def _check_unchanged_since_load(self, state: State) -> None:
        """Refuse to save over a stored state other than the one `state` was loaded from.

        Also the guard that nothing ever overwrites a corrupt file: reading it raises.
        """
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stored: tuple[str, int] | None = None
        else:
            if self._known is None or self._known[0] != _fingerprint(stat):
                self._read()
            assert self._known is not None
            stored = self._known[1:]
        loaded = None if state.lineage is None else (state.lineage, state.serial)
        if stored != loaded:
            raise StateError(
                f"state {self.path} changed since this run loaded it "
                f"(loaded {_describe_version(loaded)}, now {_describe_version(stored)}); "
                f"nothing was saved. Run the command again to work from the current state.")

    def restore(self, state: State) -> None:
        with self.lock("state migrate"):
            if self.path.exists():
                raise StateError(f"{self.path} already exists: a state is only moved to where "
                                 "there is none")
            atomic.replace_file(self.path, self.encryption.seal_file("state", codec.encode(state)))

    @property
    def ledger_path(self) -> Path:
        """`audit.jsonl` beside the state: one ledger for every state of the directory."""
        return self.path.parent / LEDGER_NAME

    def ledger(self, *, durable: bool = False) -> AuditLedger:
        return AuditLedger(self.ledger_path, durable=durable, encryption=self.encryption)

    def open_journal(self, state: State) -> _FileEventLog:
        """Start journaling events on top of `state`, which must be the saved version."""
        if not self._lock.held:
            raise StateError("a journal is only opened under the state lock")
        if state.lineage is None:
            raise StateError("a journal extends a saved state: save the new state first")
        journal = Journal(self.journal_path, state.lineage, state.serial, self.encryption)
        return _FileEventLog(journal, self.ledger(durable=True))

    def _replay_journal(self, state: State) -> State:
        """Fold what a run that died before its save had journaled into `state`.

        A journal found here means a run died between a call and its save. Replaying belongs
        exactly here, after validation and before any caller sees the state, so that every
        command (plan included) starts from what the server holds. Under the lock, the
        folded state is saved at once (serial + 1) and the journal dropped; without it
        (`plan`), the fold stays in memory, with the serial that save will give it.
        """
        outcome = journal.replay(self.journal_path, state, self.encryption)
        if outcome == "absent":
            return state
        if not self._lock.held:
            if outcome == "folded":
                state.serial += 1
            return state
        if outcome == "folded":
            state = self.save(state)
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()
        return state

    def _remove_leftovers(self) -> None:
        """Delete temporary files of crashed saves; only called under the lock, when no
        other save can be writing one."""
        for leftover in self.path.parent.glob(atomic.temp_name_pattern(self.path)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


class _FileEventLog:
    """The journal, with the ledger its records go to first: appended to separately, so a
    crash between the two leaves a record whose request is still in doubt in the state,
    which the next command settles (`audit.record_lost_requests` skips what is on record)."""

    def __init__(self, journal: Journal, ledger: AuditLedger) -> None:
        self.journal = journal
        self._ledger: AuditLedger | None = ledger

    def record(self, event: Event | None, entries: Sequence[AuditEntry] = ()) -> None:
        if self._ledger is None:
            raise StateError("the journal of this run is closed: nothing more is recorded")
        for entry in entries:
            self._ledger.append(entry)
        if event is not None:
            self.journal.record(event)

    def close(self, *, discard: bool = False) -> None:
        if self._ledger is not None:
            self._ledger.close()
            # let go of it before the state is saved: it holds the data key of every
            # profile it recorded (45 MB for 100,000), and the save is apply's peak
            self._ledger = None
        self.journal.close(discard=discard)


def _fingerprint(stat: os.stat_result) -> _Fingerprint:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _describe_version(version: tuple[str, int] | None) -> str:
    if version is None:
        return "no state"
    return f"lineage {version[0]} serial {version[1]}"


if TYPE_CHECKING:
    # mypy proves here that the local file is a complete `StateBackend`.
    _backend: StateBackend = LocalStateFile(Path())
