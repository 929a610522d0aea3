"""Fuzzing the options of `validate` and `plan`: every run ends in 0, 1 or 2, never a crash.

Generated command lines mix real inputs (examples/basic and examples/mass-delete, copied)
with nonexistent paths, directories, special files (a FIFO, devices), hostile YAML, odd
option values (`--max-delete-percent` garbage, `--target` with control characters or
thousands of characters, `--format` garbage) and odd FYNO_WSID / FYNO_VERSION values (the
loader's fallbacks; no command here calls the API: `--refresh` is never given). The
property: the exit code is 0, 1 or 2 (2 only for `plan --detailed-exitcode`), and the output
never says "internal error" nor shows a traceback.

The number of examples comes from the hypothesis profile (tests/conftest.py):
    HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz_*.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Real command lines and environments hold no NUL (the kernel ends each string at one) and
# no surrogates but those of undecodable bytes (surrogateescape: U+DC80 to U+DCFF, as in
# "\udcff.yaml" below), which an environment variable cannot be set to here.
arguments = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    max_size=20)


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs of every kind, in a folder that the runs may not write to the repository from."""
    root = tmp_path_factory.mktemp("arena")
    for example in ("basic", "mass-delete"):
        shutil.copytree(EXAMPLES / example, root / example)
    (root / "hostile.yaml").write_text(
        'workspace: "FY\\0X"\nprofiles:\n  ? ' + "u" * 3000 + "\n  : {sms: " + "9" * 5000
        + "}\n  u-2: &a [*a]\n", encoding="utf-8")
    (root / "empty").mkdir()
    (root / "tree" / "sub" / ".hidden").mkdir(parents=True)
    (root / "tree" / "sub" / "a.YML").write_text("workspace: FYFUZZ0001\nprofiles:\n  u-1: {}\n")
    (root / "tree" / "sub" / ".hidden" / "b.yaml").write_text("profiles: {u-1: {}}\n")
    (root / "tree" / "loop").symlink_to(root / "tree", target_is_directory=True)
    os.mkfifo(root / "fifo.yaml")
    return root


def _paths(root: Path) -> st.SearchStrategy[str]:
    known = [
        root / "basic", root / "basic" / "profiles.yaml", root / "mass-delete", root / "tree",
        root / "hostile.yaml", root / "empty", root / "missing.yaml", root / "fifo.yaml",
        root / "basic" / "state.json", root, Path(os.devnull), Path("/dev/zero"),
    ]
    odd = [".", "-", "", "--", "\udcff.yaml", str(root / "basic") + "/\udcff"]
    return st.one_of(st.sampled_from([str(path) for path in known] + odd), arguments)


def _relative(text: str) -> str:
    """A generated file name that stays inside the run's isolated folder."""
    return "out-" + text.replace("/", "_").replace("\\", "_")


def _environment() -> st.SearchStrategy[dict[str, str | None]]:
    return st.fixed_dictionaries({
        "FYNO_WSID": st.one_of(st.none(), st.sampled_from(["FYDEMO0001", "", "a/b", "W" * 60]),
                               arguments),
        "FYNO_VERSION": st.one_of(st.none(), st.sampled_from(["live", "test", "prod", ""]),
                                  arguments),
    })


def _options(root: Path) -> st.SearchStrategy[list[list[str]]]:
    """(option, value) pairs of `plan`, each in a list, to be shuffled into a command line."""
    state = st.one_of(
        st.sampled_from([str(root / "basic" / "state.json"), str(root / "mass-delete" /
                         "state.json"), str(root / "nowhere" / "state.json"), str(root),
                         os.devnull, str(root / "hostile.yaml")]),
        arguments.map(_relative),
    )
    percent = st.one_of(
        st.floats().map(repr), arguments,
        st.sampled_from(["nan", "-nan", "inf", "-1", "101", "1e400", "", " 5 ", "0x10", "٣",
                         "5%", "30"]),
    )
    formats = st.one_of(st.sampled_from(["text", "json", "markdown", "TEXT", "html", ""]),
                        arguments)
    targets = st.one_of(arguments, st.sampled_from(["u-1001", "u-1003", "x" * 5000, "\x1b[2J",
                                                    "a\nb", "../x", "%00"]))
    out = st.one_of(st.sampled_from(["plan.json", "missing/plan.json", str(root)]),
                    arguments.map(_relative))
    option = st.one_of(
        state.map(lambda value: ["--state", value]),
        percent.map(lambda value: ["--max-delete-percent", value]),
        formats.map(lambda value: ["--format", value]),
        targets.map(lambda value: ["--target", value]),
        out.map(lambda value: ["--out", value]),
        st.sampled_from([["--detailed-exitcode"], ["--force"], ["--show-values"],
                         ["--no-color"], ["--max-delete-percent"], ["--target"], ["--bogus"]]),
    )
    return st.lists(option, max_size=6)


def _check(args: list[str], env: dict[str, str | None], root: Path) -> None:
    runner = CliRunner()
    environment = {"FYNO_API_KEY": None, "FYNO_BASE_URL": None, "RECONCILER_BACKEND": None,
                   **env}
    # A folder of its own as the working directory: for the default state/ and --out files.
    with tempfile.TemporaryDirectory(dir=root) as folder, contextlib.chdir(folder):
        result = runner.invoke(cli, args, env=environment)
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert result.exit_code in (0, 1, 2), output
    if result.exit_code == 2:
        assert args[0] == "plan" and "--detailed-exitcode" in args, output
    assert "internal error" not in output, output
    assert "Traceback" not in output, output


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validate_with_any_paths_and_fallbacks_exits_0_or_1(
    data: st.DataObject, arena: Path
) -> None:
    paths = data.draw(st.lists(_paths(arena), min_size=0, max_size=3), label="paths")
    env = data.draw(_environment(), label="env")
    _check(["validate", *paths], env, arena)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_plan_with_any_options_exits_0_1_or_2(data: st.DataObject, arena: Path) -> None:
    paths = data.draw(st.lists(_paths(arena), min_size=1, max_size=2), label="paths")
    options = data.draw(_options(arena), label="options")
    env = data.draw(_environment(), label="env")
    args = ["plan", *paths]
    for option in options:
        args.extend(option)
    if data.draw(st.booleans(), label="options first"):
        args = ["plan", *[token for option in options for token in option], *paths]
    _check(args, env, arena)
