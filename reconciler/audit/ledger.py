"""Appending to the hash-chained audit ledger, safely from many threads and processes.

Each record is one line of canonical JSON (orjson, sorted keys) with `seq` (its 1-based
position), `prev` (the previous record's hash, "" for the first) and `hash`, the sha256 of
the record without `hash`. The line is written with one `os.write` on an `O_APPEND`
descriptor while holding an exclusive `flock` on the ledger itself, so that applies on
different workspaces sharing a state directory interleave whole records and one chain.
The last `seq`, hash and file size are cached: the tail is read again only when the size
changed under us (another process appended).

Durability: `os.write` hands the line to the kernel before `append` returns, so a record
survives the death of the process (`kill -9`); `durable=True` adds an fsync per record,
which a power cut needs too. Measured with 700-byte records on ext4 in a busy VM: 15,000
to 40,000 records/s without fsync (25-60 us each: flock, two stats, one write), 1,000 to
3,000 with it (0.3-1 ms per record; threads do not overlap their fsyncs). Either is far
above what an API answering in tens of milliseconds lets apply produce.

Reading back parses each line strictly (`strictjson`): a line whose objects repeat a key is
never believed, since its hash covers only one of the two values.

A torn last line, left by a writer that died mid-write or by a power cut, is not refused:
the next append ends it with a newline and writes a `torn_line` marker record naming its
offset, length and sha256, chained to the last whole record. The torn bytes stay where they
were, as evidence; `verify` accepts them only when such a marker vouches for them. Refusing
instead would stop every later apply until someone edited the audit file by hand, which is
worse for an audit trail than a repair that is itself recorded and verifiable.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import orjson

from reconciler import strictjson
from reconciler.atomic import DIR_MODE, FILE_MODE, GroupSync, fsync_directory
from reconciler.audit.entry import ERASE_OPERATION, TORN_LINE_OPERATION, AuditEntry
from reconciler.audit.keys import PERSONAL, Profile, ProfileKeys, keys_path
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.errors import AuditError

if TYPE_CHECKING:
    from reconciler.audit.verify import ChainCheck

LEDGER_NAME: Final = "audit.jsonl"
_TAIL_CHUNK: Final = 1 << 16


def ledger_path(state_dir: Path) -> Path:
    return state_dir / LEDGER_NAME


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: its JSON with sorted keys, no `hash`."""
    return orjson.dumps({key: value for key, value in body.items() if key != "hash"},
                        option=orjson.OPT_SORT_KEYS)


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def seal(body: Mapping[str, Any]) -> tuple[bytes, str]:
    """The ledger line of `body` (a record without `hash`), and the record's hash."""
    data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(data).hexdigest()
    # The canonical bytes are the line itself, with the hash as a last member.
    return data[:-1] + b',"hash":"' + digest.encode() + b'"}\n', digest


