"""Specification of the desired-state loader: `reconciler.config.load_config(s)`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.config import load_config, load_configs
from reconciler.errors import ConfigError, Problem
from reconciler.model import ChannelData, Token

FIXTURES = Path(__file__).parent / "fixtures" / "config"


def problems_of(*paths: str | Path, **fallbacks: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config([str(path) for path in paths], **fallbacks)
    return caught.value.problems


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# One fixture per failure mode: (fixture, line, column, fragment of the message).
FAILURES = [
    ("unquoted_phone.yaml", 4, 10,
     'sms: +919879000000 is read by YAML as the number 919879000000, not text; '
     'quote it: "+919879000000"'),
    ("duplicate_key.yaml", 5, 5,
     'key "email" is declared twice; first at {dir}/duplicate_key.yaml:4:5'),
    ("duplicate_id.yaml", 5, 3,
     'distinct_id "u-1" is declared twice; first at {dir}/duplicate_id.yaml:3:3'),
    ("unknown_channel.yaml", 4, 5, 'unknown channel "emial"; did you mean "email"?'),
    ("null_value.yaml", 4, 12,
     'email: null is read by YAML as null, not text; write email: "" to declare it empty, '
     'or quote it if it is text: "null"'),
    ("boolean_value.yaml", 4, 12,
     'slack: true is read by YAML as the boolean true, not text; quote it: "true"'),
    ("empty_token.yaml", 5, 16, "token must not be empty"),
    ("repeated_token.yaml", 6, 16,
     'token "fcm:abc" is repeated in push; first at {dir}/repeated_token.yaml:5:9'),
    ("not_utf8.yaml", 4, 15, "not UTF-8: byte 0xe9"),
    ("syntax_error.yaml", 5, 4, "invalid YAML: did not find expected key"),
    ("tab_indentation.yaml", 4, 1,
     "invalid YAML: a tab indents this line; YAML indents with spaces only"),
    ("bad_status.yaml", 6, 17, "status must be 0 or 1, not 2"),
    ("unknown_token_key.yaml", 6, 9,
     'unknown token key "integration"; did you mean "integration_id"?'),
    ("null_profile.yaml", 3, 3, "profile u-1 has no value; write u-1: {} to manage it"),
    ("tag.yaml", 4, 10, "tag !!int is not supported"),
    ("empty_file.yaml", 0, 0, "the file is empty"),
    ("multiple_documents.yaml", 3, 1, "a second YAML document"),
    ("not_a_mapping.yaml", 1, 1, "the document must be a mapping with a profiles: key, not a list"),
    ("missing_profiles.yaml", 1, 1, "missing profiles:"),
    ("bad_version.yaml", 2, 10, "version must be live or test, not 'prod'"),
    ("token_list_not_list.yaml", 4, 11, "push must be a list of tokens, not text"),
    ("numeric_token.yaml", 5, 9,
     'push item 1: 12345 is read by YAML as the number 12345, not text; quote it: "12345"'),
    ("merge_key.yaml", 6, 5, "merge keys (<<) are not supported"),
    ("missing_token.yaml", 5, 9, "push item 1 has no token: key"),
    ("unknown_root_key.yaml", 5, 1, 'unknown top-level key "profile"; did you mean "profiles"?'),
    ("control_character.yaml", 4, 14, "invalid YAML: character U+0001 is not allowed"),
    ("nul_in_workspace.yaml", 1, 12,
     'workspace "FY\\x00TEST01" holds the control character \\x00 (U+0000) at character 3'),
    ("slash_in_workspace.yaml", 1, 12,
     'workspace "../FYTEST0001" holds / at character 3; a workspace names the state file'),
    ("control_in_distinct_id.yaml", 3, 3,
     'distinct_id "u-1\\e[2J" holds the control character \\e (U+001B) at character 4'),
    ("huge_integer.yaml", 4, 10,
     'sms: "' + "9" * 40 + "…" + "9" * 20 + '" (5,000 characters) is read by YAML as a number, '
     "not text; quote it if it is text"),
    ("block_scalar_newline.yaml", 4, 12,
     'email "alice@example.com\\n" holds the control character \\n (U+000A) at character 18; '
     'a "|" block scalar keeps its final line break: write "|-" instead'),
    ("utf16.yaml", 1, 1, "not UTF-8: the file is UTF-16 (it starts with a UTF-16 byte order "
     "mark); save it as UTF-8"),
]


@pytest.mark.parametrize(("fixture", "line", "column", "fragment"), FAILURES)
def test_each_failure_mode_is_reported_with_file_line_and_column(
    fixture: str, line: int, column: int, fragment: str
) -> None:
    path = FIXTURES / fixture
    problems = problems_of(path)
    assert problems == [Problem(str(path), line, column, problems[0].message)]
    assert fragment.replace("{dir}", str(FIXTURES)) in problems[0].message


def test_non_utf8_fixture_really_holds_a_latin1_byte() -> None:
    assert b"caf\xe9@" in (FIXTURES / "not_utf8.yaml").read_bytes()


def test_distinct_id_declared_in_two_files_names_both_places() -> None:
    directory = FIXTURES / "duplicate_id_across_files"
    (problem,) = problems_of(directory)
    assert (problem.file, problem.line, problem.column) == (str(directory / "b.yaml"), 3, 3)
    assert problem.message == (
        f'distinct_id "u-7" is declared twice; first at {directory / "a.yaml"}:4:3'
    )


def test_files_of_two_workspaces_are_two_pairs_not_a_disagreement() -> None:
    directory = FIXTURES / "workspace_disagrees"
    configs = load_configs([directory])
    assert [(c.workspace, c.version, c.files) for c in configs] == [
        ("FYOTHER002", "live", (str(directory / "b.yaml"),)),
        ("FYTEST0001", "live", (str(directory / "a.yaml"),)),
    ]


def test_workspace_that_disagrees_with_fyno_wsid_is_reported() -> None:
    path = FIXTURES / "workspace_disagrees" / "a.yaml"
    (problem,) = problems_of(path, workspace="FYENV00001")
    assert (problem.file, problem.line, problem.column) == (str(path), 1, 12)
    assert problem.message == 'workspace "FYTEST0001" disagrees with "FYENV00001" from FYNO_WSID'


def test_files_of_two_versions_are_two_pairs_not_a_disagreement() -> None:
    directory = FIXTURES / "version_disagrees"
    configs = load_configs([directory])
    assert [(c.workspace, c.version, c.files) for c in configs] == [
        ("FYTEST0001", "live", (str(directory / "a.yaml"),)),
        ("FYTEST0001", "test", (str(directory / "b.yaml"),)),  # b.yaml joins a.yaml's workspace
    ]


def test_empty_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty_dir"
    (empty / "sub").mkdir(parents=True)
    write(empty, ".hidden.yaml", "profiles: {}\n")
    assert problems_of(empty) == [
        Problem(str(empty), 0, 0, "directory holds no *.yaml or *.yml file (subdirectories "
                "included)")
    ]


def test_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert problems_of(missing) == [Problem(str(missing), 0, 0, "no such file or directory")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.yaml", "profiles: {}\n")
    path.chmod(0)
    (problem,) = problems_of(path, workspace="FYTEST0001")
    assert (problem.file, problem.line, problem.column) == (str(path), 0, 0)
    assert problem.message.startswith("cannot read file")


def test_a_file_that_cannot_be_opened_is_an_error_naming_it(tmp_path: Path) -> None:
    # A dangling symlink fails to open even for root, unlike a chmod 0 file.
    link = tmp_path / "gone.yaml"
    link.symlink_to(tmp_path / "deleted.yaml")
    (problem,) = problems_of(link, workspace="FYTEST0001")
    assert problem == Problem(str(link), 0, 0, "cannot read file: No such file or directory")


def test_every_problem_of_every_file_is_reported_in_one_run(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "workspace: FYW\nprofiles:\n  u-1:\n    sms: +911\n    fax: x\n")
    write(tmp_path, "b.yaml", "profiles:\n  u-1: {}\n  u-2:\n    push: [\"\"]\n")
    write(tmp_path, "c.yml", "profiles:\n  u-3: {email: a@b\n")
    problems = problems_of(tmp_path)
    located = [(Path(p.file).name, p.line, p.column) for p in problems]
    assert located == [
        ("a.yaml", 4, 10),  # unquoted number
        ("a.yaml", 5, 5),  # unknown channel
        ("b.yaml", 2, 3),  # u-1 declared in a.yaml too
        ("b.yaml", 4, 12),  # empty token
        ("c.yml", 3, 1),  # unclosed flow mapping
    ]
    assert f"first at {tmp_path / 'a.yaml'}:3:3" in problems[2].message


def test_directory_files_are_read_sorted_and_recursively(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "profiles:\n  u-2: {}\n")
    write(tmp_path, "a.yaml", "workspace: FYW\nprofiles:\n  u-1: {}\n")
    write(tmp_path, "notes.txt", "not yaml")
    (tmp_path / "b" / "deep").mkdir(parents=True)
    write(tmp_path / "b", "c.yaml", "profiles:\n  u-3: {}\n")
    write(tmp_path / "b" / "deep", "d.yaml", "profiles:\n  u-4: {}\n")
    config = load_config([tmp_path])
    # Sorted by path, as pathlib sorts: part by part ("b" before "b.yml").
    assert config.files == tuple(str(tmp_path / name) for name in
                                 ("a.yaml", "b/c.yaml", "b/deep/d.yaml", "b.yml"))
    assert list(config.profiles) == ["u-1", "u-3", "u-4", "u-2"]


VALID = """\
# yaml-language-server: $schema=../../schemas/profiles.schema.json
workspace: FYXXXXXXXX
version: test
profiles:
  12345: {}
  0123:
    email: alice@example.com
  true:
    sms: "+919879000000"
    push:
      - token: "fcm_token:abc"
        integration_id: IXXXXXXX
        status: 0
      - "apns_token:def"
    inapp:
      - token: u-1001
  u-1002:
    email: ""
    push: []
