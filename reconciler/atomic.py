"""Replace a file so that a crash at any instant leaves the old or the new content, whole.

The new content goes to a temporary file in the same directory (same filesystem, so the
final rename is atomic), is fsynced, and is renamed over the target; then the directory is
fsynced so that the rename itself survives a power cut. For the state, the previous version
is kept as `<name>.backup`, made by hard-linking the old file: a link is the old inode
itself, so the backup can never be half-written either. Every file created here has mode 0600, since
states hold email addresses, phone numbers and push tokens.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
_CHUNK: Final = 1 << 20


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def temp_name_pattern(path: Path) -> str:
    """A glob matching every temporary file `replace_with_backup` may leave after a crash."""
    return f".{glob.escape(path.name)}.*.tmp"


def replace_file(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Atomically make `data` the content of `path` (mode 0600); given as chunks, it is
    written as they come, so that a large file (a saved plan) is never held whole."""
    _replace(path, data, backup=False)


class Prepared:
    """New content written whole next to its file, not yet in its place: `commit` puts it
    there atomically, `discard` removes it. For content made before the run knows whether
    it may be published (`reconciler.config.load_configs_then`).

    Until `commit`, the content is an unnamed file (Linux's `O_TMPFILE`) in the target's
    directory: a process killed while it waits, even by SIGKILL, leaves nothing behind, since
    the file goes with its last descriptor. `commit` gives it a temporary name and renames
    that over the target, so only those two steps could leave a named leftover. Where the
    file system has no unnamed files, the content waits under the temporary name instead.
    """

    def __init__(self, path: Path, data: bytes | Iterable[bytes]) -> None:
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self.path = path
        self._unnamed: int | None = _write_unnamed(path.parent, data)
        self._temp: Path | None = None
        if self._unnamed is None:
            self._temp = _write_temp(path, data)
        self._done = False

    def commit(self) -> None:
        if self._done:
            raise RuntimeError(f"{self.path} was already committed or discarded")
        self._done = True
        fd, self._unnamed = self._unnamed, None
        temp, self._temp = self._temp, None
        try:
            if fd is not None:
                temp = _link_unnamed(fd, self.path)
            assert temp is not None
            os.replace(temp, self.path)
        except BaseException:
            if temp is not None:
                with contextlib.suppress(OSError):
                    temp.unlink()
            raise
        finally:
            if fd is not None:
                os.close(fd)
        fsync_directory(self.path.parent)

    def discard(self) -> None:
        self._done = True
        fd, self._unnamed = self._unnamed, None
        temp, self._temp = self._temp, None
        if fd is not None:
            os.close(fd)
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()


def _write_unnamed(directory: Path, data: bytes | Iterable[bytes]) -> int | None:
    """A descriptor of an unnamed file in `directory` holding `data` (mode 0600, fsynced);
    None where the system or the file system makes no unnamed files."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):  # `_link_unnamed` needs /proc
        return None
    try:
        # Readable too: should naming it fail, the content is copied to a named file.
        fd = os.open(directory, flag | os.O_RDWR | os.O_CLOEXEC, FILE_MODE)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise
    try:
        _fill(fd, data)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _link_unnamed(fd: int, path: Path) -> Path:
    """Give the unnamed file `fd` a fresh temporary name next to `path`; where the system
    refuses (a sandbox without /proc's links), a named copy of its content."""
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        while True:
            temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                # linkat(2) following /proc's link names the file `fd` is, unprivileged;
                # a directory descriptor makes `os.link` call linkat, not link(2), which
                # would link the /proc entry itself.
                os.link(f"/proc/self/fd/{fd}", temp.name, dst_dir_fd=directory,
                        follow_symlinks=True)
            except FileExistsError:
                continue  # a name clash with a leftover of a crashed run: draw another name
            except OSError:
                return _write_temp(path, _content(fd))
            return temp
    finally:
        os.close(directory)


def _content(fd: int) -> Iterator[bytes]:
    """The content of the file `fd`, a block at a time from its start."""
    offset = 0
    while block := os.pread(fd, _CHUNK, offset):
        yield block
        offset += len(block)


def replace_with_backup(path: Path, data: bytes) -> None:
    """Atomically make `data` the content of `path`, keeping its previous content as backup."""
    _replace(path, data, backup=True)


def _replace(path: Path, data: bytes | Iterable[bytes], backup: bool) -> None:
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    temp = _write_temp(path, data)
    try:
        if backup and path.exists():
            _keep_backup(path)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_directory(path.parent)


def write_new_file(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write `data` (bytes, or chunks of them) to a file that must not exist yet, mode 0600,
    fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        _fill(fd, data)
    finally:
        os.close(fd)


def _fill(fd: int, data: bytes | Iterable[bytes]) -> None:
    """Make the new file `fd` mode 0600 and write `data` to it, fsynced."""
    # os.open's mode is filtered by the umask; the state must be 0600 whatever the umask.
    os.fchmod(fd, FILE_MODE)
    for chunk in (data,) if isinstance(data, bytes) else data:
        _write_all(fd, chunk)
    os.fsync(fd)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes | Iterable[bytes], kind: str = "") -> Path:
    """A fresh temporary file next to `path` holding `data`; removed again if writing fails."""
    while True:
        temp = path.with_name(f".{path.name}.{kind}{secrets.token_hex(6)}.tmp")
        try:
            write_new_file(temp, data)
        except FileExistsError:
            continue  # a name clash with a leftover of a crashed run: draw another name
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return temp


def _keep_backup(path: Path) -> None:
    """Make `<path>.backup` the current content of `path`, without a moment of half a backup.

    `os.link` cannot overwrite, so the link is made under a temporary name and renamed over
    the previous backup. Where hard links are not supported, the old bytes are copied
    through a fsynced temporary file instead.
    """
    backup = backup_path(path)
    link = path.with_name(f".{path.name}.backup-{secrets.token_hex(6)}.tmp")
    # The backup is the old file itself: private whatever mode that file had (a state
    # checked out by git, or copied in by hand, may be world-readable).
    os.chmod(path, FILE_MODE)
    try:
        os.link(path, link)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        link = _write_temp(path, path.read_bytes(), kind="backup-")
    try:
        os.replace(link, backup)
    finally:
        # rename(2) does nothing when both names are links to one file, which is the case
        # after a crash between this point and the state's replace: drop our extra name.
        with contextlib.suppress(OSError):
            link.unlink()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[:_CHUNK])
        view = view[written:]


class GroupSync:
    """fsync shared by the threads appending to one file: a single fsync makes durable every
    write finished before it started, so concurrent writers wait for one disk flush instead of
    queueing one each (16 workers each fsyncing in turn cut apply's throughput in half).

    A writer calls `wrote()` right after its write, under the lock that orders the writes,
    and then `sync(fd, ticket)` outside that lock; it returns once its write is on disk.
    """

    def __init__(self) -> None:
        self._count = threading.Lock()
        self._flush = threading.Lock()
        self._written = 0
        self._synced = 0

    def wrote(self) -> int:
        with self._count:
            self._written += 1
            return self._written

    def sync(self, fd: int, ticket: int) -> None:
        with self._flush:
            if self._synced >= ticket:
                return  # a flush that started after our write already covered it
            with self._count:
                covered = self._written
            os.fsync(fd)
            self._synced = covered
