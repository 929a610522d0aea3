"""No name leaves its directory: a workspace or version from the environment or the YAML
never places a file outside `state/`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.errors import UsageError
from reconciler.state import default_state_path


@pytest.mark.parametrize(("workspace", "version"), [
    ("../evil", "live"), ("a/b", "live"), ("a\\b", "live"), ("FYX\x00", "live"),
    ("FYX", "../x"), ("FYX", "prod"), ("", "live")])
def test_a_name_that_could_leave_the_state_directory_is_refused(workspace: str,
                                                                version: str) -> None:
    with pytest.raises(UsageError):
        default_state_path(workspace, version)


@pytest.mark.parametrize("command", [["state", "list"], ["import", "--id", "u-1"],
                                     ["doctor"]])
def test_fyno_wsid_cannot_place_the_state_outside_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli, command, env={
        "FYNO_WSID": "../evil", "FYNO_API_KEY": "k", "FYNO_BASE_URL": "http://127.0.0.1:1/v1"})
    assert result.exit_code == 1, result.output
    assert "may not hold /" in result.output
    assert sorted(path.name for path in tmp_path.rglob("*evil*")) == []


@pytest.mark.parametrize("workspace", ["fyabc", "prod-eu", "FY", "FY ABC", "FYé1", "XYABC"])
def test_a_workspace_that_is_not_a_fyno_id_is_refused_wherever_it_comes_from(
        tmp_path: Path, workspace: str) -> None:
    with pytest.raises(UsageError, match="is not a Fyno workspace id"):
        default_state_path(workspace, "live")
    (tmp_path / "p.yaml").write_text(f"workspace: {workspace!r}\nprofiles: {{}}\n")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "p.yaml")], env={})
    assert result.exit_code == 1
    assert "p.yaml:1:" in result.output and "is not a Fyno workspace id" in result.output
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "p.yaml")],
                                env={"FYNO_WSID": workspace})
    assert result.exit_code == 1 and "FYNO_WSID" in result.output


def test_a_fyno_workspace_id_gives_the_usual_path() -> None:
    assert default_state_path("FYXXXXXXXX", "test") == Path("state") / "FYXXXXXXXX-test.json"


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_state_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path,
                                                               special: str) -> None:
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "state.json"
        os.mkfifo(path)
    result = CliRunner().invoke(cli, ["state", "list", "--state", str(path)])
    assert result.exit_code == 1 and "is not a regular file" in result.output
