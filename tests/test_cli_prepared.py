"""`plan` of a large configuration: its plans saved and rendered while the checks finish
beside it, and published only once they confirm the configuration; thrown away, and made
again from the checked configuration, when they do not."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from configgen import generate_config

from reconciler import atomic
from reconciler.atomic import Prepared
from reconciler.beside import PROCESSES_VARIABLE
from reconciler.cli import cli
from reconciler.cli import prepared as prepared_module
from reconciler.config import loader as loader_module
from reconciler.errors import ConfigError
from reconciler.render import formats as formats_module

ALIASED = "  u-a: &x {email: a@b.io}\n  u-b: *x\n"  # read only the precise way


@pytest.fixture(autouse=True)
def _assume_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROCESSES_VARIABLE, raising=False)
    monkeypatch.setattr(loader_module, "ASSUME_FROM", 0)


def run(tmp_path: Path, text: str, *extra: str, processes: str | None = None
        ) -> tuple[Any, Path]:
    config = tmp_path / "profiles.yaml"
    config.write_text(text)
    out = tmp_path / "out" / "plan.json"
    env = {PROCESSES_VARIABLE: processes} if processes else {}
    result = CliRunner().invoke(cli, ["plan", str(config), "--state", str(tmp_path / "s.json"),
                                      "--out", str(out), "--no-color", *extra], env=env)
    return result, out


def without_run_fields(document: bytes) -> list[Any]:
    """The lines of a saved plan or a JSON rendering, less what differs run by run."""
    lines = [orjson.loads(line.rstrip(b",").removesuffix(b',"calls":[') + b"}"
                          if line.endswith(b'"calls":[') else line.rstrip(b","))
             for line in document.splitlines()[:-1]]
    for field in ("plan_id", "created_at"):
        lines[0].pop(field)
    return lines


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


@pytest.mark.parametrize("text", [generate_config(40), generate_config(40) + ALIASED],
                         ids=["confirmed", "not confirmed"])
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_what_plan_saves_and_prints_is_what_one_process_saves_and_prints(
        tmp_path: Path, text: str, fmt: str) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    two, two_out = run(tmp_path / "two", text, "--format", fmt)
    one, one_out = run(tmp_path / "one", text, "--format", fmt, processes="1")
    assert two.exit_code == one.exit_code == 0, two.output + one.output
    assert without_run_fields(two_out.read_bytes()) == without_run_fields(one_out.read_bytes())
    if fmt == "json":
        assert without_run_fields(two.stdout_bytes) == without_run_fields(one.stdout_bytes)
    else:
        assert two.stdout.splitlines()[2:] == one.stdout.splitlines()[2:]
    assert leftovers(two_out.parent) == []


def test_a_plan_made_before_the_checks_refuse_the_configuration_is_never_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Path] = []
    real = prepared_module.prepare_plans

    def watched(*args: Any, **kwargs: Any) -> Any:
        checksum, prepared = real(*args, **kwargs)
        made.append(prepared._temp)  # the test watches the file held back
        return checksum, prepared

    monkeypatch.setattr(prepared_module, "prepare_plans", watched)
    result, out = run(tmp_path, generate_config(30) + "  u-x:\n    email: nope\n",
                      "--format", "json")
    assert result.exit_code == ConfigError.exit_code
    assert "is not a valid e-mail address" in result.output
    assert "\"calls\"" not in result.output
    assert made and not any(path is not None and path.exists() for path in made)
    assert not out.exists() and leftovers(out.parent) == []


def test_a_thrown_away_plan_leaves_nothing_and_the_plan_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    real = prepared_module.PreparedOutput.make

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(prepared_module.PreparedOutput, "make", counted)
    result, out = run(tmp_path, generate_config(30) + ALIASED, "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(made) == 2  # made on the assumed meaning, thrown away, made again
    assert out.exists() and leftovers(out.parent) == []


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named while waiting"])
def test_a_prepared_file_is_in_place_only_once_committed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool) -> None:
    if not unnamed:  # a file system without unnamed files: the content waits under a name
        monkeypatch.setattr(atomic, "_write_unnamed", lambda directory, data: None)
    target = tmp_path / "plan.json"
    target.write_bytes(b"old")
    prepared = Prepared(target, [b"new ", b"content"])
    assert target.read_bytes() == b"old"
    assert len(leftovers(tmp_path)) == (0 if unnamed else 1)
    prepared.commit()
    assert target.read_bytes() == b"new content" and leftovers(tmp_path) == []
    with pytest.raises(RuntimeError, match="already committed"):
        prepared.commit()
    thrown = Prepared(target, b"never")
    thrown.discard()
    thrown.discard()
    assert target.read_bytes() == b"new content" and leftovers(tmp_path) == []
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_a_run_stopped_before_its_plan_is_in_place_leaves_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(notes: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("reconciler.cli.planning.warn", interrupted)
    result, out = run(tmp_path, generate_config(30), "--format", "json")
    assert result.exit_code == 130, result.output
    assert not out.exists() and leftovers(out.parent) == []


def test_an_unnamed_file_the_system_will_not_name_is_committed_as_a_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox that refuses links through /proc: the content is copied under a name."""
    def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    target = tmp_path / "plan.json"
    content = [b"x" * (1 << 20), b"y" * 12345]  # more than one block of the copy
    prepared = Prepared(target, content)
    monkeypatch.setattr(atomic.os, "link", refused)
    prepared.commit()
    assert target.read_bytes() == b"".join(content) and leftovers(tmp_path) == []
    assert oct(target.stat().st_mode & 0o777) == "0o600"


