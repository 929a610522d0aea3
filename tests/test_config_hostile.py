"""Hostile configurations: each is a problem with its file, line and column, never a crash.

Huge numbers, control characters, texts past the limits of `reconciler.config.limits`,
alias bombs, deep nesting, odd files (a FIFO, a device, a huge or non-UTF-8 file, a
directory) and directory trees (recursion, hidden names, symlink loops).
"""

from __future__ import annotations

import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from reconciler.config import load_config, sources
from reconciler.config.fast import load_fast
from reconciler.config.limits import (
    MAX_DISTINCT_ID_LENGTH,
    MAX_VALUE_LENGTH,
    MAX_WORKSPACE_LENGTH,
)
from reconciler.config.precise import ALIAS_BUDGET, ALIAS_TEXT_BUDGET
from reconciler.errors import ConfigError, Problem

HEAD = "workspace: FYTEST0001\nprofiles:\n"
NINES = "9" * 5000  # past Python's int-string conversion limit (4,300 digits)
CUT_NINES = '"' + "9" * 40 + "…" + "9" * 20 + '" (5,000 characters)'


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(path: Path, **fallbacks: str) -> Problem:
    with pytest.raises(ConfigError) as caught:
        load_config([path], **fallbacks)
    (problem,) = caught.value.problems
    return problem


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (HEAD + f"  u-1:\n    push:\n      - token: a\n        status: {NINES}\n", 6, 17,
         f"status must be 0 or 1, not {CUT_NINES}"),
        (f"workspace: FYW\nversion: {NINES}\nprofiles: {{}}\n", 2, 10,
         f"version must be live or test, not {CUT_NINES}"),
        (f"workspace: {NINES}\nprofiles: {{}}\n", 1, 12,
         f"workspace: {CUT_NINES} is read by YAML as a number, not text; quote it if it is "
         "text"),
        (HEAD + f"  u-1:\n    push: [-{NINES}]\n", 4, 12,
         f'push item 1: "-{"9" * 39}…{"9" * 20}" (5,001 characters) is read by YAML as a number'),
        (HEAD + f"  u-1:\n    email: 0x{'f' * 20000}\n", 4, 12,
         "(20,002 characters) is read by YAML as a number, not text"),
        (HEAD + f"  u-1:\n    email: 0o{'7' * 20000}\n", 4, 12,
         "(20,002 characters) is read by YAML as a number, not text"),
        (f"{NINES}\n", 1, 1, "the document must be a mapping with a profiles: key, not a number"),
        (HEAD + f"  ? {NINES}\n  : {{}}\n", 3, 5,
         f'distinct_id "{"9" * 40}…{"9" * 20}" is 5,000 characters long; at most 2,048 are '
         "allowed"),
        # libyaml (like yaml_rs) takes at most 1,024 characters as an implicit key.
        (HEAD + f"  {NINES}: {{}}\n", 3, 5003, "invalid YAML: mapping values are not allowed"),
    ],
)
def test_integers_of_thousands_of_digits_are_problems(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    path = write(tmp_path, "p.yaml", text)
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), line, column)
    assert message in problem.message


