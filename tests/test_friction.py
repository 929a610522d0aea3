"""Rough edges found by trying the CLI as a new user would (issue 14), each pinned by a test.

Packaging and the README's instructions, messages about YAML nulls and FYNO_VERSION (a tab
that indents is in `test_config.py`'s fixtures), `state
list` without a state, masked changes whose sides look alike, `apply` of a saved plan with
other paths, counts in words, and the progress bar on a narrow terminal.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli.progress import CLEAR_TO_END, Progress, bar_line
from reconciler.config import load_config
from reconciler.drift import DriftReport, compare
from reconciler.errors import ConfigError
from reconciler.mask import display_pair
from reconciler.model import ChannelData, Token
from reconciler.render import render_drift
from reconciler.render.common import noun, plural

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def run(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env)


LINEAGE = "6f1c1f0e-8a8e-4b8e-9a55-0f5a1f7c1001"


def write_state(path: Path, profiles: dict[str, dict[str, str]]) -> Path:
    """A saved state of workspace FYW (live) recording `profiles`."""
    path.write_text(json.dumps({"format_version": 1, "lineage": LINEAGE, "serial": 1,
                                "workspace": "FYW", "version": "live", "profiles": profiles}))
    return path


# -- packaging ----------------------------------------------------------------------------------

def distribution() -> dict[str, object]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project, dict)
    return project


def test_the_distribution_has_a_name_of_its_own_and_installs_the_reconciler_command() -> None:
    project = distribution()
    # `reconciler` on PyPI is an unrelated project (a pandas DataFrame utility).
    assert project["name"] == "fyno-reconciler"
    assert project["scripts"] == {"reconciler": "reconciler.cli:main"}


def install_instructions() -> list[tuple[Path, str]]:
    """Each requirement a README, an example or a CI file tells pip to install: the words
    after `pip install` (options left out) and the values of RECONCILER_PACKAGE."""
    found: list[tuple[Path, str]] = []
    files = [README, *(path for path in EXAMPLES.rglob("*") if path.is_file())]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for line in text.splitlines():
            for words in re.findall(r"pip install ([^`#;&|]*)", line):
                found += [(path, word) for word in shlex.split(words)
                          if not word.startswith(("-", "$"))]
            found += [(path, value) for value in
                      re.findall(r"RECONCILER_PACKAGE:\s*\"([^\"]+)\"", line)]
    return found


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[=<>~!@;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_no_instruction_tells_pip_to_install_the_unrelated_reconciler() -> None:
    instructions = install_instructions()
    assert any(path.name in ("reconciler.yml", ".gitlab-ci.yml") for path, _ in instructions)
    for path, requirement in instructions:
        if requirement.startswith(".") or "/" in requirement.split("@")[0]:
            continue  # a checkout (`pip install -e .`), not a name on an index
        assert requirement_name(requirement) == "fyno-reconciler", (path, requirement)


def test_the_readme_documents_shell_completion_that_works() -> None:
    shells = re.findall(r"_RECONCILER_COMPLETE=(\w+)_source reconciler", README.read_text())
    assert set(shells) == {"bash", "zsh", "fish"}
    for shell in shells:
        result = CliRunner().invoke(cli, [], prog_name="reconciler",
                                    env={"_RECONCILER_COMPLETE": f"{shell}_source"})
        assert result.exit_code == 0, result.output
        assert "_RECONCILER_COMPLETE" in result.output and "reconciler" in result.output


# -- the README can be followed in order ---------------------------------------------------------

def shell_lines(path: Path, *, walkthroughs: bool = False) -> list[str]:
    """The lines of the shell blocks of `path`; `walkthroughs`: of the README, only the
    blocks that run against a sandbox (the others list commands for reference)."""
    return [line for block in SH_BLOCK.findall(path.read_text())
            if not walkthroughs or path != README or "export FYNO_BASE_URL=" in block
            for line in block.splitlines()]


def test_the_venv_is_activated_before_the_readme_runs_reconciler() -> None:
    lines = shell_lines(README)
    first = next(index for index, line in enumerate(lines) if line.startswith("reconciler "))
    assert any(". .venv/bin/activate" in line for line in lines[:first])


WRITES_STATE = re.compile(r"^reconciler (import|apply|refresh|state rm|audit erase)\b")


@pytest.mark.parametrize("path", [README, *sorted(EXAMPLES.glob("*/README.md"))],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_each_walkthrough_has_its_own_state_and_stops_its_sandbox(path: Path) -> None:
    """Every example uses workspace FYDEMO0001 and port 8080: a walkthrough that writes the
    default state, or starts a sandbox, in a shared directory would meet another's."""
    lines = shell_lines(path, walkthroughs=True)
    assert lines
    for index, line in enumerate(lines):
        if WRITES_STATE.match(line):
            assert any('cd "$(mktemp -d)"' in earlier for earlier in lines[:index]), line
        if line.startswith("reconciler sandbox"):
            assert "sandbox=$!" in line
            assert any(later.startswith("kill $sandbox") for later in lines[index:]), path