def parse_line(line: bytes, path: Path | str, number: int) -> Any:
    """The JSON value of the ledger's line `number` (1-based), read strictly.

    Raises `strictjson.DuplicateKeyError` (an `AuditError` would hide from a caller which
    failure it met) when an object of the line repeats a key: no writer of the ledger makes
    such a line, its hash covers only one of the two values, and a reader of the file may
    believe the other. Any other line that is not JSON raises `strictjson.JSONError`.
    """
    return strictjson.loads(line, what=f"{path}:{number}")


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of the ledger, in order, one line in memory at a time.

    Lines that are not JSON objects (a torn line) are skipped: reading is for reports;
    `reconciler.audit.verify` is what judges the integrity of the file. A line that repeats
    a key is an `AuditError`: skipping it would hide a record, and showing it would show
    one of two claims, either of which may be the forged one.
    """
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return
    with file:
        for number, line in enumerate(file, start=1):
            try:
                record = parse_line(line, path, number)
            except strictjson.DuplicateKeyError as err:
                raise AuditError(f"{err}; run `reconciler audit verify`") from None
            except strictjson.JSONError:
                continue
            if isinstance(record, dict):
                yield record


@dataclass(frozen=True, slots=True)
class _Tail:
    """Where the chain ends: what the next record links to, and the file it was read from."""

    device: int
    inode: int
    size: int
    seq: int
    hash: str


class AuditLedger:
    """The append side of `<state-dir>/audit.jsonl`. Use as a context manager, or `close()`."""

    def __init__(self, path: Path, *, durable: bool = False,
                 encryption: Encryption = NO_ENCRYPTION) -> None:
        self.path = path
        self.durable = durable
        self.keys = ProfileKeys(keys_path(path), encryption)
        self._mutex = threading.Lock()  # the flock excludes processes, this excludes threads
        self._sync = GroupSync()
        self._fd: int | None = None
        self._pid = os.getpid()
        self._tail: _Tail | None = None

    def __enter__(self) -> AuditLedger:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._tail = None

    def records(self) -> Iterator[dict[str, Any]]:
        return read_records(self.path)

    def lines(self) -> Iterator[bytes]:
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return
        with file:
            yield from file

    def restore(self, lines: Iterable[bytes], keys: list[bytes]) -> int:
        with self._mutex, self._locked() as fd:
            if os.fstat(fd).st_size:
                raise AuditError(f"{self.path} already holds records: a ledger is only "
                                 "restored into an empty one")
            count = 0
            for line in lines:
                self._write(fd, line if line.endswith(b"\n") else line + b"\n",
                            os.fstat(fd).st_size)
                count += 1
            os.fsync(fd)
            self._tail = None
        self.keys.lines.replace(keys)
        return count

    def chain(self) -> ChainCheck:
        from reconciler.audit.verify import ChainCheck  # verify builds on this module

        return ChainCheck(self.path)

    def check(self) -> None:
        """Make sure records can be chained on, before apply makes its first call.

        Raises `AuditError` when the last whole line is not a record. A torn tail is
        not an error: the first `append` repairs it.
        """
        with self._mutex, self._locked() as fd:
            size = os.fstat(fd).st_size
            if self._tail is None or self._tail.size != size:
                _read_tail(fd, self.path, size)

    def append(self, entry: AuditEntry) -> None:
        """Add `entry` as the next record; it is in the kernel (or on disk if durable) after."""
        with self._mutex:
            with self._locked() as fd:
                ticket = self._append_locked(fd, entry)
            if self.durable:
                self._sync.sync(fd, ticket)

    def _append_locked(self, fd: int, entry: AuditEntry) -> int:
        """Append under the mutex and the flock; the ticket of its fsync."""
        stat = os.fstat(fd)
        tail = self._tail
        if tail is None or (tail.size, tail.inode, tail.device) != (
                stat.st_size, stat.st_ino, stat.st_dev):
            tail = self._catch_up(fd, stat, entry)
        body = entry.to_json()
        if entry.distinct_id is not None and entry.operation != ERASE_OPERATION:
            body = self.keys.seal(body, durable=self.durable)
        body["seq"] = tail.seq + 1
        body["prev"] = tail.hash
        line, digest = seal(body)
        self._write(fd, line, tail.size)
        self._tail = _Tail(tail.device, tail.inode, tail.size + len(line),
                           tail.seq + 1, digest)
        return self._sync.wrote()

    def sync(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.fsync(self._fd)
                fsync_directory(self.path.parent)

    def prepare(self, profiles: Iterable[Profile]) -> int:
        """Make the data keys of `profiles` ready before calls are made (one append, one
        fsync for a whole plan; and a key this run cannot open is an error now, not after
        the first call); how many were created."""
        with self._mutex, self._locked():
            return self.keys.ensure(profiles, durable=self.durable)

    def erase(self, entry: AuditEntry) -> int:
        """Destroy the data keys of `entry`'s profile, then append `entry` (the erasure's
        own record); how many keys there were. The records stay as they are: the chain
        verifies, and their sealed values can no longer be opened."""
        assert entry.operation == ERASE_OPERATION and entry.distinct_id is not None
        with self._mutex:
            with self._locked() as fd:
                count = self.keys.erase((entry.workspace, entry.version, entry.distinct_id))
                ticket = self._append_locked(fd, entry)
            self._sync.sync(fd, ticket)
        return count

    def unsealed(self, profile: Profile) -> int:
        """How many records of `profile` hold values in clear: written before records were
        sealed, they cannot be erased without breaking the chain. Reads the whole ledger."""
        return sum(1 for record in self.records()
                   if (record.get("workspace"), record.get("version"),
                       record.get("distinct_id")) == profile
                   and "sealed" not in record and record.get("operation") != ERASE_OPERATION
                   and any(record.get(name) for name in PERSONAL))

    def rewrap(self) -> int:
        """Rewrite the data keys under the configured encryption key (or in clear)."""
        with self._mutex, self._locked():
            return self.keys.rewrap()

    def _catch_up(self, fd: int, stat: os.stat_result, entry: AuditEntry) -> _Tail:
        """Read where the chain ends; end a torn last line with a marker record first."""
        size = stat.st_size
        seq, last_hash, torn_at, torn = _read_tail(fd, self.path, size)
        if torn:
            repair = b"\n"
            try:
                whole = strictjson.loads(torn, what=f"{self.path}: the last line")
            except strictjson.DuplicateKeyError as err:
                raise AuditError(f"{err}; new records cannot be chained to it: run "
                                 "`reconciler audit verify`") from None
            except strictjson.JSONError:
                whole = None
            if isinstance(whole, dict) and _is_record(whole):
                seq, last_hash = whole["seq"], whole["hash"]  # only its newline was lost
            else:
                seq += 1
                marker = _torn_marker(entry, torn_at, torn, seq, last_hash)
                marker_line, last_hash = seal(marker)
                repair += marker_line
            self._write(fd, repair, size)  # one write: the marker never lags its newline
            size += len(repair)
        return _Tail(stat.st_dev, stat.st_ino, size, seq, last_hash)

    def _write(self, fd: int, data: bytes, size: int) -> None:
        """Write `data` whole at the end (`size` before), or undo it and raise."""
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.EIO, f"short write: {written} of {len(data)} bytes")
        except OSError as err:
            self._tail = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # safe: we hold the flock, nobody appended since
            raise AuditError(f"cannot write the audit ledger {self.path}: {err}") from err

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """The ledger's descriptor, flocked; reopened if the file was moved or replaced."""
        while True:
            fd = self._open()
            locked = _flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
                mine = os.fstat(fd)
                same = (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)
            except FileNotFoundError:
                same = False
            if same:
                break
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._fd, self._tail = None, None
        try:
            yield fd
        finally:
            if locked:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        # A forked child shares the parent's open file, and with it the parent's flock:
        # it must have a descriptor of its own for the lock to exclude the two.
        self._fd, self._tail = None, None
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
            except FileExistsError:
                fd = os.open(self.path, flags)
                # private even when it came from elsewhere (a git checkout of the state branch)
                with contextlib.suppress(OSError):
                    os.fchmod(fd, FILE_MODE)
            else:
                os.fchmod(fd, FILE_MODE)  # whatever the umask: records hold personal data
                if self.durable:
                    fsync_directory(self.path.parent)
        except OSError as err:
            raise AuditError(f"cannot open the audit ledger {self.path}: {err}") from err
        self._fd, self._pid = fd, os.getpid()
        return fd