def test_a_huge_integer_key_on_the_fast_path_sends_the_file_to_the_precise_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml_rs

    monkeypatch.setattr(yaml_rs, "loads", lambda text, **_: {"profiles": {10**5000: {}}})
    assert load_fast("profiles:\n  1: {}\n") is None


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (HEAD + '  "u\\0-1": {}\n', 3, 3,
         'distinct_id "u\\x00-1" holds the control character \\x00 (U+0000) at character 2; '
         "remove it"),
        (HEAD + '  "u-1\\x7f": {}\n', 3, 3, "holds the control character \\x7f (U+007F)"),
        (HEAD + '  "u-1\\N": {}\n', 3, 3, 'distinct_id "u-1\\x85" holds the control character'),
        (HEAD + '  "u-1\\L": {}\n', 3, 3,
         'distinct_id "u-1\\u2028" holds the line separator \\u2028 (U+2028) at character 4'),
        (HEAD + '  u-1: {email: "a\\tb@example.com"}\n', 3, 16,
         'email "a\\tb@example.com" holds the control character \\t (U+0009) at character 2'),
        (HEAD + '  u-1: {push: ["fcm\\0"]}\n', 3, 16, 'token "fcm\\x00" holds the control'),
        (HEAD + '  u-1: {push: [{token: "fcm\\0"}]}\n', 3, 24, 'token "fcm\\x00" holds the'),
        (HEAD + '  u-1: {push: [{token: a, integration_id: "I\\r"}]}\n', 3, 43,
         'integration_id "I\\r" holds the control character \\r (U+000D)'),
        (HEAD + '  u-1: {"\\e[2Jemail": x}\n', 3, 9,
         'unknown channel "\\e[2Jemail"; did you mean "email"?'),
        ('workspace: "FY\\e]0;pwned\\a"\nprofiles: {}\n', 1, 12,
         'workspace "FY\\e]0;pwned\\a" holds the control character \\e (U+001B) at character 3'),
        ('workspace: "FY\\\\1"\nprofiles: {}\n', 1, 12,
         'workspace "FY\\\\1" holds \\ at character 3; a workspace names the state file, so it '
         "may not hold / or \\"),
    ],
)
def test_control_characters_are_refused_and_shown_escaped(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    path = write(tmp_path, "p.yaml", text)
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), line, column)
    assert message in problem.message
    assert problem.message.isprintable()


def test_a_control_character_in_fyno_wsid_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "profiles:\n  u-1: {}\n")
    problem = only_problem(path, workspace="FY\x00X")
    assert problem == Problem(
        "FYNO_WSID", 0, 0,
        'workspace "FY\\x00X" holds the control character \\x00 (U+0000) at character 3; '
        "remove it",
    )


def test_a_distinct_id_declared_twice_is_shown_escaped_in_both_places(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", HEAD + '  "u\\e": {}\n  "u\\e": {}\n')
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    assert [str(problem) for problem in caught.value.problems] == [
        f'{path}:3:3: distinct_id "u\\e" holds the control character \\e (U+001B) at '
        "character 2; remove it",
        f'{path}:4:3: distinct_id "u\\e" is declared twice; first at {path}:3:3',
    ]


def test_printable_unicode_is_accepted(tmp_path: Path) -> None:
    # A no-break space is not printable for Python, but it is no control character.
    text = HEAD + '  "u\u00a01": {slack: "a\u00a0b", push: ["t\u200b", {token: "ü", ' \
        'integration_id: "I\u00a0"}]}\n'
    config = load_config([write(tmp_path, "p.yaml", text)])
    assert list(config.profiles) == ["u\u00a01"]


def test_a_distinct_id_of_70000_characters_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml",
                 HEAD + "  ? " + "u" * 70_000 + "\n  : {email: a@example.com}\n")
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), 3, 5)
    assert problem.message == (
        f'distinct_id "{"u" * 40}…{"u" * 20}" is 70,000 characters long; at most 2,048 are '
        "allowed"
    )


@pytest.mark.parametrize(
    ("template", "limit", "label", "line", "column"),
    [
        ("workspace: {}\nprofiles: {{}}\n", MAX_WORKSPACE_LENGTH, "workspace", 1, 12),
        (HEAD + "  ? {}\n  : {{}}\n", MAX_DISTINCT_ID_LENGTH, "distinct_id", 3, 5),
        (HEAD + "  u-1: {{slack: {}}}\n", MAX_VALUE_LENGTH, "slack", 3, 16),
        (HEAD + "  u-1: {{push: [{}]}}\n", MAX_VALUE_LENGTH, "token", 3, 16),
        (HEAD + "  u-1: {{push: [{{token: {}}}]}}\n", MAX_VALUE_LENGTH, "token", 3, 24),
        (HEAD + "  u-1: {{push: [{{token: a, integration_id: {}}}]}}\n", MAX_VALUE_LENGTH,
         "integration_id", 3, 43),
    ],
)
def test_texts_are_accepted_up_to_their_limit_and_refused_past_it(
    tmp_path: Path, template: str, limit: int, label: str, line: int, column: int
) -> None:
    # A workspace id is FY and upper-case letters and digits; the other texts are free.
    at_limit = write(tmp_path, "ok.yaml", template.format("FY" + "X" * (limit - 2)))
    load_config([at_limit])
    past = write(tmp_path, "past.yaml", template.format("FY" + "X" * (limit - 1)))
    problem = only_problem(past)
    assert (problem.file, problem.line, problem.column) == (str(past), line, column)
    assert problem.message.startswith(f'{label} "FYXXX')
    assert problem.message.endswith(f"is {limit + 1:,} characters long; at most {limit:,} are "
                                    "allowed")