# -- messages --------------------------------------------------------------------------------

def only_problem(tmp_path: Path, text: str, **fallbacks: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config([path], **fallbacks)
    (problem,) = caught.value.problems
    return problem.message


def test_a_tilde_null_suggests_the_empty_string_not_a_quoted_tilde(tmp_path: Path) -> None:
    message = only_problem(tmp_path, "workspace: FYW\nprofiles:\n  u-1:\n    email: ~\n")
    assert message == ('email: ~ is read by YAML as null, not text; write email: "" to declare '
                       'it empty')
    assert '"~"' not in message


def test_fyno_version_that_disagrees_with_the_files_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("workspace: FYW\nversion: live\nprofiles: {}\n")
    result = run("validate", path, env={"FYNO_VERSION": "test", "FYNO_WSID": None})
    assert result.exit_code == 1
    assert 'version "live" disagrees with "test" from FYNO_VERSION' in result.output
    assert run("validate", path, env={"FYNO_VERSION": "live"}).exit_code == 0


# -- state list / show ---------------------------------------------------------------------------

def test_state_list_without_a_state_says_how_to_name_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("state", "list", env={"FYNO_WSID": "FYNONE0001", "RECONCILER_BACKEND": None})
    assert result.exit_code == 1
    assert "no state at state/FYNONE0001-live.json" in result.output
    assert "--state FILE" in result.output and "RECONCILER_BACKEND" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["state", "list"], ["state", "show", "u-1"]])
def test_state_naming_a_missing_file_is_an_error_naming_it(tmp_path: Path,
                                                           command: list[str]) -> None:
    missing = tmp_path / "typo.json"
    result = run(*command, "--state", missing)
    assert result.exit_code == 1
    assert f"--state names no state: {missing} does not exist" in result.output
    assert not missing.exists()


