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
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.errors import StateLockedError
from reconciler.state import LocalStateFile, LockInfo
from reconciler.state import lock as lock_module

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


# --- whether a holder still runs, and `state unlock` ----------------------------------------

def dead_pid() -> int:
    """The pid of a process that has just ended (and, this soon, not been reused)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_lock(backend: LocalStateFile, pid: int, host: str | None = None,
               started_at: str = "2999-01-01T00:00:00Z") -> None:
    backend.lock_path.write_text(json.dumps(
        {"pid": pid, "host": host or socket.gethostname(), "command": "apply",
         "started_at": started_at}))


def unlock(backend: LocalStateFile, *args: str) -> Result:
    return CliRunner().invoke(cli, ["state", "unlock", "--state", str(backend.path), *args])


def no_flock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem without flock: the lock file's existence alone is the lock."""
    def refuse(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)


def test_holder_status_tells_a_running_holder_from_a_dead_one(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    info = backend.lock_info()
    assert info is not None
    assert lock_module.holder_status(info) is lock_module.HolderStatus.RUNNING
    kill_9(holder)
    assert lock_module.holder_status(info) is lock_module.HolderStatus.GONE


def test_holder_status_sees_a_pid_reused_by_a_later_process() -> None:
    here = socket.gethostname()
    reused = LockInfo(os.getpid(), here, "apply", "2000-01-01T00:00:00Z")
    assert lock_module.holder_status(reused) is lock_module.HolderStatus.GONE
    mine = LockInfo.current("apply")
    assert lock_module.holder_status(mine) is lock_module.HolderStatus.RUNNING


def test_holder_status_cannot_tell_for_another_host_or_unreadable_details() -> None:
    elsewhere = LockInfo(os.getpid(), "ci-runner-7", "apply", "2999-01-01T00:00:00Z")
    assert lock_module.holder_status(elsewhere) is lock_module.HolderStatus.UNKNOWN
    unreadable = LockInfo.from_json(None)
    assert lock_module.holder_status(unreadable) is lock_module.HolderStatus.UNKNOWN


def test_unlock_refuses_while_the_holder_runs_then_force_removes_it(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    info = backend.lock_info()
    assert info is not None
    refused = unlock(backend)
    assert refused.exit_code == 1
    assert backend.lock_path.exists() and backend.lock_info() == info
    message = refused.stderr
    assert f"pid {holder.pid} on {socket.gethostname()}, running 'apply --auto-approve'" in message
    assert f"since {info.started_at}" in message
    assert f"kill {holder.pid}" in message and "--force" in message
    assert holder.poll() is None  # unlock never stops anything itself

    forced = unlock(backend, "--force")
    assert forced.exit_code == 0, forced.output
    assert not backend.lock_path.exists()
    assert f"Removed the lock held by pid {holder.pid}" in forced.stdout
    assert f"pid {holder.pid} still runs" in forced.stderr


def test_unlock_removes_the_lock_of_a_killed_holder_without_force(
        backend: LocalStateFile, holder: subprocess.Popen[str]) -> None:
    kill_9(holder)
    result = unlock(backend)
    assert result.exit_code == 0, result.output
    assert f"Removed the stale lock held by pid {holder.pid}" in result.stdout
    assert not backend.lock_path.exists()
    assert "not locked" in unlock(backend).stdout


def test_unlock_removes_a_stale_lock_of_a_dead_pid_without_flock(
        backend: LocalStateFile, monkeypatch: pytest.MonkeyPatch) -> None:
    no_flock(monkeypatch)
    pid = dead_pid()
    write_lock(backend, pid)
    result = unlock(backend)
    assert result.exit_code == 0, result.output
    assert f"Removed the stale lock held by pid {pid}" in result.stdout
    assert not backend.lock_path.exists()


def test_unlock_without_flock_refuses_a_running_holder_and_sees_a_reused_pid(
        backend: LocalStateFile, holder: subprocess.Popen[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    no_flock(monkeypatch)
    refused = unlock(backend)
    assert refused.exit_code == 1 and backend.lock_path.exists()
    assert f"kill {holder.pid}" in refused.stderr
    # A lock taken long before that pid's process started: the pid was reused, the holder gone.
    write_lock(backend, holder.pid, started_at="2000-01-01T00:00:00Z")
    result = unlock(backend)
    assert result.exit_code == 0, result.output
    assert not backend.lock_path.exists()


def test_unlock_refuses_a_lock_from_another_host_unless_forced(backend: LocalStateFile) -> None:
    write_lock(backend, dead_pid(), host="ci-runner-7")
    refused = unlock(backend)
    assert refused.exit_code == 1
    assert backend.lock_path.exists()
    assert "on ci-runner-7" in refused.stderr and "another host" in refused.stderr
    assert "cannot be checked" in refused.stderr and "--force" in refused.stderr
    forced = unlock(backend, "--force")
    assert forced.exit_code == 0, forced.output
    assert "Removed the lock held by pid" in forced.stdout and "on ci-runner-7" in forced.stdout
    assert not backend.lock_path.exists()


def test_unlock_refuses_unreadable_holder_details_unless_forced(backend: LocalStateFile) -> None:
    backend.lock_path.write_text("garbage")
    refused = unlock(backend)
    assert refused.exit_code == 1 and backend.lock_path.exists()
    assert "--force" in refused.stderr
    assert unlock(backend, "--force").exit_code == 0
    assert not backend.lock_path.exists()
