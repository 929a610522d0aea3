"""Specifications of the CLI's plumbing: one settings object per run, the variables shown by
`--help`, the parameter source telling a typed option from a default or a variable, and one
registry of output formats for plans and drift alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.api import DEFAULT_BASE_URL
from reconciler.cli import cli
from reconciler.cli import options as cli_options
from reconciler.drift import DriftReport
from reconciler.model import ChannelData
from reconciler.plan import Plan
from reconciler.planner import diff
from reconciler.render import render, render_drift
from reconciler.render.formats import FORMATS, JSON, TEXT

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Nothing of the developer's environment leaks into a run.
CLEAN = {"FYNO_WSID": None, "FYNO_VERSION": None, "FYNO_BASE_URL": None,
         "RECONCILER_ACTOR": None, "RECONCILER_BACKEND": None, "NO_COLOR": None}


def run(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env={**CLEAN, **(env or {})})


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    """A private copy of examples/basic, so that tests may write its state."""
    target = tmp_path / "basic"
    shutil.copytree(EXAMPLES / "basic", target)
    return target


@pytest.fixture
def two_workspaces(tmp_path: Path) -> Path:
    """Files declaring two workspaces, and one stating none."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "a.yaml").write_text("workspace: FYAAAA0001\nprofiles:\n  u-1: {}\n")
    (folder / "b.yaml").write_text("workspace: FYBBBB0002\nprofiles:\n  u-2: {}\n")
    return folder


# --- the variables, shown by --help ---------------------------------------------------------

def test_plan_help_shows_the_variables_of_its_options() -> None:
    shown = run("plan", "--help").output
    for variable in ("FYNO_WSID", "FYNO_VERSION", "FYNO_BASE_URL"):
        assert f"[env var: {variable}]" in " ".join(shown.split()), variable
    assert DEFAULT_BASE_URL in shown


def test_group_help_shows_the_run_variables_and_names_the_api_key_without_an_option() -> None:
    shown = run("--help").output
    flat = " ".join(shown.split())
    for variable in ("RECONCILER_BACKEND", "RECONCILER_LOCK_TIMEOUT", "RECONCILER_ACTOR",
                     "RECONCILER_ENCRYPTION_KEY"):
        assert f"env var: {variable}" in flat, variable
    assert "FYNO_API_KEY" in shown  # in the epilog: never an option, never on a command line
    assert "--api-key" not in shown


def test_state_commands_name_their_pair_from_the_variables_too() -> None:
    flat = " ".join(run("state", "list", "--help").output.split())
    assert "[env var: FYNO_WSID]" in flat and "[env var: FYNO_VERSION]" in flat


# --- FYNO_WSID is the pair of files that state none; --workspace filters -------------------

def test_fyno_wsid_disagreeing_with_a_file_is_an_error(two_workspaces: Path) -> None:
    result = run("validate", two_workspaces, env={"FYNO_WSID": "FYBBBB0002"})
    assert result.exit_code == 1
    assert "FYAAAA0001" in result.output and "FYNO_WSID" in result.output


def test_workspace_on_the_command_line_chooses_among_the_declared_pairs(
    two_workspaces: Path,
) -> None:
    result = run("validate", two_workspaces, "--workspace", "FYBBBB0002")
    assert result.exit_code == 0, result.output
    assert "workspace FYBBBB0002" in result.output
    assert "FYAAAA0001" not in result.output


def test_workspace_on_the_command_line_leaves_fyno_wsid_unread(two_workspaces: Path) -> None:
    # Read, FYNO_WSID would make both files disagree with it.
    result = run("validate", two_workspaces, "--workspace", "FYAAAA0001",
                 env={"FYNO_WSID": "FYCCCC0003"})
    assert result.exit_code == 0, result.output
    assert "workspace FYAAAA0001" in result.output


