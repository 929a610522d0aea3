"""The state lock: one process at a time may change a state file.

The lock is `<state>.lock`, held with `fcntl.flock` and holding the holder's details as JSON
(pid, host, command, start time). The kernel releases a flock when its holder dies, even by
`kill -9`, so a lock file left behind by a dead process blocks no one: the next process gets
the flock and simply takes the file over. Only where flock is unavailable (some network
filesystems) does the file's existence alone mean "locked"; a lock left there by a dead
process is what `reconciler state unlock` is for.

Whether a holder named in the file still runs (`holder_status`) is what `state unlock` asks
before it breaks a lock: on this host its pid must exist and must have started before the lock
was taken (a later start means the pid was reused); on another host nobody can tell.

Why not the `filelock` library: a blocked user must be told WHO holds the lock (which
pid on which host, running what, since when) to decide whether to wait or to unlock, so the
holder's details must live in the lock file itself. filelock's locks are anonymous, it
truncates the lock file on acquire and may delete it on release, which would race with
writing and reading those details; the flock handling it would save us is a dozen lines.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Final

import orjson

from reconciler.atomic import DIR_MODE, FILE_MODE
from reconciler.errors import StateError, StateLockedError
from reconciler.state.base import LockInfo

# errnos meaning "this filesystem does not do flock", as opposed to "someone holds it"
_NO_FLOCK: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL})
_READ_RETRIES: Final = 10  # a fresh holder writes its details just after taking the flock
# Seconds by which a process may seem to start after its lock was taken: `started_at` is cut
# to whole seconds, and the kernel's boot time, from which a start time is computed, too.
_CLOCK_SLACK: Final = 2.0
_WAIT_POLL: Final = 0.2  # seconds between tries while waiting for a held lock


class HolderStatus(enum.Enum):
    """What can be known, from here, of the process a lock file names."""

    RUNNING = "running"  # on this host, its pid exists and is not a later process
    GONE = "gone"  # on this host, no process with its pid, or one started after the lock
    UNKNOWN = "unknown"  # another host, or unreadable details: cannot be checked from here


def holder_status(info: LockInfo) -> HolderStatus:
    """Whether the holder named by `info` still runs, as far as this host can tell.

    The start-time comparison needs Linux's `/proc`; elsewhere an existing pid counts as
    running. A holder in another pid namespace with the same host name (containers sharing a
    volume and a host name) is beyond what a pid can tell.
    """
    if info.pid <= 0 or info.host != socket.gethostname():
        return HolderStatus.UNKNOWN
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return HolderStatus.GONE
    except PermissionError:
        pass  # it exists, under another user
    started = _process_start(info.pid)
    taken = _parse_time(info.started_at)
    if started is not None and taken is not None and started > taken + _CLOCK_SLACK:
        return HolderStatus.GONE  # the pid now belongs to a process started after the lock
    return HolderStatus.RUNNING


class FileLock:
    """An exclusive lock on one lock file, re-entrant within this object.

    Between processes the flock excludes; between the threads of one process (apply's
    workers saving) the lock is shared, and `_mutex` only keeps its bookkeeping consistent.
    """

    def __init__(self, path: Path, unlock_hint: str, timeout: float = 0.0) -> None:
        self.path = path
        self.timeout = timeout  # seconds to wait for a held lock before refusing
        self._unlock_hint = unlock_hint
        self._mutex = threading.RLock()
        self._fd: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        """Whether this process holds the lock (through this object)."""
        return self._fd is not None

    def acquire(self, command: str) -> None:
        with self._mutex:
            self._acquire(command)

    def release(self) -> None:
        with self._mutex:
            self._release()

    def _acquire(self, command: str) -> None:
        if self._fd is not None:
            self._depth += 1
            return
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            fd, created = _open_lock_file(self.path)
            try:
                try:
                    locked = self._flock(fd, created)
                except StateLockedError:
                    if time.monotonic() >= deadline:
                        raise
                    locked = False  # held: --lock-timeout waits, and tries again
                    time.sleep(_WAIT_POLL)
                # The holder we waited for may have removed the file between our open and our
                # flock; a lock on an unlinked file protects nothing, so start over.
                if locked and _same_file(fd, self.path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            info = orjson.dumps(LockInfo.current(command).to_json())
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._depth = 1

    def _release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth:
            return
        fd, self._fd = self._fd, None
        try:
            # Unlink while still holding the flock, so nobody can take a file that is going.
            with contextlib.suppress(FileNotFoundError):
                if _same_file(fd, self.path):
                    self.path.unlink()
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def info(self) -> LockInfo | None:
        """The details stored in the lock file, None if there is none."""
        for _ in range(_READ_RETRIES):
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return None
            if data:
                break
            time.sleep(0.01)
        try:
            return LockInfo.from_json(orjson.loads(data))
        except orjson.JSONDecodeError:
            return LockInfo.from_json(None)

    def remove(self) -> LockInfo | None:
        """Delete the lock file whoever holds it: the user's explicit `state unlock`."""
        info = self.info()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return None
        return info

    def _flock(self, fd: int, created: bool) -> bool:
        """True if we now hold the lock on `fd`; raises if someone else holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                raise StateError(f"cannot lock {self.path}: {err.strerror}") from None
            # No flock here: whoever created the file holds the lock.
            if created:
                return True
        raise self._locked_error()

    def _locked_error(self) -> StateLockedError:
        holder = self.info()
        who = str(holder) if holder else "another process"
        return StateLockedError(
            f"state is locked by {who} (lock file {self.path}). Wait for it to finish. "
            f"If that process is gone and the lock remains (possible on network filesystems), "
            f"remove it with `{self._unlock_hint}`.")


def _open_lock_file(path: Path) -> tuple[int, bool]:
    """Open the lock file, creating it 0600; also say whether this call created it."""
    flags = os.O_RDWR | os.O_CLOEXEC
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass
        else:
            os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask made of os.open's mode
            return fd, True
        try:
            return os.open(path, flags), False
        except FileNotFoundError:
            continue  # released between our two opens: try to create it again


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _process_start(pid: int) -> float | None:
    """When process `pid` started, in seconds since the epoch; None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        # Field 22 is the start in clock ticks after boot; field 2, the command, may hold
        # spaces and parentheses, so count from the last ")".
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _parse_time(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None