def _billion_laughs(levels: int, item: str, colon: str = ": ") -> str:
    lines = [f"a0{colon}&a0 [{', '.join([item] * 9)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}{colon}&a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "workspace: FYW\n" + _billion_laughs(10, "lol")
                 + "profiles: {u-1: {push: *a9}}\n")
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), 8, 10)
    assert problem.message == (
        f"aliases repeat more than {ALIAS_BUDGET:,} nodes; write the data out"
    )


def test_aliases_of_long_texts_are_bounded_by_characters(tmp_path: Path) -> None:
    # Few nodes, but each repetition of the shared token list copies 300 KB of text in the
    # schema validation, the digest and the plan: 200 profiles make 60 MB.
    tokens = ", ".join(f'"t{index}{"x" * 3000}"' for index in range(100))
    text = HEAD + f"  u-0: {{push: &t [{tokens}]}}\n" + "".join(
        f"  u-{index}: {{push: *t}}\n" for index in range(1, 200)
    )
    path = write(tmp_path, "p.yaml", text)
    tracemalloc.start()
    try:
        problem = only_problem(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 107 repetitions of 300,000 characters are the first past the budget.
    assert (problem.file, problem.line, problem.column) == (str(path), 110, 17)
    assert problem.message == (
        f"aliases repeat more than {ALIAS_TEXT_BUDGET:,} characters of text; write the data out"
    )
    assert peak < 40 * 2**20


def test_aliases_right_after_a_json_key_colon_are_bounded_too(tmp_path: Path) -> None:
    # `{"a":*x}` is an alias too: the fast path (yaml_rs, which copies every repetition)
    # must not take it.
    long = "x" * 6000
    parts = ['"a0":&a0 {' + ", ".join(f'"k{k}":"{long}"' for k in range(9)) + "}"]
    for level in range(1, 5):
        keys = ", ".join(f'"k{k}":*a{level - 1}' for k in range(9))
        parts.append(f'"a{level}":&a{level} {{{keys}}}')
    text = '{"workspace": "FYW", ' + ", ".join(parts) + ', "profiles": {}}\n'
    assert load_fast(text) is None
    path = write(tmp_path, "p.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    assert [p.message for p in caught.value.problems if "aliases" in p.message] == [
        f"aliases repeat more than {ALIAS_TEXT_BUDGET:,} characters of text; write the data out"
    ]


@pytest.mark.parametrize(
    "text",
    ['{"profiles": {"u-1":&p {}, "u-2":*p}}\n', '{"profiles": {"u-1":!!map {}}}\n'],
)
def test_properties_right_after_a_json_key_colon_take_the_precise_path(text: str) -> None:
    assert load_fast(text) is None


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (HEAD + "  u-1: {push: " + "[" * 10_000 + "]" * 10_000 + "}\n", 3, 1012),
        ("workspace: FYW\nx:\n" + "".join(" " * i + "- \n" for i in range(2000))
         + "profiles: {}\n", 1002, 1000),
    ],
)
def test_deep_nesting_is_a_problem_with_a_position(
    tmp_path: Path, text: str, line: int, column: int
) -> None:
    path = write(tmp_path, "p.yaml", text)
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), line, column)
    assert problem.message.startswith("invalid YAML: exceeded maximum nesting depth")


def test_nesting_within_libyaml_depth_is_reported_where_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", HEAD + "  u-1: {push: [" + "[" * 900 + "]" * 900 + "]}\n")
    problem = only_problem(path)
    assert (problem.line, problem.column) == (3, 16)
    assert problem.message == "push item 1 must be a token or a mapping with token:, not a list"