def test_fyno_wsid_is_the_workspace_of_files_that_state_none(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("profiles:\n  u-1: {}\n")
    result = run("validate", tmp_path / "p.yaml", env={"FYNO_WSID": "FYDDDD0004"})
    assert result.exit_code == 0, result.output
    assert "workspace FYDDDD0004, version live" in result.output


def test_a_bad_fyno_version_is_the_loaders_problem_and_a_bad_version_clicks(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.yaml").write_text("workspace: FY1\nprofiles:\n  u-1: {}\n")
    from_environment = run("validate", tmp_path / "p.yaml", env={"FYNO_VERSION": "prod"})
    assert from_environment.exit_code == 1
    assert "FYNO_VERSION: must be live or test, not 'prod'" in from_environment.output
    typed = run("validate", tmp_path / "p.yaml", "--version", "prod")
    assert typed.exit_code == 1
    assert "Invalid value for '--version'" in typed.output


# --- settings given before or after the command name fill the same object ------------------

def test_no_color_before_or_after_the_command(basic: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_options, "is_terminal", lambda: True)
    args = ("plan", basic, "--state", basic / "state.json")
    assert "\x1b[" in run(*args).output
    assert "\x1b[" not in run("--no-color", *args).output
    assert "\x1b[" not in run(*args, "--no-color").output


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_command_shows_the_traceback(where: str) -> None:
    args = ["state", "list"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    result = run(*args)
    assert result.exit_code == 1
    assert "Traceback" in result.output
    assert "Traceback" not in run("state", "list").output


def test_actor_option_is_who_the_ledger_names(basic: Path) -> None:
    state = basic / "state.json"
    removed = run("--actor", "release-bot", "state", "rm", "u-1003", "--state", state,
                  env={"RECONCILER_ACTOR": "someone-else"})
    assert removed.exit_code == 0, removed.output
    records = run("audit", "--state-dir", basic, "--format", "json")
    assert records.exit_code == 0, records.output
    actors = {json.loads(line)["actor"] for line in records.output.splitlines() if line}
    assert actors == {"release-bot"}


def test_base_url_option_and_variable_name_the_same_api(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/v1"  # nothing listens: doctor says so, and which URL it used
    env = {"FYNO_API_KEY": "k", "FYNO_WSID": "FYX", "RECONCILER_RETRY_BASE": "0"}
    state = tmp_path / "none.json"
    typed = run("doctor", "--base-url", url, "--state", state, env=env)
    exported = run("doctor", "--state", state, env={**env, "FYNO_BASE_URL": url})
    for result in (typed, exported):
        assert result.exit_code == 1
        assert f"ok   base URL: {url}" in result.output


# --- the parameter source, not a comparison with the default -------------------------------

@pytest.mark.parametrize("option", [("--max-delete-percent", "30"), ("--workspace", "FYDEMO0001"),
                                    ("--force",)])
def test_a_saved_plan_refuses_a_shaping_option_even_at_its_default(
    basic: Path, tmp_path: Path, option: tuple[str, ...],
) -> None:
    saved = tmp_path / "plan.json"
    assert run("plan", basic, "--state", basic / "state.json", "--out", saved).exit_code == 0
    result = run("apply", saved, *option, env={"FYNO_API_KEY": "k"})
    assert result.exit_code == 1
    assert "a saved plan is applied exactly as it was saved" in result.output


def test_a_saved_plan_is_not_refused_for_fyno_wsid_in_the_environment(
    basic: Path, tmp_path: Path,
) -> None:
    saved = tmp_path / "plan.json"
    assert run("plan", basic, "--state", basic / "state.json", "--out", saved).exit_code == 0
    result = run("apply", saved, "--state", basic / "state.json",
                 env={"FYNO_API_KEY": "k", "FYNO_WSID": "FYDEMO0001",
                      "FYNO_BASE_URL": "http://127.0.0.1:9/v1", "RECONCILER_RETRY_BASE": "0"})
    assert "shape a new plan" not in result.output
    assert "Applying the saved plan" in result.output  # it got as far as the calls


def test_per_file_at_its_default_still_needs_a_directory(tmp_path: Path) -> None:
    result = run("export", "--id", "u-1", "--per-file", "1000",
                 env={"FYNO_API_KEY": "k", "FYNO_WSID": "FYX"})
    assert result.exit_code == 1
    assert "--per-file splits a directory export" in result.output


# --- one registry of output formats ---------------------------------------------------------

def a_plan() -> Plan:
    calls = diff({"u1": ChannelData.from_json({"email": "alice@example.com"})}, {})
    return Plan(plan_id="p-1", created_at="2024-05-01T10:00:00Z", workspace="FYTEST0001",
                version="live", lineage=None, serial=0, config_digest="sha256:00",
                recorded_entries=0, calls=calls)


def test_plan_show_and_refresh_offer_every_format_of_the_registry() -> None:
    choices = "[" + "|".join(FORMATS) + "]"
    for command in ("plan", "show", "refresh"):
        assert f"--format {choices}" in run(command, "--help").output, command


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_renders_plans_and_drift_reports(name: str) -> None:
    output = FORMATS[name]
    report = DriftReport("FYTEST0001", "live", (), checked=2)
    for rendered in (output.plans([a_plan()], False, False), output.drift([report], False, False),
                     output.drift([report, report], False, False)):
        assert rendered.endswith("\n") and not rendered.endswith("\n\n"), name
    assert output.plans([a_plan()], False, False) == render(a_plan(), name)
    assert output.drift([report], False, False) == render_drift(report, name)


def test_only_json_streams_and_its_stream_is_its_rendering() -> None:
    import io

    assert [name for name, output in FORMATS.items() if output.write_plans] == ["json"]
    assert JSON.write_plans is not None and TEXT.write_plans is None
    stream = io.BytesIO()
    JSON.write_plans([a_plan()], stream, False, None, None)
    assert stream.getvalue().decode() == JSON.plans([a_plan()], False, False)
