"""The command line as users see it: output, messages and exit codes (CliRunner)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.cli import options as cli_options
from reconciler.config import config_digest, load_config
from reconciler.config import loader as loader_module
from reconciler.plan import call_from_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env)


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    """A private copy of examples/basic, so that tests may write its state."""
    target = tmp_path / "basic"
    shutil.copytree(EXAMPLES / "basic", target)
    return target


def test_validate_reports_the_profiles_it_read(basic: Path) -> None:
    result = run("validate", basic)
    assert result.exit_code == 0, result.output
    assert "Valid: 3 profiles in 1 file (workspace FYDEMO0001, version live)" in result.output


def test_validate_prints_every_problem_with_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workspace: FY1\nprofiles:\n  u-1:\n    sms: +919879000000\n    fax: x\n")
    result = run("validate", bad)
    assert result.exit_code == 1
    assert f"{bad}:4:10:" in result.output
    assert '"+91•••••0000"' in result.output  # masked: CI posts problems into pull requests
    assert "9879000000" not in result.output
    assert f"{bad}:5:5:" in result.output and "fax" in result.output
    assert "Traceback" not in result.output
    shown = run("validate", bad, "--show-values")
    assert '"+919879000000"' in shown.output


def test_plan_lists_the_changes_with_masked_values(basic: Path) -> None:
    result = run("plan", basic, "--state", basic / "state.json")
    assert result.exit_code == 0, result.output
    assert "1 to add, 1 to change, 1 to remove" in result.output
    assert "u-1001" in result.output and "u-1003" in result.output
    assert "alice@example.com" not in result.output
    assert "a•••@example.com" in result.output


def test_plan_show_values_unmasks(basic: Path) -> None:
    result = run("plan", basic, "--state", basic / "state.json", "--show-values")
    assert "alice@example.com" in result.output


def test_detailed_exitcode_is_2_when_changes_are_pending(basic: Path) -> None:
    result = run("plan", basic, "--state", basic / "state.json", "--detailed-exitcode")
    assert result.exit_code == 2


def test_detailed_exitcode_is_0_without_changes(basic: Path) -> None:
    state = json.loads((basic / "state.json").read_text())
    state["profiles"] = {
        "u-1001": {"email": "alice@example.com", "sms": "+919879000000",
                   "push": [{"token": "fcm_token:alice-pixel-8", "integration_id": "IFCM0001",
                            "status": 1}]},
        "u-1002": {"email": "bob@example.com", "whatsapp": "+14155550100"},
    }
    (basic / "state.json").write_text(json.dumps(state))
    result = run("plan", basic, "--state", basic / "state.json", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "No changes" in result.output


def test_usage_error_under_detailed_exitcode_exits_1_not_2(basic: Path) -> None:
    result = run("plan", basic, "--detailed-exitcode", "--no-such-option")
    assert result.exit_code == 1
    assert "No such option" in result.output


def test_plan_json_is_masked_unless_show_values(basic: Path) -> None:
    result = run("plan", basic, "--state", basic / "state.json", "--format", "json")
    document = json.loads(result.output)
    assert document["masked"] is True
    bodies = [call_from_json(call).body() for call in document["calls"]]
    assert {"channel": {"email": "a•••@example.com"}} in bodies
    assert {"channel": ["slack"]} in bodies
    assert "alice@example.com" not in result.output
    shown = run("plan", basic, "--state", basic / "state.json", "--format", "json",
                "--show-values")
    bodies = [call_from_json(call).body() for call in json.loads(shown.output)["calls"]]
    assert {"channel": {"email": "alice@example.com"}} in bodies


def test_the_digest_is_computed_only_for_a_plan_that_shows_it(
        basic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digests: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> str:
        digests.append(real(*args, **kwargs))
        return digests[-1]

    real = loader_module.config_digest
    monkeypatch.setattr(loader_module, "config_digest", counted)
    for fmt in ("text", "markdown"):
        assert run("plan", basic, "--state", basic / "state.json", "--format", fmt
                   ).exit_code == 0
    assert digests == []
    document = json.loads(run("plan", basic, "--state", basic / "state.json", "--format",
                              "json").output)
    config = load_config([basic])
    assert document["config_digest"] == config_digest(
        config.workspace, config.version, config.profiles) == digests[0]
    assert len(digests) == 1


def test_markdown_plan_folds_each_profile(basic: Path) -> None:
    result = run("plan", basic, "--state", basic / "state.json", "--format", "markdown")
    assert result.output.count("<details>") == 3
    assert "alice@example.com" not in result.output


def test_saved_plan_is_shown_again_identically(basic: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    planned = run("plan", basic, "--state", basic / "state.json", "--out", out)
    assert out.stat().st_mode & 0o777 == 0o600
    shown = run("show", out)
    assert shown.exit_code == 0
    assert shown.output == planned.stdout


def test_edited_saved_plan_is_refused(basic: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    run("plan", basic, "--state", basic / "state.json", "--out", out)
    text = out.read_text()
    assert "alice@example.com" in text
    out.write_text(text.replace("alice@example.com", "mallory@example.com"))
    result = run("show", out)
    assert result.exit_code == 1
    assert "edited" in result.output and "checksum" in result.output


def test_mass_delete_is_refused_with_counts_unless_forced() -> None:
    folder = EXAMPLES / "mass-delete"
    refused = run("plan", folder, "--state", folder / "state.json")
    assert refused.exit_code == 1
    assert "refusing to delete 15 of 16 recorded channel entries" in refused.output
    forced = run("plan", folder, "--state", folder / "state.json", "--force")
    assert forced.exit_code == 0, forced.output
    assert "15 to remove" in forced.output


def test_max_delete_percent_raises_the_limit() -> None:
    folder = EXAMPLES / "mass-delete"
    result = run("plan", folder, "--state", folder / "state.json", "--max-delete-percent", "95")
    assert result.exit_code == 0, result.output


def test_target_restricts_the_plan(basic: Path) -> None:
    result = run("plan", basic, "--state", basic / "state.json", "--target", "u-1003",
                 "--format", "json")
    assert [call["distinct_id"] for call in json.loads(result.output)["calls"]] == ["u-1003"]


def test_color_only_on_a_terminal_and_never_with_no_color(
    basic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_options, "is_terminal", lambda: True)
    args = ("plan", basic, "--state", basic / "state.json")
    assert "\x1b[" in run(*args).output
    assert "\x1b[" not in run("--no-color", *args).output
    assert "\x1b[" not in run(*args, "--no-color").output
    assert "\x1b[" not in run(*args, env={"NO_COLOR": "1"}).output
    monkeypatch.setattr(cli_options, "is_terminal", lambda: False)
    assert "\x1b[" not in run(*args).output


def test_state_list_show_rm(basic: Path) -> None:
    state = basic / "state.json"
    assert run("state", "list", "--state", state).output.split() == ["u-1001", "u-1002", "u-1003"]
    shown = run("state", "show", "u-1001", "--state", state)
    assert "email: a•••@old.example.com" in shown.output
    assert "alice@old.example.com" in run("state", "show", "u-1001", "--state", state,
                                          "--show-values").output
    removed = run("state", "rm", "u-1003", "--state", state)
    assert removed.exit_code == 0, removed.output
    assert json.loads(state.read_text())["serial"] == 4
    assert run("state", "list", "--state", state).output.split() == ["u-1001", "u-1002"]


def test_state_rm_of_an_unknown_profile_changes_nothing(basic: Path) -> None:
    state = basic / "state.json"
    before = state.read_bytes()
    result = run("state", "rm", "u-1001", "nobody", "--state", state)
    assert result.exit_code == 1
    assert "nobody" in result.output
    assert state.read_bytes() == before


def test_state_commands_need_a_state_or_a_workspace() -> None:
    result = run("state", "list", env={"FYNO_WSID": ""})
    assert result.exit_code == 1
    assert "--state" in result.output


def every_command(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    context = click.Context(group)
    for name in group.list_commands(context):  # as click lists them: loaded on demand
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += every_command(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_command_has_help_ending_with_an_example() -> None:
    commands = every_command(cli)
    assert {"apply", "import", "refresh", "sandbox", "audit"} <= {c[0] for c in commands}
    for args in commands:
        result = run(*args, "--help")
        assert result.exit_code == 0, args
        description = result.output.split("Options:")[0]
        assert "Example:" in description, args
        example = description.split("Example:")[1]
        assert example.strip().startswith("reconciler ") or "reconciler " in example, args


def test_runs_as_python_module() -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler", "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "reconciler, version" in result.stdout


def test_a_held_lock_refuses_state_changes_naming_the_holder(basic: Path) -> None:
    state = basic / "state.json"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from reconciler.state import LocalStateFile;"
         "lock = LocalStateFile(Path(sys.argv[1])).lock('apply');"
         "lock.__enter__(); print('locked', flush=True); time.sleep(60)", str(state)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = run("state", "rm", "u-1003", "--state", state)
        assert result.exit_code == 1
        assert f"pid {holder.pid}" in result.output and "'apply'" in result.output
        assert "reconciler state unlock" in result.output
    finally:
        holder.kill()
        holder.wait()
    assert run("state", "rm", "u-1003", "--state", state).exit_code == 0


def test_state_unlock_removes_a_lock_file_and_names_its_holder(basic: Path) -> None:
    state = basic / "state.json"
    lock = basic / "state.json.lock"
    lock.write_text(json.dumps({"pid": 4242, "host": "ci-runner-7", "command": "apply",
                                "started_at": "2026-11-28T10:00:00Z"}))
    refused = run("state", "unlock", "--state", state)  # another host: cannot tell if it runs
    assert refused.exit_code == 1
    assert "pid 4242 on ci-runner-7" in refused.output and "--force" in refused.output
    assert lock.exists()
    result = run("state", "unlock", "--state", state, "--force")
    assert result.exit_code == 0
    assert "pid 4242 on ci-runner-7" in result.output
    assert not lock.exists()
    assert "not locked" in run("state", "unlock", "--state", state).output


def test_a_profile_without_data_leaving_the_configuration_is_planned_and_shown(
        basic: Path) -> None:
    state = json.loads((basic / "state.json").read_text())
    state["profiles"]["u-old"] = {}
    (basic / "state.json").write_text(json.dumps(state))
    result = run("plan", basic, "--state", basic / "state.json", "--format", "json")
    assert json.loads(result.output)["forget"] == ["u-old"]
    text = run("plan", basic, "--state", basic / "state.json").output
    assert "u-old (leaves management; it holds no channel data" in text
    assert "1 profile with no channel data leaves the state without a call" in text


def test_state_list_and_show_mark_missing_and_unconfirmed_profiles(basic: Path) -> None:
    document = json.loads((basic / "state.json").read_text())
    document["missing"] = ["u-ghost"]
    document["unconfirmed"] = ["u-1002"]
    (basic / "state.json").write_text(json.dumps(document))
    listed = run("state", "list", "--state", basic / "state.json").output.splitlines()
    assert "u-ghost (missing on the server)" in listed
    assert "u-1002 (unconfirmed: the next apply reads it back first)" in listed
    shown = run("state", "show", "u-ghost", "--state", basic / "state.json")
    assert shown.exit_code == 0 and "missing on the server" in shown.output


def _modules_loaded_by(command: str) -> list[str]:
    """The modules a fresh process has loaded once `reconciler COMMAND --help` has run."""
    code = ("import sys; from reconciler.cli import main\n"
            f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('\\n'.join(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return result.stderr.splitlines()


def _loads_any(loaded: list[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in loaded)


def test_show_imports_only_what_reading_a_saved_plan_needs() -> None:
    """`show` starts without the ledger, the state, the configuration's YAML or the API
    client: a tenth of a second of every start."""
    loaded = _modules_loaded_by("show")
    assert "reconciler.cli.show_cmd" in loaded
    for package in ("reconciler.cli.planning", "reconciler.audit", "reconciler.state",
                    "reconciler.config", "yaml", "httpx", "reconciler.api"):
        assert not _loads_any(loaded, package), package


def test_plan_does_not_import_the_commands_it_does_not_run() -> None:
    """Commands are loaded when they run: `plan` never pays for `fmt`'s round-trip YAML, the
    sandbox's server or `export`."""
    loaded = _modules_loaded_by("plan")
    assert "reconciler.cli.planning" in loaded
    for package in ("reconciler.cli.fmt_cmd", "ruamel", "reconciler.sandbox", "reconciler.fmt",
                    "reconciler.cli.export_cmd", "reconciler.cli.sandbox_cmd"):
        assert not _loads_any(loaded, package), package
