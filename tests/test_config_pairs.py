"""Specification of workspace/version pairs: `load_configs`, `select_pairs`, `pair_label`.

Files under the given paths may declare several workspace/version pairs; each pair is its
own `Config`, with its own files, profiles, digest and ownership.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import (
    Config,
    config_digest,
    load_config,
    load_configs,
    pair_label,
    select_pairs,
)
from reconciler.errors import ConfigError, Problem, UsageError
from reconciler.model import ChannelData
from reconciler.ownership import Mode


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: Path, **fallbacks: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_configs(list(paths), **fallbacks)
    return caught.value.problems


def pairs_of(configs: tuple[Config, ...]) -> list[tuple[str, str, list[str], list[str]]]:
    """Each config's pair, file names and distinct_ids."""
    return [(config.workspace, config.version, [Path(name).name for name in config.files],
             list(config.profiles)) for config in configs]


# -- several pairs ------------------------------------------------------------------------------

def test_two_workspaces_are_two_configs_sorted_with_their_own_files_and_profiles(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYZZZ00001\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nprofiles:\n  u-2: {email: b@example.com}\n")
    write(tmp_path, "c.yaml", "workspace: FYZZZ00001\nprofiles:\n  u-3: {}\n")
    configs = load_configs([tmp_path])
    assert pairs_of(configs) == [
        ("FYAAA00001", "live", ["b.yaml"], ["u-2"]),
        ("FYZZZ00001", "live", ["a.yaml", "c.yaml"], ["u-1", "u-3"]),
    ]
    first, second = configs
    assert first.profiles["u-2"] == ChannelData({"email": "b@example.com"})
    assert first.digest == config_digest("FYAAA00001", "live", first.profiles)
    assert second.digest == config_digest("FYZZZ00001", "live", second.profiles)
    assert first.digest != second.digest


def test_each_pair_has_the_digest_its_files_have_alone(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "workspace: FYAAA00001\nprofiles:\n  u-1: {}\n")
    b = write(tmp_path, "b.yaml", "workspace: FYBBB00001\nversion: test\nprofiles:\n  u-1: {}\n")
    together = load_configs([a, b])
    assert [config.digest for config in together] == [
        load_config([a]).digest, load_config([b]).digest]


def test_live_and_test_of_one_workspace_are_two_configs(tmp_path: Path) -> None:
    write(tmp_path, "live.yaml", "workspace: FYAAA00001\nversion: live\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "test.yaml", "workspace: FYAAA00001\nversion: test\nprofiles:\n  u-2: {}\n")
    assert pairs_of(load_configs([tmp_path])) == [
        ("FYAAA00001", "live", ["live.yaml"], ["u-1"]),
        ("FYAAA00001", "test", ["test.yaml"], ["u-2"]),
    ]


def test_a_file_without_workspace_joins_the_only_workspace_the_others_state(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: test\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "b.yaml", "version: test\nprofiles:\n  u-2: {}\n")
    assert pairs_of(load_configs([tmp_path])) == [
        ("FYAAA00001", "test", ["a.yaml", "b.yaml"], ["u-1", "u-2"])]


def test_a_file_without_version_joins_the_only_version_its_workspace_states(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: test\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nprofiles:\n  u-2: {}\n")
    # Another workspace's live does not count: versions are resolved per workspace.
    write(tmp_path, "c.yaml", "workspace: FYBBB00001\nversion: live\nprofiles:\n  u-3: {}\n")
    write(tmp_path, "d.yaml", "workspace: FYCCC00001\nprofiles:\n  u-4: {}\n")
    assert pairs_of(load_configs([tmp_path])) == [
        ("FYAAA00001", "test", ["a.yaml", "b.yaml"], ["u-1", "u-2"]),
        ("FYBBB00001", "live", ["c.yaml"], ["u-3"]),
        ("FYCCC00001", "live", ["d.yaml"], ["u-4"]),  # no file of FYCCC states one: live
    ]


def test_fyno_wsid_names_the_workspace_of_files_of_two_versions(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: live\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "b.yaml", "version: test\nprofiles:\n  u-1: {}\n")
    assert pairs_of(load_configs([tmp_path], workspace="FYENV00001")) == [
        ("FYENV00001", "live", ["a.yaml"], ["u-1"]),
        ("FYENV00001", "test", ["b.yaml"], ["u-1"]),
    ]


# -- ambiguity ----------------------------------------------------------------------------------

def test_a_file_without_workspace_among_files_of_two_workspaces_is_an_error_naming_it(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nprofiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYBBB00001\nprofiles: {}\n")
    c = write(tmp_path, "c.yaml", "profiles:\n  u-1: {}\n")
    assert problems_of(tmp_path) == [Problem(
        str(c), 0, 0, "states no workspace:, and the other files state several (FYAAA00001, "
        "FYBBB00001): state workspace: in this file")]


def test_fyno_wsid_settles_which_workspace_a_file_without_one_has(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nprofiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYBBB00001\nprofiles: {}\n")
    write(tmp_path, "c.yaml", "profiles:\n  u-1: {}\n")
    (problem,) = problems_of(tmp_path, workspace="FYAAA00001")
    assert problem.file == str(tmp_path / "b.yaml")
    assert problem.message == 'workspace "FYBBB00001" disagrees with "FYAAA00001" from FYNO_WSID'


def test_a_file_without_version_among_live_and_test_files_is_an_error_naming_it(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nprofiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nversion: test\nprofiles: {}\n")
    c = write(tmp_path, "c.yaml", "workspace: FYAAA00001\nprofiles:\n  u-1: {}\n")
    # Versions of another workspace make no file of FYBBB ambiguous.
    write(tmp_path, "d.yaml", "workspace: FYBBB00001\nprofiles: {}\n")
    assert problems_of(tmp_path) == [Problem(
        str(c), 0, 0, "states no version:, and the other files of workspace FYAAA00001 state "
        "both live and test: state version: in this file")]


def test_fyno_version_settles_which_version_a_file_without_one_has(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: test\nprofiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nprofiles:\n  u-1: {}\n")
    (config,) = load_configs([tmp_path], version="test")
    assert (config.version, list(config.profiles)) == ("test", ["u-1"])


def test_no_workspace_anywhere_is_todays_error(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "profiles: {}\n")
    write(tmp_path, "b.yaml", "version: test\nprofiles: {}\n")
    assert problems_of(tmp_path) == [
        Problem(str(a), 0, 0, "no workspace: state workspace: in a file, or set FYNO_WSID")]


def test_a_file_whose_workspace_is_wrong_is_not_also_said_to_state_none(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nprofiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYBBB00001\nprofiles: {}\n")
    c = write(tmp_path, "c.yaml", "workspace: not-a-wsid\nprofiles: {}\n")
    (problem,) = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.column) == (str(c), 1, 12)
    assert "is not a Fyno workspace id" in problem.message


# -- distinct_ids and ownership belong to a pair --------------------------------------------------

def test_the_same_distinct_id_in_two_pairs_is_two_profiles(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nprofiles:\n"
          "  u-1: {email: a@example.com}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nversion: test\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "c.yaml", "workspace: FYBBB00001\nprofiles:\n  u-1: {}\n")
    configs = load_configs([tmp_path])
    assert [list(config.profiles) for config in configs] == [["u-1"]] * 3
    assert configs[0].profiles["u-1"] == ChannelData({"email": "a@example.com"})


def test_a_distinct_id_declared_twice_within_a_pair_names_both_places(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nprofiles:\n"
              "  u-1: {}\n  u-7: {}\n")
    b = write(tmp_path, "b.yaml", "version: live\nprofiles:\n  u-7: {}\n")  # FYAAA00001 too
    write(tmp_path, "c.yaml", "workspace: FYAAA00001\nversion: test\nprofiles:\n  u-7: {}\n")
    assert problems_of(tmp_path) == [
        Problem(str(b), 3, 3, f'distinct_id "u-7" is declared twice; first at {a}:5:3')]


def test_ownership_that_disagrees_within_a_pair_is_an_error(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "workspace: FYAAA00001\nownership: {push: owned}\n"
              "profiles: {}\n")
    b = write(tmp_path, "b.yaml", "workspace: FYAAA00001\nownership: {push: ignored}\n"
              "profiles: {}\n")
    (problem,) = problems_of(tmp_path)
    assert (problem.file, problem.line, problem.column) == (str(b), 2, 12)
    assert problem.message == (
        f"ownership disagrees with the one stated in another file; first at {a}:2:12")


def test_ownership_may_differ_between_pairs(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nownership: {push: owned}\n"
          "profiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nversion: test\n"
          "ownership: {push: ignored}\nprofiles: {}\n")
    live, test = load_configs([tmp_path])
    assert live.ownership.default.modes["push"] is Mode.OWNED
    assert test.ownership.default.modes["push"] is Mode.IGNORED


# -- the variables name the pair of the run -------------------------------------------------------

def test_a_file_stating_another_workspace_than_fyno_wsid_is_still_an_error(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nprofiles: {}\n")
    b = write(tmp_path, "b.yaml", "workspace: FYBBB00001\nprofiles: {}\n")
    (problem,) = problems_of(tmp_path, workspace="FYAAA00001")
    assert problem == Problem(
        str(b), 1, 12, 'workspace "FYBBB00001" disagrees with "FYAAA00001" from FYNO_WSID')


def test_a_file_stating_another_version_than_fyno_version_is_still_an_error(
        tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nprofiles: {}\n")
    b = write(tmp_path, "b.yaml", "workspace: FYAAA00001\nversion: test\nprofiles: {}\n")
    (problem,) = problems_of(tmp_path, version="live")
    assert problem == Problem(
        str(b), 2, 10, 'version "test" disagrees with "live" from FYNO_VERSION')


# -- one pair, as today ---------------------------------------------------------------------------

def test_a_single_pair_keeps_the_digest_it_had_before_pairs(tmp_path: Path) -> None:
    # Digests computed by the loader before files could declare several pairs: saved plans
    # carry them, so a change here would make every saved plan look edited.
    write(tmp_path, "a.yaml", "workspace: FYPIN00001\nversion: test\nprofiles:\n  u-1:\n"
          "    email: a@example.com\n    push: [fcm:abc]\n")
    b = write(tmp_path, "b.yaml", "profiles:\n  u-2: {}\n")
    (config,) = load_configs([tmp_path])
    assert config.digest == load_config([tmp_path]).digest == (
        "sha256:cd3e8e7731ac475f5e19c3b9456670b80c90ef97ac3518bdad083ada7503d9e7")
    write(tmp_path, "b.yaml", "ownership: {push: owned}\n" + b.read_text())
    (config,) = load_configs([tmp_path])
    assert config.digest == load_config([tmp_path]).digest == (
        "sha256:2b850a5da2cd11eef94aec056a7c13820f9bb96767fa6e2140dd7eb3ac578b7f")


def test_load_config_refuses_files_of_several_pairs(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nprofiles: {}\n")
    b = write(tmp_path, "b.yaml", "workspace: FYAAA00001\nversion: test\nprofiles: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_config([tmp_path])
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.column) == (str(b), 0, 0)
    assert problem.message.startswith(
        "the files declare 2 workspace/version pairs (FYAAA00001 (live), FYAAA00001 (test))")


# -- select_pairs ---------------------------------------------------------------------------------

@pytest.fixture
def three_pairs(tmp_path: Path) -> tuple[Config, ...]:
    write(tmp_path, "a.yaml", "workspace: FYAAA00001\nversion: live\nprofiles: {}\n")
    write(tmp_path, "b.yaml", "workspace: FYAAA00001\nversion: test\nprofiles: {}\n")
    write(tmp_path, "c.yaml", "workspace: FYBBB00001\nprofiles: {}\n")
    return load_configs([tmp_path])


def test_pair_label_shows_workspace_and_version(three_pairs: tuple[Config, ...]) -> None:
    assert [pair_label(config) for config in three_pairs] == [
        "FYAAA00001 (live)", "FYAAA00001 (test)", "FYBBB00001 (live)"]


@pytest.mark.parametrize(("workspace", "version", "expected"), [
    (None, None, ["FYAAA00001 (live)", "FYAAA00001 (test)", "FYBBB00001 (live)"]),
    ("FYAAA00001", None, ["FYAAA00001 (live)", "FYAAA00001 (test)"]),
    (None, "live", ["FYAAA00001 (live)", "FYBBB00001 (live)"]),
    ("FYBBB00001", "live", ["FYBBB00001 (live)"]),
])
def test_select_pairs_keeps_the_pairs_matching_the_filters(
        three_pairs: tuple[Config, ...], workspace: str | None, version: str | None,
        expected: list[str]) -> None:
    chosen = select_pairs(three_pairs, workspace, version)
    assert [pair_label(config) for config in chosen] == expected


@pytest.mark.parametrize(("workspace", "version", "asked"), [
    ("FYXXX00001", "test", "workspace FYXXX00001 version test"),
    ("FYBBB00001", "test", "workspace FYBBB00001 version test"),
    ("FYXXX00001", None, "workspace FYXXX00001"),
])
def test_select_pairs_that_match_nothing_is_a_usage_error_listing_the_pairs(
        three_pairs: tuple[Config, ...], workspace: str | None, version: str | None,
        asked: str) -> None:
    with pytest.raises(UsageError) as caught:
        select_pairs(three_pairs, workspace, version)
    assert str(caught.value) == (
        f"no configuration file declares {asked}; the files declare: FYAAA00001 (live), "
        "FYAAA00001 (test), FYBBB00001 (live)")