NO_FLOCK: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL})
"""errnos meaning "this filesystem does not do flock" (some network filesystems)."""


def _flock(fd: int, operation: int) -> bool:
    """flock `fd`; False where the filesystem has no flock: appends then rely on the state
    lock, which every command that writes records holds (or, for `state unlock`, breaks)."""
    try:
        fcntl.flock(fd, operation)
    except OSError as error:
        if error.errno in NO_FLOCK:
            return False
        raise
    return True


def _is_record(value: Mapping[str, Any]) -> bool:
    return (isinstance(value.get("seq"), int) and isinstance(value.get("hash"), str)
            and isinstance(value.get("prev"), str))


def _torn_marker(entry: AuditEntry, offset: int, torn: bytes, seq: int,
                 prev: str) -> dict[str, Any]:
    body = entry.to_json()
    body.update(
        distinct_id=None,
        operation=TORN_LINE_OPERATION,
        request={"offset": offset, "length": len(torn),
                 "sha256": hashlib.sha256(torn).hexdigest()},
        status=None,
        message=(f"the line at byte {offset} was cut short ({len(torn)} bytes) by a writer "
                 "that died mid-write; it is kept above, and the chain continues here"),
        attempts=0,
        before=None,
        after=None,
        seq=seq,
        prev=prev,
    )
    return body


def _read_tail(fd: int, path: Path, size: int) -> tuple[int, str, int, bytes]:
    """(seq, hash) of the last whole record, the offset of what follows it, and those bytes.

    Reads backwards from the end in growing chunks, so the cost is that of the last record.
    """
    end = size
    buffer = b""
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, end - chunk)
        buffer = _pread(fd, end - start, start) + buffer
        end = start
        last_newline = buffer.rfind(b"\n")
        if last_newline < 0 and start > 0:
            chunk *= 2
            continue
        line_start = buffer.rfind(b"\n", 0, max(last_newline, 0)) + 1
        if last_newline < 0 or line_start > 0 or start == 0:
            break
        chunk *= 2
    torn_at = start + last_newline + 1
    torn = buffer[last_newline + 1:]
    if last_newline < 0:
        return 0, "", torn_at, torn
    line = buffer[line_start:last_newline]
    try:
        record = strictjson.loads(line, what="it")
    except strictjson.JSONError as err:
        record, why = None, f" ({err})" if isinstance(err, strictjson.DuplicateKeyError) else ""
    else:
        why = ""
    if not (isinstance(record, dict) and _is_record(record)):
        number = _count_lines(fd, start + line_start) + 1
        raise AuditError(
            f"{path}:{number}: the last line is not an audit record{why}, so new records "
            f"cannot be chained to it; run `reconciler audit verify` to see what is wrong, and "
            f"move the file aside to start a new ledger")
    return record["seq"], record["hash"], torn_at, torn


def _pread(fd: int, length: int, offset: int) -> bytes:
    parts = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            raise AuditError("the audit ledger shrank while it was being read")
        parts.append(data)
        length -= len(data)
        offset += len(data)
    return b"".join(parts)


def _count_lines(fd: int, end: int) -> int:
    count = offset = 0
    while offset < end:
        data = os.pread(fd, min(_TAIL_CHUNK, end - offset), offset)
        if not data:
            break
        count += data.count(b"\n")
        offset += len(data)
    return count
