"""Progress of apply: periodic lines when there is no terminal."""

from __future__ import annotations

import io
import os

import pytest

from reconciler.cli import streams
from reconciler.cli.progress import Progress


def test_without_a_terminal_progress_prints_periodic_lines_with_rate_and_eta(
        capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(200, terminal=False, interval=0)
    progress.advance(50)
    progress.advance(50)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("apply: 50/200 calls (25%), ")
    assert lines[1].startswith("apply: 100/200 calls (50%), ")
    assert "calls/s" in lines[1] and "ETA" in lines[1]


def test_lines_are_not_printed_more_often_than_the_interval(
        capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(1000, terminal=False, interval=3600)
    for _ in range(100):
        progress.advance(1)
    assert capsys.readouterr().err == ""


def test_on_a_terminal_a_bar_is_drawn(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("click._termui_impl.isatty", lambda stream: True)
    progress = Progress(10, terminal=True)
    progress.advance(5)
    progress.close()
    assert "apply" in capsys.readouterr().err


def test_a_pipe_whose_reader_left_is_sent_to_devnull_and_the_run_goes_on() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away (`| head`)
    streams.reset()
    with open(write_end, "w", encoding="utf-8") as pipe:
        progress = Progress(10, terminal=True, stream=pipe)  # the first draw meets the pipe
        for _ in range(10):
            progress.advance(1)  # each would raise BrokenPipeError unless sent elsewhere
        progress.close()
        assert streams.closed() == ["an output"]
        assert os.path.samestat(os.fstat(pipe.fileno()), os.stat(os.devnull))
    streams.reset()
    assert streams.closed() == []


def test_a_stream_that_is_no_file_stays_and_is_named_lost() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    streams.reset()
    progress = Progress(3, terminal=True, stream=Gone())
    progress.advance(3)
    progress.close()
    assert streams.closed() == ["an output"]
    streams.reset()
