"""Work run beside the main process, on the machine's other core.

`beside(work)` forks: the child runs `work()` and sends its result back, pickled, through a
pipe, while the parent goes on with its own share; `result()` waits for it. The child sees
the parent's memory as it was at the fork (copy-on-write), so its input costs nothing to
pass; its result is copied, so only work whose result is small pays: text rendered, a
verdict, counts. Building objects for the parent to use does not: unpickling them costs
about what building them does.

Bounds and failure:
- the child ends with `os._exit`: it never returns into the caller's code, runs no
  `finally` or `atexit` of the parent's, and flushes none of the stdio buffers it shares;
- an exception in the child is raised again by `result()` (as itself when it pickles, which
  every `ReconcilerError` does), so the child's problems are reported as the parent's;
- a child that dies without a result (killed, out of memory) makes `result()` raise
  `BesideError`; a parent that leaves without asking (an error, Ctrl-C) kills and reaps
  the child on `close()`; a parent that is killed takes the child with it (Linux's
  parent-death signal), and otherwise the child's write fails and it ends;
- no fork where there is none (Windows), on one core, or with `RECONCILER_PROCESSES=1`:
  `work()` then runs in the parent when `result()` is first asked for, with the same result.

Fork only where no thread runs and no lock is held: a child inherits neither threads nor a
way to release the parent's locks (file locks on shared descriptors included).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from reconciler.errors import BesideError, bug_location

T = TypeVar("T")

PROCESSES_VARIABLE: Final = "RECONCILER_PROCESSES"
"""Set to 1 to keep every command in one process (the results are the same)."""

_PR_SET_PDEATHSIG: Final = 1


def can_fork() -> bool:
    """Whether work may run in a second process here."""
    if os.environ.get(PROCESSES_VARIABLE, "").strip() == "1":
        return False
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1


class Beside(Generic[T]):
    """`work()` running in a child process, or deferred to `result()` without a fork."""

    def __init__(self, work: Callable[[], T], *, fork: bool | None = None) -> None:
        self._work: Callable[[], T] | None = work
        self._pid: int | None = None
        self._fd: int | None = None
        if can_fork() if fork is None else fork:
            self._start(work)

    @property
    def forked(self) -> bool:
        return self._pid is not None

    def _start(self, work: Callable[[], T]) -> None:
        parent = os.getpid()
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns from here
            os.close(read_end)
            _run_child(work, write_end, parent)
        os.close(write_end)
        self._pid, self._fd = pid, read_end
        self._work = None  # the child has it: what only it needs may be freed here

    def result(self) -> T:
        """The work's result (once: the child is reaped); its exception raised here."""
        if self._pid is None:
            work, self._work = self._work, None
            if work is None:
                raise RuntimeError("the result of work beside was already taken")
            return work()
        assert self._fd is not None
        with open(self._fd, "rb", closefd=True) as pipe:
            self._fd = None
            payload = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not payload:
            raise BesideError(f"the process working beside this one ended without a result "
                              f"({_ended(status)}); run again, or set "
                              f"{PROCESSES_VARIABLE}=1 to use one process")
        succeeded, value = pickle.loads(payload)
        if not succeeded:
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the child, if its result was not taken."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def beside(work: Callable[[], T]) -> Beside[T]:
    """Start `work` beside this process; see the module docstring."""
    return Beside(work)


def _run_child(work: Callable[[], Any], write_end: int, parent: int) -> None:
    code = 0
    try:
        gc.disable()  # nothing it builds outlives it, and a collection would copy every page
        _die_with(parent)
        try:
            payload = pickle.dumps((True, work()), pickle.HIGHEST_PROTOCOL)
        except BaseException as error:  # every failure goes to the parent
            payload = _failure(error)
        with open(write_end, "wb", closefd=True) as pipe:
            pipe.write(payload)
    except BaseException:  # the parent is gone: nothing is left to tell
        code = 1
    finally:
        os._exit(code)


def _failure(error: BaseException) -> bytes:
    try:
        return pickle.dumps((False, error), pickle.HIGHEST_PROTOCOL)
    except Exception:  # one that does not pickle (a bug: every ReconcilerError does)
        return pickle.dumps((False, BesideError(
            f"internal error beside this process: {bug_location(error)}; run again with "
            f"{PROCESSES_VARIABLE}=1 and --debug for the traceback, and please report it")),
            pickle.HIGHEST_PROTOCOL)


def _die_with(parent: int) -> None:
    """Ask Linux to kill this child when its parent dies; end now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"killed by {name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