def test_state_list_of_a_saved_empty_state_is_empty_not_an_error(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state.json", {})
    result = run("state", "list", "--state", state)
    assert (result.exit_code, result.output) == (0, "")


# -- masked changes whose sides look alike -----------------------------------------------------

ALIKE = {"email": ("u1@example.com", "u2@example.com", "u•••@example.com"),
         "sms": ("+919879000000", "+919800000000", "+91•••••0000")}
FINGERPRINTED = re.compile(r"(\S+)#([0-9a-f]{4}) -> (\S+)#([0-9a-f]{4})")


def assert_told_apart(output: str, masked: str, values: tuple[str, str]) -> None:
    found = [match for match in FINGERPRINTED.finditer(output) if match.group(1) == masked]
    assert found, output
    for match in found:
        assert match.group(3) == masked and match.group(2) != match.group(4)
    assert not any(value in output for value in values)


@pytest.fixture
def alike(tmp_path: Path) -> tuple[Path, Path]:
    """A configuration and a state whose email and sms change to values that mask alike."""
    before = {channel: pair[0] for channel, pair in ALIKE.items()}
    after = {channel: pair[1] for channel, pair in ALIKE.items()}
    state = write_state(tmp_path / "state.json", {"u-1": before})
    config = tmp_path / "p.yaml"
    config.write_text("workspace: FYW\nprofiles:\n  u-1:\n"
                      + "".join(f'    {channel}: "{value}"\n' for channel, value in after.items()))
    return config, state


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_a_plan_tells_apart_two_values_that_mask_alike(alike: tuple[Path, Path],
                                                        fmt: str) -> None:
    config, state = alike
    result = run("plan", config, "--state", state, "--format", fmt, "--no-color")
    assert result.exit_code == 0, result.output
    for channel, (old, new, masked) in ALIKE.items():
        assert_told_apart(result.output, masked, (old, new))
        assert f"{channel}: {masked}#" in result.output
    shown = run("plan", config, "--state", state, "--format", fmt, "--show-values").output
    assert "u2@example.com" in shown and FINGERPRINTED.search(shown) is None


def drift_of(channel: str) -> DriftReport:
    old, new, _ = ALIKE[channel]
    profile = compare("u-1", ChannelData.from_json({channel: old}),
                      ChannelData.from_json({channel: new}))
    assert profile is not None
    return DriftReport("FYW", "live", (profile,), checked=1)


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("channel", sorted(ALIKE))
def test_drift_tells_apart_two_values_that_mask_alike(fmt: str, channel: str) -> None:
    old, new, masked = ALIKE[channel]
    assert_told_apart(render_drift(drift_of(channel), fmt), masked, (old, new))


def test_drift_json_tells_apart_two_values_that_mask_alike() -> None:
    old, new, masked = ALIKE["email"]
    document = json.loads(render_drift(drift_of("email"), "json"))
    (change,) = document["profiles"][0]["changes"]
    assert change["before"].startswith(masked + "#") and change["after"].startswith(masked + "#")
    assert change["before"] != change["after"]
    assert old not in json.dumps(document) and new not in json.dumps(document)


def test_only_masks_that_are_equal_get_a_fingerprint() -> None:
    assert display_pair("email", "alice@example.com", "bob@example.com") == (
        "a•••@example.com", "b•••@example.com")
    assert display_pair("email", "u1@x.io", "u2@x.io", show_values=True) == ("u1@x.io", "u2@x.io")
    old, new = (Token("fcm_token:ab1234f3"), Token("fcm_token:ab9876f3"))
    shown = display_pair("push", old, new)
    assert shown[0].startswith("fcm_token:ab…f3#") and shown[1].startswith("fcm_token:ab…f3#")
    assert shown[0] != shown[1]


def test_a_value_keeps_its_fingerprint_throughout_a_run() -> None:
    first = display_pair("email", "u1@example.com", "u2@example.com")
    again = display_pair("email", "u3@example.com", "u1@example.com")
    assert first[0] == again[1]


# -- apply of a saved plan with other paths -----------------------------------------------------

@pytest.mark.parametrize("order", ["plan first", "plan last"])
def test_a_saved_plan_is_applied_alone(tmp_path: Path, order: str) -> None:
    shutil.copytree(EXAMPLES / "basic", tmp_path / "basic")
    plan, config = tmp_path / "plan.json", tmp_path / "basic" / "profiles.yaml"
    plan.write_text("{}")
    paths = [plan, config] if order == "plan first" else [config, plan]
    result = run("apply", *paths, env={"FYNO_API_KEY": None})
    assert result.exit_code == 1
    assert f"{plan} is a saved plan, and a saved plan is applied alone" in result.output
    assert f"`reconciler apply {plan}`" in result.output
    assert "profiles:" not in result.output  # not read as YAML


# -- counts in words --------------------------------------------------------------------------

def test_counts_are_singular_for_one_and_plural_otherwise() -> None:
    assert [plural(count, "call") for count in (0, 1, 2)] == ["0 calls", "1 call", "2 calls"]
    assert plural(1, "recorded entry", "recorded entries") == "1 recorded entry"
    assert plural(3, "recorded entry", "recorded entries") == "3 recorded entries"
    assert (noun(1, "is", "are"), noun(2, "is", "are")) == ("is", "are")


def test_a_plan_of_one_call_on_one_profile_says_so(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state.json", {"u-1": {"slack": "U024BE7LH"}})
    config = tmp_path / "p.yaml"
    config.write_text("workspace: FYW\nprofiles:\n  u-1: {}\n")
    output = run("plan", config, "--state", state).output
    assert "(1 recorded entry)." in output
    assert "in 1 call across 1 profile." in output


# -- the progress bar -------------------------------------------------------------------------

def redraws(text: str) -> list[str]:
    """What each redraw of the bar left on the terminal's row."""
    return [part.replace(CLEAR_TO_END, "") for part in text.rstrip("\n").split("\r") if part]


@pytest.mark.parametrize("columns", [20, 40, 120])
def test_the_bar_fits_the_terminal_and_redraws_in_place(
        monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr("reconciler.cli.progress.REDRAW_EVERY", 0.0)
    out = io.StringIO()
    progress = Progress(100_000, terminal=True, stream=out, label="apply")
    for _ in range(4):
        progress.advance(25_000)
    progress.close()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # only the line that ends the bar
    lines = redraws(text)
    assert len(lines) >= 5
    assert all(len(line) <= columns - 1 for line in lines), lines
    assert "100%" in lines[-1]


def test_the_bar_follows_a_terminal_made_narrower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reconciler.cli.progress.REDRAW_EVERY", 0.0)
    out = io.StringIO()
    monkeypatch.setenv("COLUMNS", "80")
    progress = Progress(10, terminal=True, stream=out)
    progress.advance(5)
    monkeypatch.setenv("COLUMNS", "20")
    progress.advance(1)
    progress.close()
    widths = [len(line) for line in redraws(out.getvalue())]
    assert widths[1] > 19 >= max(widths[2:])


@pytest.mark.parametrize("width", [0, 1, 10, 19, 39, 79])
def test_a_bar_line_is_never_wider_than_asked(width: int) -> None:
    for done in (0, 1, 49_999, 100_000):
        assert len(bar_line("apply", done, 100_000, 1234.5, width)) <= width


def test_state_show_tells_apart_two_tokens_that_mask_alike(tmp_path: Path) -> None:
    alike = ["fcm_token:ab0000000000f3", "fcm_token:ab1111111111f3"]  # both fcm_token:ab…f3
    state = tmp_path / "state.json"
    write_state(state, {"u-1": {"push": [{"token": token, "status": 1} for token in alike]
                                + [{"token": "fcm_token:zz9999999999yy", "status": 1}]}})
    result = run("state", "show", "u-1", "--state", state)
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if "push:" in line]
    marks = [re.fullmatch(r"push: fcm_token:ab…f3#([0-9a-f]{4})", line) for line in lines[:2]]
    assert all(marks) and marks[0].group(1) != marks[1].group(1), result.output  # type: ignore[union-attr]
    assert lines[2] == "push: fcm_token:zz…yy"  # a mask of its own: no fingerprint
    assert not any(token in result.output for token in alike)
