"""A save interrupted at any instant leaves the old state whole and loadable.

Real crashes are simulated in a forked child that dies with `os._exit` (no cleanup, no
`finally`) at a chosen point: after N bytes of the new content, or between keeping the
backup and replacing the state. Failures that Python sees (a full disk) are tested in-process.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.model import ChannelData, Token
from reconciler.state import LocalStateFile, State
from reconciler.state.codec import encode

CRASHED = 42  # exit status of a child that reached the injected crash


def old_and_new(backend: LocalStateFile) -> tuple[State, bytes, State]:
    """Save a first state, then return it, its bytes, and a bigger successor to save."""
    state = backend.load("FYTEST", "live")
    state.profiles = {f"u-{index:03d}": ChannelData({"email": f"user{index}@example.com"})
                      for index in range(40)}
    old = backend.save(state)
    new = State(old.lineage, old.serial, old.workspace, old.version, dict(old.profiles))
    new.profiles.update({f"v-{index:03d}": ChannelData({"push": (Token(f"fcm:{index}"),)})
                         for index in range(40)})
    return old, backend.path.read_bytes(), new


def write_failing_after(limit: int, fail: Callable[[], None]) -> Callable[[int, bytes], int]:
    """An `os.write` that writes the first `limit` bytes it is given, then calls `fail`."""
    real_write = os.write
    budget = [limit]

    def write(fd: int, data: bytes) -> int:
        if len(data) > budget[0]:
            if budget[0]:
                real_write(fd, data[:budget[0]])
            fail()
        budget[0] -= len(data)
        return real_write(fd, data)

    return write


def in_crashing_child(action: Callable[[], object]) -> None:
    """Run `action` in a forked child and check that it crashed where it was told to."""
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)  # reached only if the crash was never injected
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == CRASHED


def assert_old_state_intact(path: Path, old: State, old_bytes: bytes) -> None:
    assert path.read_bytes() == old_bytes
    loaded = LocalStateFile(path).load("FYTEST", "live")
    assert (loaded.lineage, loaded.serial, loaded.profiles) == (old.lineage, old.serial,
                                                                old.profiles)


def leftovers(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*"))


def crash_offsets(size: int) -> list[int]:
    rng = random.Random(20240521)
    return [0, 1, size - 1, *rng.sample(range(2, size - 1), 20)]


def test_crash_at_any_byte_of_a_save_leaves_the_old_state_and_no_blocking_litter(
        tmp_path: Path) -> None:
    backend = LocalStateFile(tmp_path / "FYTEST-live.json")
    old, old_bytes, new = old_and_new(backend)
    size = len(encode(State(old.lineage, old.serial + 1, "FYTEST", "live", new.profiles)))
    for offset in crash_offsets(size):
        def crash_mid_write(offset: int = offset) -> None:
            os.write = write_failing_after(offset, lambda: os._exit(CRASHED))
            LocalStateFile(backend.path).save(new)

        in_crashing_child(crash_mid_write)
        assert_old_state_intact(backend.path, old, old_bytes)
        assert leftovers(backend.path), "the crash should have left a temporary file"
    # The next run works normally and sweeps the temporary files of the crashed ones.
    saved = backend.save(backend.load("FYTEST", "live"))
    assert saved.serial == old.serial + 1
    assert leftovers(backend.path) == []
    assert not backend.lock_path.exists()


def test_failed_write_at_any_byte_leaves_the_old_state_and_cleans_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalStateFile(tmp_path / "FYTEST-live.json")
    old, old_bytes, new = old_and_new(backend)
    backup_before = backend.backup_path.exists()

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    for offset in crash_offsets(len(old_bytes)):
        monkeypatch.setattr(os, "write", write_failing_after(offset, disk_full))
        with pytest.raises(StateError, match="No space left on device"):
            LocalStateFile(backend.path).save(new)
        monkeypatch.undo()
        assert_old_state_intact(backend.path, old, old_bytes)
        assert leftovers(backend.path) == []
        assert backend.backup_path.exists() == backup_before


def test_crash_between_keeping_the_backup_and_replacing_leaves_old_state_and_backup(
        tmp_path: Path) -> None:
    backend = LocalStateFile(tmp_path / "FYTEST-live.json")
    old, old_bytes, new = old_and_new(backend)
    real_replace = os.replace

    def crash_before_replacing_state(source: str | Path, target: str | Path) -> None:
        if Path(target) == backend.path:
            os._exit(CRASHED)
        real_replace(source, target)

    def crash_in_replace() -> None:
        os.replace = crash_before_replacing_state
        LocalStateFile(backend.path).save(new)

    in_crashing_child(crash_in_replace)
    assert_old_state_intact(backend.path, old, old_bytes)
    assert backend.backup_path.read_bytes() == old_bytes
    after = backend.save(backend.load("FYTEST", "live"))
    assert after.serial == old.serial + 1
    assert leftovers(backend.path) == []


def test_crash_right_after_replacing_leaves_the_new_state(tmp_path: Path) -> None:
    backend = LocalStateFile(tmp_path / "FYTEST-live.json")
    old, old_bytes, new = old_and_new(backend)
    real_replace = os.replace

    def crash_after_replacing_state(source: str | Path, target: str | Path) -> None:
        real_replace(source, target)
        if Path(target) == backend.path:
            os._exit(CRASHED)

    def crash_in_replace() -> None:
        os.replace = crash_after_replacing_state
        LocalStateFile(backend.path).save(new)

    in_crashing_child(crash_in_replace)
    loaded = backend.load("FYTEST", "live")
    assert (loaded.serial, loaded.profiles) == (old.serial + 1, new.profiles)
    assert backend.backup_path.read_bytes() == old_bytes