"""


def test_valid_configuration_reads_ids_as_text_and_tokens_in_both_forms(tmp_path: Path) -> None:
    config = load_config([write(tmp_path, "p.yaml", VALID)])
    assert (config.workspace, config.version) == ("FYXXXXXXXX", "test")
    assert config.profiles == {
        "12345": ChannelData(),
        "0123": ChannelData({"email": "alice@example.com"}),
        "true": ChannelData({
            "sms": "+919879000000",
            "push": (Token("fcm_token:abc", "IXXXXXXX", 0), Token("apns_token:def")),
            "inapp": (Token("u-1001"),),
        }),
        "u-1002": ChannelData(),  # declared empty: no channel data at all
    }


def test_fallbacks_supply_workspace_and_version(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "profiles:\n  u-1: {}\n")
    config = load_config([path], workspace="FYENV", version="test")
    assert (config.workspace, config.version) == ("FYENV", "test")
    assert load_config([path], workspace="FYENV").version == "live"


def test_version_that_disagrees_with_fyno_version_is_reported_as_fyno_wsid_is() -> None:
    path = FIXTURES / "version_disagrees" / "b.yaml"
    (problem,) = problems_of(path, workspace="FYW", version="live")
    assert (problem.file, problem.line, problem.column) == (str(path), 1, 10)
    assert problem.message == 'version "test" disagrees with "live" from FYNO_VERSION'


def test_fyno_version_names_the_version_of_files_that_state_none(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "workspace: FYW\nprofiles: {}\n")
    assert load_config([path], version="test").version == "test"


def test_missing_workspace_without_fallback_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "profiles: {}\n")
    (problem,) = problems_of(path)
    assert problem.file == str(path) and "no workspace" in problem.message


def test_invalid_fyno_version_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "profiles: {}\n")
    (problem,) = problems_of(path, workspace="FYW", version="prod")
    assert problem == Problem("FYNO_VERSION", 0, 0, "must be live or test, not 'prod'")


def test_digest_ignores_comments_layout_and_file_split(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", VALID)
    split = tmp_path / "split"
    split.mkdir()
    head, _, rest = VALID.partition("  true:\n")
    write(split, "a.yaml", head.replace("version: test", "version: test  # the sandbox"))
    write(split, "b.yaml", "profiles:\n  true:\n" + rest)
    block = '  u-1002:\n    email: ""\n    push: []\n'
    flow = VALID.replace(block, "  u-1002: {email: '', push: []}\n")
    assert flow != VALID
    reformatted = write(tmp_path, "flow.yaml", flow)
    digest = load_config([one]).digest
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert load_config([split]).digest == digest
    assert load_config([reformatted]).digest == digest
    changed = write(tmp_path, "changed.yaml", VALID.replace("status: 0", "status: 1"))
    assert load_config([changed]).digest != digest