_PREPARE_AND_WAIT = """
import sys, time
from pathlib import Path
from reconciler.atomic import Prepared
prepared = Prepared(Path(sys.argv[1]), [b"x" * 1000] * 1000)
print("prepared", flush=True)
time.sleep(60)
"""


def test_a_process_killed_while_its_prepared_file_waits_leaves_nothing(tmp_path: Path) -> None:
    """SIGKILL runs no clean-up: the file waiting for the checks must be unnamed."""
    target = tmp_path / "plan.json"
    process = subprocess.Popen([sys.executable, "-c", _PREPARE_AND_WAIT, str(target)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "prepared\n"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Render every JSON plan beside its save; whether each rendering ran in a child."""
    monkeypatch.setattr(prepared_module, "RENDER_BESIDE_FROM", 1)
    forked: list[bool] = []

    class Watched(prepared_module.Beside):  # type: ignore[type-arg]
        def result(self) -> Any:
            forked.append(self.forked)
            return super().result()

    monkeypatch.setattr(prepared_module, "Beside", Watched)
    return forked


def test_a_rendering_made_beside_the_save_ends_with_the_saved_plans_checksum(
        tmp_path: Path, forks: list[bool]) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    text = generate_config(40)
    two, two_out = run(tmp_path / "two", text, "--format", "json")
    assert forks == [True]
    one, _ = run(tmp_path / "one", text, "--format", "json", processes="1")
    assert two.exit_code == one.exit_code == 0, two.output + one.output
    assert without_run_fields(two.stdout_bytes) == without_run_fields(one.stdout_bytes)
    saved = two_out.read_bytes()
    assert two.stdout_bytes.splitlines()[-1] == saved.splitlines()[-1]
    assert b'"checksum":"sha256:0000' not in two.stdout_bytes
    shown = CliRunner().invoke(cli, ["show", str(two_out), "--no-color"])
    assert shown.exit_code == 0, shown.output


def test_a_rendering_made_beside_holds_each_pairs_digest(
        tmp_path: Path, forks: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # each pair's state in state/, of which there is none
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.yaml").write_text(generate_config(30, workspace="FYAAA00001"))
    (config / "b.yaml").write_text(generate_config(20, workspace="FYBBB00001", start=30))
    outputs = {}
    for processes in ("2", "1"):
        out = tmp_path / processes / "plan.json"
        result = CliRunner().invoke(cli, [
            "plan", str(config), "--out", str(out), "--format", "json", "--no-color"],
            env={PROCESSES_VARIABLE: processes})
        assert result.exit_code == 0, result.output
        outputs[processes] = result.stdout_bytes
    assert forks == [True]
    header = orjson.loads(outputs["2"].split(b"\n")[0].removesuffix(b',"calls":[') + b"}")
    digests = [pair["config_digest"] for pair in header["pairs"]]
    assert len(set(digests)) == 2 and all(len(digest) == 71 for digest in digests)
    assert b"unknown" not in outputs["2"]
    assert without_run_fields(outputs["2"]) == without_run_fields(outputs["1"])


@pytest.mark.parametrize("failing_part", ["first, beside", "last, here"])
def test_a_rendering_that_fails_beside_the_save_leaves_no_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[bool],
        failing_part: str) -> None:
    real = formats_module.write_json

    def failing(*args: Any, part: range | None = None, **kwargs: Any) -> None:
        assert part is not None and part.stop > 0
        if (part.start == 0) == (failing_part == "first, beside"):
            raise OSError(28, "No space left on device")
        real(*args, part=part, **kwargs)

    monkeypatch.setattr(formats_module, "write_json", failing)
    result, out = run(tmp_path, generate_config(40), "--format", "json")
    assert forks == ([True] if failing_part == "first, beside" else [])
    assert result.exit_code != 0
    assert "No space left on device" in result.output
    assert not out.exists() and leftovers(out.parent) == []
