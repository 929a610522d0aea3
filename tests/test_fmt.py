"""`reconciler fmt`: the canonical layout, comments kept, idempotent, and never a lost byte."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from configgen import profile_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import fmt
from reconciler.cli import cli
from reconciler.config import load_config
from reconciler.fmt import Refused, format_file, format_text
from reconciler.fmt_comments import find_comments


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["fmt", *map(str, args)])


def comments(text: str) -> Counter[str]:
    return Counter(comment.text for comment in find_comments(text))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


UNFORMATTED = """\
profiles:
  u-2:
    push:
      - {token: "fcm_token:b2", status: 0, integration_id: I2}
      - token: 'apns_token:a2'
    email: 'bob@example.com'
    sms: +91 98790 00001
  u-1: {email: alice@example.com}
version: live
workspace: FYXAB12345
"""

FORMATTED = """\
workspace: FYXAB12345
version: live
profiles:
  u-1:
    email: alice@example.com
  u-2:
    sms: "+91 98790 00001"
    email: bob@example.com
    push:
      - token: "fcm_token:b2"
        integration_id: I2
        status: 0
      - "apns_token:a2"
"""


def test_layout_orders_keys_profiles_channels_and_token_fields() -> None:
    assert format_text(UNFORMATTED) == FORMATTED


def test_text_yaml_could_misread_is_double_quoted_and_other_text_plain() -> None:
    text = """\
workspace: "FYXAB12345"
profiles:
  "0123": {}
  'yes': {}
  "true": {}
  "null": {}
  "plain-id": {}
  u-1:
    slack: "2024-01-01"
    teams: 'no'
    discord: "1_000"
    whatsapp: '+919879000000'
    push: ['0x1F']
"""
    assert format_text(text) == """\
workspace: FYXAB12345
profiles:
  "0123": {}
  "null": {}
  plain-id: {}
  "true": {}
  u-1:
    whatsapp: "+919879000000"
    slack: "2024-01-01"
    discord: "1_000"
    teams: "no"
    push:
      - "0x1F"
  "yes": {}
"""


def test_ownership_and_remove_are_laid_out_too() -> None:
    text = """\
profiles:
  u-1:
    remove: {push: [fcm_token:old], email: old@example.com}
    ownership: {push: owned, email: ignored}
    email: new@example.com
ownership: {inapp: owned, push: owned}
workspace: FYXAB12345
"""
    assert format_text(text) == """\
workspace: FYXAB12345
ownership:
  push: owned
  inapp: owned
profiles:
  u-1:
    email: new@example.com
    ownership:
      email: ignored
      push: owned
    remove:
      email: old@example.com
      push:
        - "fcm_token:old"
"""


COMMENTED = """\
# yaml-language-server: $schema=../schemas/profiles.schema.json
# The team's profiles.

version: live   # live or test
workspace: FYXAB12345
profiles:  # sorted by fmt
  # Bob, who joined in May
  u-2:  # bob
    # his desk phone
    sms: "+919879000001"  # old number
    email: bob@example.com
    # slack: U123 (not yet)
  # Alice
  u-1:
    push:  # her devices
      # the phone
      - "fcm_token:a1"  # pixel
      # the tablet
      - token: "fcm_token:a2"  # ipad
        status: 0
    email: alice@example.com
  u-0: {}  # no channels yet
# end of file
"""


def test_comments_stay_with_their_profile_channel_and_token_when_sorted() -> None:
    assert format_text(COMMENTED) == """\
# yaml-language-server: $schema=../schemas/profiles.schema.json
# The team's profiles.

workspace: FYXAB12345
version: live  # live or test
profiles:  # sorted by fmt
  u-0: {}  # no channels yet
  # Alice
  u-1:
    email: alice@example.com
    push:  # her devices
      # the phone
      - "fcm_token:a1"  # pixel
      # the tablet
      - token: "fcm_token:a2"  # ipad
        status: 0
  # Bob, who joined in May
  u-2:  # bob
    # his desk phone
    sms: "+919879000001"  # old number
    email: bob@example.com
    # slack: U123 (not yet)
# end of file
"""


def test_every_comment_survives() -> None:
    assert comments(format_text(COMMENTED)) == comments(COMMENTED)
    assert len(comments(COMMENTED)) == 17


# ---- idempotence, as a property over generated configurations ----------------------------

_IDS = st.one_of(
    st.integers(0, 999_999).map(lambda n: f"u-{n:06d}"),
    st.sampled_from(["12345", "0123", "yes", "no", "true", "null", "~", "1e3", "2024-01-01",
                     "a b", "u:1", "#x", "-", "'q'", "é-ü"]),
)
_QUOTES = st.sampled_from(['"{}"', "'{}'", "{}"])
_COMMENT = st.sampled_from(["", "  # note", "  # moved with me"])


@st.composite
def configurations(draw: st.DrawFn) -> str:
    """A configuration with the ids, quoting, token forms, key orders and comments that
    people write; profile bodies come from configgen, as the benchmarks' do."""
    ids = draw(st.lists(_IDS, min_size=1, max_size=6, unique=True))
    lines = []
    for distinct_id in ids:
        key = draw(_QUOTES).format(distinct_id) if distinct_id.isalnum() else f'"{distinct_id}"'
        if draw(st.booleans()):
            lines.append(f"  # about {distinct_id}")
        lines.append(f"  {key}:{draw(_COMMENT)}")
        body = profile_yaml(draw(st.integers(0, 10_000))).splitlines()[1:]
        if draw(st.booleans()):
            body = body[2:] + body[:2]  # push and inapp before email and sms
        if draw(st.booleans()):
            body = [line + "  # c" if line.endswith(":") else line for line in body]
        where = draw(st.integers(0, len(body) - 1))
        indent = len(body[where]) - len(body[where].lstrip())
        body.insert(where, " " * indent + f"# above line {where}")
        lines.extend(body)
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["# the end", "    # inside the last profile"])))
    head = ["workspace: FYXAB12345", "version: test", "profiles:"]
    if draw(st.booleans()):
        head = [head[1], "# the workspace", head[0], head[2]]
    return "\n".join(head + lines) + "\n"


