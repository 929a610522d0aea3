"""Where the default state lives: from the configuration's root, not the current directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.state.location import state_root, states_elsewhere

WORKSPACE = "FYLOCATE01"
STATE_NAME = f"{WORKSPACE}-live.json"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (its top marked by `.git`) with a configuration two levels down."""
    (tmp_path / ".git").mkdir()
    config = tmp_path / "teams" / "profiles"
    config.mkdir(parents=True)
    (config / "team.yaml").write_text(yaml.safe_dump(
        {"workspace": WORKSPACE, "profiles": {"u-1": {"email": "a@example.com"}}}))
    return tmp_path


@pytest.fixture
def inside(tmp_path: Path) -> Iterator[None]:
    before = Path.cwd()
    yield
    os.chdir(before)


def test_the_root_of_a_git_repository_without_state_is_its_top(repo: Path) -> None:
    config = repo / "teams" / "profiles"
    assert state_root(config, cwd=config) == repo
    assert state_root(Path("."), cwd=config) == repo


def test_the_nearest_state_directory_up_to_the_git_top_is_the_root(repo: Path) -> None:
    (repo / "state").mkdir()
    (repo / "teams" / "state").mkdir()
    assert state_root(repo / "teams" / "profiles", cwd=repo) == repo / "teams"
    (repo / "teams" / "state").rmdir()
    assert state_root(repo / "teams" / "profiles", cwd=repo / "teams") == repo


def test_a_state_directory_above_the_git_top_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    inner = tmp_path / "inner"
    (inner / ".git").mkdir(parents=True)
    (inner / "cfg").mkdir()
    assert state_root(inner / "cfg", cwd=inner / "cfg") == inner


def test_outside_git_the_search_stops_at_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    work = tmp_path / "work"
    (work / "cfg").mkdir(parents=True)
    # Run from `work`: the `state/` above it is nobody's; the current directory is the root.
    assert state_root(work / "cfg", cwd=work) == work
    # Run from above, as today: the configuration's `state/` at the current directory.
    assert state_root(work / "cfg", cwd=tmp_path) == tmp_path
    (work / "state").mkdir()
    assert state_root(work / "cfg", cwd=tmp_path) == work


def test_states_elsewhere_finds_the_pair_state_in_other_state_directories(repo: Path) -> None:
    other = repo / "old" / "state"
    other.mkdir(parents=True)
    (other / STATE_NAME).write_text("{}")
    (repo / ".venv" / "state").mkdir(parents=True)
    (repo / ".venv" / "state" / STATE_NAME).write_text("{}")  # an environment: skipped
    chosen = repo / "state" / STATE_NAME
    found = states_elsewhere(repo / "teams" / "profiles", repo, STATE_NAME, chosen)
    assert found == [other / STATE_NAME]
    assert states_elsewhere(repo, repo, STATE_NAME, other / STATE_NAME) == []


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False,
                                env={"FYNO_WSID": None, "FYNO_VERSION": None,
                                     "RECONCILER_BACKEND": None})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("inside")
def test_plan_from_a_subdirectory_reads_the_repository_state(repo: Path) -> None:
    os.chdir(repo)
    code, out, _ = run("plan", "teams/profiles", "--out", "plan.json")
    assert code == 0
    assert "Computed against a new, empty state." in out
    os.chdir(repo / "teams" / "profiles")
    code, out, err = run("plan", ".", "--format", "json")
    assert code == 0, err
    assert "Warning" not in err  # no state anywhere yet: nothing to warn about


@pytest.mark.usefixtures("inside")
def test_a_new_state_while_one_exists_elsewhere_is_warned_about(repo: Path) -> None:
    archived = repo / "archive" / "state"
    archived.mkdir(parents=True)
    (archived / STATE_NAME).write_text("{}")
    os.chdir(repo)

    code, out, err = run("plan", "teams/profiles")

    assert code == 0, err
    expected = f"no state for {WORKSPACE} (live) at state/{STATE_NAME}"
    assert f"Warning: {expected}" in err
    assert f"one exists at archive/state/{STATE_NAME}" in err
    assert expected in out  # in the plan's warnings too: the reviewer sees it


@pytest.mark.usefixtures("inside")
def test_the_state_nearest_the_configuration_is_used_and_not_warned_about(repo: Path) -> None:
    nearest = repo / "teams" / "profiles" / "state"
    nearest.mkdir()
    os.chdir(repo)
    code, _, err = run("plan", "teams/profiles", "--out", "plan.json")
    assert code == 0, err
    code, _, err = run("apply", "plan.json", "--auto-approve")
    assert "Warning" not in err


def test_a_directory_that_cannot_be_searched_hides_what_it_holds(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = repo / "locked"
    (locked / "state").mkdir(parents=True)
    (locked / "state" / STATE_NAME).write_text("{}")
    stat = Path.stat

    def denied(path: Path, **kwargs: object) -> os.stat_result:
        if locked in path.parents:  # as a directory without search permission answers
            raise PermissionError(13, "Permission denied", str(path))
        return stat(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", denied)
    assert states_elsewhere(repo / "teams" / "profiles", repo, STATE_NAME,
                            repo / "state" / STATE_NAME) == []
    assert state_root(locked, cwd=repo) == repo
