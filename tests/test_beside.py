"""Work beside the main process: results and errors come back, a child never outlives its
use, and with one process the same work gives the same result."""

from __future__ import annotations

import os
import signal
import time

import pytest

from reconciler.beside import PROCESSES_VARIABLE, Beside
from reconciler.errors import BesideError, ConfigError, PlanFileError, Problem


class _Unpicklable(Exception):
    def __init__(self, handle: object) -> None:
        super().__init__("held a handle")
        self.handle = handle

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("cannot pickle")


@pytest.fixture(autouse=True)
def _forking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROCESSES_VARIABLE, raising=False)


def test_the_work_runs_in_another_process_and_its_result_comes_back() -> None:
    shared = list(range(100_000))  # the child sees it without a copy being passed
    with Beside(lambda: (os.getpid(), sum(shared))) as work:
        assert work.forked
        pid, total = work.result()
    assert pid != os.getpid()
    assert total == sum(shared)


def test_an_error_in_the_child_is_raised_in_the_parent_as_itself() -> None:
    def fail() -> None:
        raise PlanFileError("plan.json is not a valid saved plan: at /calls/7")

    with Beside(fail) as work, pytest.raises(PlanFileError, match="at /calls/7"):
        work.result()


def test_a_config_error_keeps_its_problems_across_processes() -> None:
    problems = [Problem("b.yaml", 3, 1, "second"), Problem("a.yaml", 1, 2, "first")]

    def fail() -> None:
        raise ConfigError(problems)

    with Beside(fail) as work, pytest.raises(ConfigError) as raised:
        work.result()
    assert raised.value.problems == sorted(problems)
    assert str(raised.value) == "configuration has 2 problems"


def test_an_error_that_does_not_pickle_is_told_by_its_type_and_line() -> None:
    def fail() -> None:
        raise _Unpicklable(object())

    with Beside(fail) as work, pytest.raises(BesideError) as raised:
        work.result()
    assert "internal error beside this process: _Unpicklable at test_beside.py:" in str(
        raised.value)
    assert "held a handle" not in str(raised.value)  # its message may hold any value


def test_a_child_that_dies_without_a_result_is_an_error_naming_how() -> None:
    with Beside(lambda: os.kill(os.getpid(), signal.SIGKILL)) as work, \
            pytest.raises(BesideError, match="killed by SIGKILL"):
        work.result()


def test_a_child_whose_result_is_not_taken_is_killed_and_reaped() -> None:
    work = Beside(lambda: time.sleep(600))
    assert work.forked
    pid = work._pid  # the test watches the child itself
    assert pid is not None
    started = time.monotonic()
    work.close()
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):  # reaped: no zombie is left
        os.waitpid(pid, os.WNOHANG)


def test_output_buffered_before_the_fork_is_written_once(
        capfd: pytest.CaptureFixture[str]) -> None:
    print("before", end="")
    with Beside(lambda: 1) as work:
        assert work.result() == 1
    print(" after")
    assert capfd.readouterr().out == "before after\n"


def test_with_one_process_the_work_runs_here_when_its_result_is_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROCESSES_VARIABLE, "1")
    ran: list[int] = []

    def work() -> int:
        ran.append(os.getpid())
        return 42

    beside = Beside(work)
    assert not beside.forked and ran == []
    assert beside.result() == 42
    assert ran == [os.getpid()]
    with pytest.raises(RuntimeError, match="already taken"):
        beside.result()
