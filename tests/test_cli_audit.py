"""`reconciler audit` and `audit verify` through the CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.audit import AuditContext, AuditLedger
from reconciler.audit.report import FIELDS
from reconciler.cli import cli


def ledger(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    context = AuditContext(actor="ci-bot", commit="abc123", plan_id="p-1",
                           workspace="FY1", version="live")
    with AuditLedger(state_dir / "audit.jsonl") as book:
        previous: dict[str, dict[str, str]] = {}
        for distinct_id, email in (("u-1", "alice@example.com"), ("u-2", "bob@example.com"),
                                   ("u-1", "carol@example.com")):
            before = previous.get(distinct_id, {})
            after = {"email": email}
            book.append(context.entry(
                distinct_id, "patch_channel", request={"channel": after},
                status=200, message="Channel has been modified successfully", attempts=1,
                before=before, after=after))
            previous[distinct_id] = after
    return state_dir


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def run(*args: str) -> tuple[int, str]:
    result = invoke(*args)
    return result.exit_code, result.output


def test_audit_lists_one_line_per_record(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    result = invoke("audit", "--state-dir", str(state_dir))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split("  ")[3] for line in lines] == ["u-1", "u-2", "u-1"]
    assert all("ci-bot" in line and "patch_channel" in line for line in lines)
    assert result.stderr == ""


def test_audit_formats_json_and_csv(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "--state-dir", str(state_dir), "--format", "json")
    assert code == 0
    records = [json.loads(line) for line in output.splitlines()]
    assert [record["seq"] for record in records] == [1, 2, 3]
    code, output = run("audit", "--state-dir", str(state_dir), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["distinct_id"] for row in rows] == ["u-1", "u-2", "u-1"]


def test_audit_json_is_json_lines_with_the_documented_fields_in_order(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    result = invoke("audit", "--state-dir", str(state_dir), "--format", "json",
                    "--profile", "u-1")
    assert result.exit_code == 0
    lines = result.stdout.split("\n")
    assert lines[-1] == ""  # every object ends its line
    for line in lines[:-1]:
        record = json.loads(line)
        assert tuple(record) == FIELDS
        assert record["distinct_id"] == "u-1"
    assert [json.loads(line)["seq"] for line in lines[:-1]] == [1, 3]


def test_audit_since_a_future_date_shows_nothing(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "--state-dir", str(state_dir), "--since", "2999-01-01")
    assert code == 0 and output == ""


def test_audit_verify_passes_and_names_the_first_edited_record(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "verify", "--state-dir", str(state_dir))
    assert code == 0 and "3 records, chain intact" in output
    path = state_dir / "audit.jsonl"
    lines = path.read_text().splitlines()
    lines = edit_second(lines)
    path.write_text("\n".join(lines) + "\n")
    code, output = run("audit", "verify", "--state-dir", str(state_dir))
    assert code == 1
    assert "audit.jsonl:2" in output and "edited" in output


def test_audit_without_a_ledger_says_so(tmp_path: Path) -> None:
    code, output = run("audit", "--state-dir", str(tmp_path))
    assert code == 1 and "no audit ledger" in output


# --- the chain is checked while printing --------------------------------------------------

def edit_second(lines: list[str]) -> list[str]:
    lines[1] = lines[1].replace('"status":200', '"status":201')
    return lines


def remove_second(lines: list[str]) -> list[str]:
    return [lines[0], lines[2]]


def swap_second_and_third(lines: list[str]) -> list[str]:
    return [lines[0], lines[2], lines[1]]


def garble_second(lines: list[str]) -> list[str]:
    lines[1] = lines[1][:40]  # a torn line no marker vouches for
    return lines


Damage = Callable[[list[str]], list[str]]


@pytest.mark.parametrize(("damage", "where", "shown"), [
    (edit_second, "2: edited: its content does not match its hash", 3),
    (remove_second, "2: removed: record 2 is missing before this line (record 3)", 2),
    (swap_second_and_third, "2: reordered: record 3 comes before record 2", 3),
    (garble_second, "2: not_json: this line is not JSON", 2),
])
def test_damaged_ledger_is_shown_with_a_warning_and_verify_exits_1_naming_it(
        tmp_path: Path, damage: Damage, where: str, shown: int) -> None:
    state_dir = ledger(tmp_path)
    path = state_dir / "audit.jsonl"
    path.write_text("\n".join(damage(path.read_text().splitlines())) + "\n")

    printed = invoke("audit", "--state-dir", str(state_dir))
    verified = invoke("audit", "verify", "--state-dir", str(state_dir))

    assert printed.exit_code == 0
    assert len(printed.stdout.splitlines()) == shown
    assert printed.stderr == (
        f"Warning: the audit ledger is damaged: {path}:{where}; the records are shown as the "
        "file holds them, and the chain vouches for none from line 2 on (`reconciler audit "
        "verify` exits 1 on it).\n")
    assert verified.exit_code == 1
    assert verified.stdout == ""
    assert verified.stderr == f"Error: the audit ledger is damaged: {path}:{where}\n"


def test_truncated_last_line_is_shown_with_a_warning(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    path = state_dir / "audit.jsonl"
    path.write_bytes(path.read_bytes()[:-30])

    printed = invoke("audit", "--state-dir", str(state_dir), "--format", "json")

    assert printed.exit_code == 0
    assert [json.loads(line)["seq"] for line in printed.stdout.splitlines()] == [1, 2]
    assert printed.stderr.startswith(
        f"Warning: the audit ledger is damaged: {path}:3: truncated: the last line was cut "
        "short")
    assert invoke("audit", "verify", "--state-dir", str(state_dir)).exit_code == 1


@pytest.mark.parametrize("options", [["--profile", "u-1"], ["--format", "json"],
                                     ["--format", "csv"], ["--since", "2999-01-01"]])
def test_the_whole_chain_is_checked_whatever_the_filter_and_format(
        tmp_path: Path, options: list[str]) -> None:
    state_dir = ledger(tmp_path)
    path = state_dir / "audit.jsonl"
    path.write_text("\n".join(edit_second(path.read_text().splitlines())) + "\n")

    printed = invoke("audit", "--state-dir", str(state_dir), *options)

    assert printed.exit_code == 0
    assert f"{path}:2: edited" in printed.stderr


def test_intact_ledger_prints_no_warning(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    for options in ([], ["--profile", "u-1"], ["--format", "json"], ["--format", "csv"]):
        printed = invoke("audit", "--state-dir", str(state_dir), *options)
        assert (printed.exit_code, printed.stderr) == (0, ""), options


def test_warning_escapes_control_characters_from_the_ledger(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    path = state_dir / "audit.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["seq"] = "\x1b[2J"
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")

    printed = invoke("audit", "--state-dir", str(state_dir))

    assert printed.exit_code == 0
    assert "\x1b" not in printed.stderr
    assert f"{path}:2: edited" in printed.stderr


# --- a profile's history ------------------------------------------------------------------

def test_profile_history_tells_each_call_and_its_change_masked(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)

    result = invoke("audit", "--state-dir", str(state_dir), "--profile", "u-1")

    assert result.exit_code == 0
    assert result.stderr == ""
    paragraphs = result.stdout.split("\n\n")
    assert paragraphs[0] == ("History of profile u-1, oldest first. Values are masked "
                             "(--show-values shows them).")
    first, second = paragraphs[1].splitlines(), paragraphs[2].splitlines()
    assert first[0].endswith("  #1  patch_channel, in a run by ci-bot "
                             "(plan p-1, FY1/live, commit abc123)")
    assert first[1:] == ["  status 200, attempt 1: Channel has been modified successfully",
                         "  + email: a•••@example.com"]
    assert second[0].endswith("  #3  patch_channel, in a run by ci-bot "
                              "(plan p-1, FY1/live, commit abc123)")
    assert second[2:] == ["  ~ email: a•••@example.com -> c•••@example.com"]
    assert paragraphs[3] == "2 records.\n"
    assert "bob" not in result.stdout and "alice" not in result.stdout


def test_profile_history_shows_values_with_show_values(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)

    result = invoke("audit", "--state-dir", str(state_dir), "--profile", "u-1",
                    "--show-values")

    assert result.exit_code == 0
    assert "History of profile u-1, oldest first.\n" in result.stdout
    assert "  ~ email: alice@example.com -> carol@example.com\n" in result.stdout


def test_profile_history_of_an_unknown_profile_says_there_is_none(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)

    result = invoke("audit", "--state-dir", str(state_dir), "--profile", "u-9")

    assert result.exit_code == 0
    assert result.stdout.endswith("\nNo record of this profile (is it the right "
                                  "--state-dir?).\n")