@settings(max_examples=40)
@given(configurations())
def test_fmt_is_idempotent_keeps_every_comment_and_the_configuration(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "profiles.yaml")
        write(path, text)
        formatted = format_file(str(path))  # refuses any change of meaning or comment
        assert format_text(formatted.after) == formatted.after
        assert comments(formatted.after) == comments(text)
        write(path, formatted.after)
        assert load_config([path]).digest == load_config([write(path, text)]).digest


# ---- refusals: the file is left byte for byte -----------------------------------------------


@pytest.mark.parametrize(("text", "where", "says"), [
    ("workspace: FYXAB12345\nprofiles:\n  u-1:\n\temail: a@example.com\n", ":4:1:", "a tab"),
    ("workspace: FYXAB12345\nprofiles:\n  u-1: {}\n  u-1: {}\n", ":4:3:", "declared twice"),
    ("workspace: FYXAB12345\nprofiles:\n  u-1:\n    sms: +919879000000\n", ":4:10:",
     'quote it: "+91•••••0000"'),
    ("workspace: FYXAB12345\nprofiles: [\n", ":3:1:", "invalid YAML"),
])
def test_a_file_the_loader_refuses_is_named_at_its_line_and_left_intact(
        tmp_path: Path, text: str, where: str, says: str) -> None:
    path = write(tmp_path / "broken.yaml", text)
    result = run(path)
    assert result.exit_code == 1
    assert f"{path}{where}" in result.output and says in result.output
    assert "+919879000000" not in result.output  # values masked, as `validate` shows them
    assert path.read_bytes() == text.encode()


def test_a_layout_that_would_change_the_configuration_is_refused_as_a_bug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "p.yaml", UNFORMATTED)
    monkeypatch.setattr(fmt, "format_text", lambda text: FORMATTED.replace("I2", "I3"))
    with pytest.raises(Refused) as refused:
        format_file(str(path))
    assert "mean another configuration; this is a bug" in str(refused.value.problems[0])
    assert path.read_text() == UNFORMATTED


def test_a_layout_that_would_lose_a_comment_is_refused_as_a_bug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "p.yaml", "# keep me\n" + UNFORMATTED)
    monkeypatch.setattr(fmt, "format_text", lambda text: FORMATTED)
    result = run(path)
    assert result.exit_code == 1
    assert "lose or change a comment; this is a bug" in result.output
    assert path.read_text() == "# keep me\n" + UNFORMATTED


# ---- the command --------------------------------------------------------------------------


def test_check_exits_1_naming_each_unformatted_file_and_changes_nothing(tmp_path: Path) -> None:
    messy = write(tmp_path / "a.yaml", UNFORMATTED)
    tidy = write(tmp_path / "b.yml", FORMATTED.replace("FYXAB12345", "FYXAB12345"))
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (messy, tidy)}
    result = run("--check", tmp_path)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [str(messy)]
    assert "1 file is not in the canonical layout" in result.stderr
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in before} == before


def test_check_exits_0_when_every_file_is_formatted(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", FORMATTED)
    result = run("--check", tmp_path)
    assert (result.exit_code, result.output) == (0, "")


def test_fmt_rewrites_prints_the_changed_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", UNFORMATTED)
    os.chmod(path, 0o640)
    result = run(path)
    assert (result.exit_code, result.stdout) == (0, f"{path}\n")
    assert path.read_text() == FORMATTED
    assert path.stat().st_mode & 0o777 == 0o640
    again = run(path)
    assert (again.exit_code, again.output) == (0, "")


def test_fmt_through_a_symlink_rewrites_the_file_and_keeps_the_link(tmp_path: Path) -> None:
    target = write(tmp_path / "real.yaml", UNFORMATTED)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert run(link).exit_code == 0
    assert link.is_symlink() and target.read_text() == FORMATTED


def test_diff_shows_the_change_with_values_masked(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", UNFORMATTED)
    result = run("--check", "--diff", path)
    assert result.exit_code == 1
    assert "+  u-1:" in result.stdout and "-version: live" in result.stdout
    assert "alice@example.com" not in result.stdout and "a•••@example.com" in result.stdout
    assert "apns_token:a2" not in result.stdout
    shown = run("--check", "--diff", "--show-values", path)
    assert "alice@example.com" in shown.stdout


def test_help_documents_the_layout_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["fmt", "--help"])
    assert result.exit_code == 0
    assert "profiles sorted by distinct_id" in result.output
    assert "reconciler fmt --check" in result.output


def test_every_example_configuration_is_in_the_canonical_layout() -> None:
    """The examples are what people copy: they show the layout `fmt --check` asks for."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    folders = sorted(path.parent for path in examples.rglob("*.yaml")
                     if ".github" not in path.parts and path.name != ".gitlab-ci.yml")
    result = run("--check", *sorted(set(folders)))
    assert result.exit_code == 0, result.output