def test_thousands_of_documents_are_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "workspace: FYW\nprofiles: {}\n" + "---\na: 1\n" * 5000)
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.column) == (str(path), 3, 1)
    assert problem.message.startswith("a second YAML document (after ---)")


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 2 * 2**20)
    path = write(tmp_path, "p.yaml", HEAD + "  u-1: {}\n" + "#" * (2 * 2**20) + "\n")
    assert only_problem(path) == Problem(
        str(path), 0, 0,
        "the file is larger than 2 MiB, the most one configuration file may hold; split it "
        "into several files",
    )


def test_a_leading_byte_order_mark_is_ignored_and_a_later_one_is_a_problem(
    tmp_path: Path,
) -> None:
    leading = write(tmp_path, "a.yaml", "\ufeff" + HEAD + "  u-1: {}\n")
    assert list(load_config([leading]).profiles) == ["u-1"]
    later = write(tmp_path, "b.yaml", "workspace: FYW\n\ufeffprofiles: {}\n")
    problem = only_problem(later)
    assert (problem.line, problem.column) == (2, 2)
    assert problem.message.startswith("invalid YAML:")


def test_a_device_is_refused_unread() -> None:
    assert only_problem(Path(os.devnull), workspace="FYW") == Problem(
        os.devnull, 0, 0, "cannot read file: it is a device"
    )


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def load() -> None:
        try:
            load_config([tmp_path], workspace="FYW")
        except ConfigError as error:
            outcome.extend(error.problems)

    thread = threading.Thread(target=load, daemon=True)  # opening a FIFO would block
    thread.start()
    thread.join(timeout=10)
    assert outcome == [Problem(str(fifo), 0, 0, "cannot read file: it is a FIFO (named pipe)")]


def test_a_directory_named_like_a_yaml_file_is_read_as_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "profiles.yaml"
    folder.mkdir()
    write(folder, "a.yml", HEAD + "  u-1: {}\n")
    assert load_config([folder]).files == (str(folder / "a.yml"),)
    assert load_config([tmp_path]).files == (str(folder / "a.yml"),)


def test_suffixes_match_in_any_case_and_hidden_names_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.YAML", HEAD + "  u-1: {}\n")
    write(tmp_path, "b.Yml", "profiles:\n  u-2: {}\n")
    write(tmp_path, ".c.yaml", "profiles:\n  u-3: {}\n")
    (tmp_path / ".git").mkdir()
    write(tmp_path / ".git", "d.yaml", "profiles:\n  u-4: {}\n")
    write(tmp_path, "e.yaml.orig", "profiles:\n  u-5: {}\n")
    config = load_config([tmp_path])
    assert config.files == (str(tmp_path / "a.YAML"), str(tmp_path / "b.Yml"))


def test_a_file_moved_into_a_subfolder_keeps_its_profiles(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", HEAD + "  u-1: {email: a@example.com}\n")
    moved = write(tmp_path, "b.yaml", "profiles:\n  u-2: {email: b@example.com}\n")
    before = load_config([tmp_path])
    (tmp_path / "team").mkdir()
    moved.rename(tmp_path / "team" / "b.yaml")
    after = load_config([tmp_path])
    assert after.profiles == before.profiles and after.digest == before.digest


def test_a_symlink_loop_ends_and_a_linked_directory_is_read_once(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    (root / "team").mkdir(parents=True)
    write(root / "team", "a.yaml", HEAD + "  u-1: {}\n")
    (root / "team" / "loop").symlink_to(root, target_is_directory=True)
    (root / "again").symlink_to(root / "team", target_is_directory=True)
    config = load_config([root])
    assert len(config.files) == 1 and list(config.profiles) == ["u-1"]


def test_a_dangling_link_in_a_directory_is_reported_not_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", HEAD + "  u-1: {}\n")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "gone.yaml")
    assert only_problem(tmp_path) == Problem(
        str(tmp_path / "b.yaml"), 0, 0, "cannot read file: No such file or directory"
    )
