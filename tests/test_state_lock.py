"""The state lock: exclusive across processes, naming its holder, never stuck on a dead one."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import StateLockedError
from reconciler.state import LocalStateFile, LockInfo

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from reconciler.state import LocalStateFile
    with LocalStateFile(Path(sys.argv[1])).lock(sys.argv[2]):
        print("locked", flush=True)
        time.sleep(120)
""")

COUNT_UNDER_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from reconciler.errors import StateLockedError
    from reconciler.state import LocalStateFile
    state, counter = Path(sys.argv[1]), Path(sys.argv[2])
    done = 0
    while done < 30:
        try:
            with LocalStateFile(state).lock("count"):
                value = int(counter.read_text())
                time.sleep(0.001)
                counter.write_text(str(value + 1))
        except StateLockedError:
            continue
        done += 1
""")


@pytest.fixture
def backend(tmp_path: Path) -> LocalStateFile:
    return LocalStateFile(tmp_path / "FYTEST-live.json")


@pytest.fixture
def holder(backend: LocalStateFile) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of `backend` while running "apply --auto-approve"."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(backend.path), "apply --auto-approve"],
        stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait()


def kill_9(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_lock_held_by_another_process_is_refused_naming_the_holder(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(StateLockedError) as raised, backend.lock("plan"):
        pass
    message = str(raised.value)
    assert f"pid {holder.pid} on {socket.gethostname()}, running 'apply --auto-approve'" in message
    assert f"reconciler state unlock --state {backend.path}" in message
    assert str(backend.lock_path) in message


def test_save_while_another_process_holds_the_lock_is_refused(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(StateLockedError):
        backend.save(backend.load("FYTEST", "live"))
    assert not backend.path.exists()


def test_lock_info_names_the_holder_and_its_start_time(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    info = backend.lock_info()
    assert info is not None
    assert (info.pid, info.host, info.command) == (holder.pid, socket.gethostname(),
                                                   "apply --auto-approve")
    assert info.started_at.endswith("Z")


def test_lock_left_by_a_killed_process_does_not_block(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    kill_9(holder)
    assert json.loads(backend.lock_path.read_text())["pid"] == holder.pid
    with backend.lock("apply"):
        info = backend.lock_info()
        assert info is not None and (info.pid, info.command) == (os.getpid(), "apply")
    assert not backend.lock_path.exists()


def test_unlock_removes_the_lock_and_reports_its_holder(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    kill_9(holder)
    removed = backend.unlock()
    assert removed is not None
    assert (removed.pid, removed.command) == (holder.pid, "apply --auto-approve")
    assert not backend.lock_path.exists()
    assert backend.unlock() is None


def test_lock_is_reentrant_and_released_when_the_block_ends(backend: LocalStateFile) -> None:
    assert backend.lock_info() is None
    with backend.lock("apply"):
        with backend.lock("apply"):
            pass
        assert backend.lock_info() is not None
        backend.save(backend.load("FYTEST", "live"))  # save inside the lock takes it again
        assert backend.lock_info() is not None
    assert backend.lock_info() is None
    assert not backend.lock_path.exists()


def test_lock_is_released_when_the_block_raises(backend: LocalStateFile) -> None:
    with pytest.raises(RuntimeError), backend.lock("apply"):
        raise RuntimeError("boom")
    with LocalStateFile(backend.path).lock("plan"):
        pass


def test_two_backends_in_one_process_exclude_each_other(backend: LocalStateFile) -> None:
    with backend.lock("apply"), pytest.raises(StateLockedError, match=f"pid {os.getpid()}"):
        LocalStateFile(backend.path).lock("plan").__enter__()


def test_processes_taking_turns_never_hold_the_lock_together(
        backend: LocalStateFile, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    workers = [subprocess.Popen([sys.executable, "-c", COUNT_UNDER_LOCK, str(backend.path),
                                 str(counter)]) for _ in range(4)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0, 0]
    assert counter.read_text() == "120"  # a lost update would mean two holders at once


def test_damaged_lock_file_still_reports_and_unlocks(backend: LocalStateFile) -> None:
    backend.lock_path.write_text("garbage")
    assert backend.lock_info() == LockInfo(0, "unknown host", "unknown command", "unknown time")
    assert backend.unlock() is not None
    assert not backend.lock_path.exists()


def test_without_flock_a_lock_file_blocks_until_state_unlock(
        backend: LocalStateFile, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with backend.lock("apply"), pytest.raises(StateLockedError, match="reconciler state unlock"):
        LocalStateFile(backend.path).lock("plan").__enter__()
    assert not backend.lock_path.exists()
    backend.lock_path.write_text(json.dumps(
        {"pid": 99999, "host": "ci-runner-7", "command": "apply", "started_at": "2024-01-01"}))
    with pytest.raises(StateLockedError, match="pid 99999 on ci-runner-7"):
        backend.lock("plan").__enter__()
    assert backend.unlock() is not None
    with backend.lock("plan"):
        pass
