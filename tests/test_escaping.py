"""No terminal control character from a server, a state or a ledger reaches any output raw.

A distinct_id, value or `_message` may hold an ESC sequence (`\\x1b[2J` clears the screen), a
bidi control (`\\u202e` reverses what follows), CR (overwrites the line), BEL, NUL, C1 controls
or line separators. Every output is checked with color off, so that any escape sequence in it
came from the data: text, markdown and CSV show them escaped, JSON as `\\uXXXX` (still valid,
and decoding to the exact values).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
from pathlib import Path
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from reconciler.audit import AuditEntry, AuditLedger
from reconciler.cli import cli
from reconciler.cli.group import ReconcilerGroup
from reconciler.drift import DriftReport, compare
from reconciler.errors import ApiError, ConfigError, Problem
from reconciler.model import ChannelData
from reconciler.render import render_drift

HOSTILE = "\x1b[2J\u202e\r\x07\x00\x9b\u2028\x7f"
"""ESC sequence, bidi override, CR, BEL, NUL, C1 CSI, line separator, DEL."""
HOSTILE_ID = f"u-{HOSTILE}"
STATE_ID = HOSTILE_ID.replace("\x00", "")
"""A state refuses a NUL in a profile id (a file the tool reads back is checked first)."""


def assert_printable(output: str) -> None:
    raw = sorted({char for char in output if not (char.isprintable() or char in "\n\t")})
    assert not raw, f"raw control characters {raw!r} in {output!r}"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--no-color", *(str(arg) for arg in args)], env=env)


def checked(result: Result) -> Result:
    assert_printable(result.stdout)
    assert_printable(result.stderr)
    return result


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state recording a hostile id, hostile values, and a hostile unmanaged key."""
    path = tmp_path / "FYTEST-live.json"
    path.write_text(json.dumps({
        "format_version": 1, "lineage": "6f1c1f0e-8a8e-4b8e-9a55-0f5a1f7c1001", "serial": 1,
        "workspace": "FYTEST", "version": "live",
        "profiles": {STATE_ID: {"email": f"a{HOSTILE}@example.com", "sms": f"+91{HOSTILE}",
                                  "push": [{"token": f"fcm_token:{HOSTILE}",
                                            "integration_id": HOSTILE, "status": 1}],
                                  f"web{HOSTILE}": {"endpoint": HOSTILE}}},
        "missing": [f"gone-{STATE_ID[2:]}"], "unconfirmed": [STATE_ID],
    }))
    return path


# --- state list / show --------------------------------------------------------------------

def test_state_list_escapes_ids(state: Path) -> None:
    result = checked(run("state", "list", "--state", state))
    assert result.exit_code == 0, result.output
    assert "u-\\x1b[2J\\u202e\\r\\x07\\x9b\\u2028\\x7f (unconfirmed" in result.stdout
    assert "gone-\\x1b[2J" in result.stdout


@pytest.mark.parametrize("show_values", [False, True])
def test_state_show_text_escapes_ids_values_and_keys(state: Path, show_values: bool) -> None:
    flags = ["--show-values"] if show_values else []
    result = checked(run("state", "show", STATE_ID, "--state", state, *flags))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("u-\\x1b[2J\\u202e")
    assert "web\\x1b[2J" in result.stdout
    if show_values:
        assert "email: a\\x1b[2J\\u202e\\r\\x07\\x00\\x9b\\u2028\\x7f@example.com" in result.stdout


def test_state_show_of_a_missing_profile_escapes_its_id(state: Path) -> None:
    result = checked(run("state", "show", f"gone-{STATE_ID[2:]}", "--state", state))
    assert result.exit_code == 0, result.output
    assert "gone-\\x1b[2J" in result.stdout


def test_state_show_json_stays_valid_json_of_the_exact_values(state: Path) -> None:
    masked = checked(run("state", "show", STATE_ID, "--state", state, "--format", "json"))
    assert masked.exit_code == 0, masked.output
    assert f"a{HOSTILE}@example.com" not in json.loads(masked.stdout)["email"]
    result = checked(run("state", "show", STATE_ID, "--state", state, "--format", "json",
                         "--show-values"))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["email"] == f"a{HOSTILE}@example.com"
    assert document["push"][0]["token"] == f"fcm_token:{HOSTILE}"
    assert "\\u202e" in result.stdout and "\\u009b" in result.stdout  # bidi and C1 too


# --- audit text / json / csv ----------------------------------------------------------------

@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    with AuditLedger(tmp_path / "audit.jsonl") as audit:
        audit.append(AuditEntry(
            actor=f"eve{HOSTILE}", commit=None, plan_id=HOSTILE, workspace="FYTEST",
            version="live", distinct_id=HOSTILE_ID, operation="patch_channel",
            request={"channel": {"email": HOSTILE}}, status=400,
            message=f"bad {HOSTILE} request", attempts=1, before={}, after={"sms": HOSTILE}))
    return tmp_path


def test_audit_text_escapes_every_field(ledger: Path) -> None:
    # --show-values: masked, the message's quote of the sms value would hide what is tested
    result = checked(run("audit", "--state-dir", ledger, "--show-values"))
    assert result.exit_code == 0, result.output
    assert "u-\\x1b[2J\\u202e" in result.stdout and "bad \\x1b[2J\\u202e" in result.stdout
    assert len(result.stdout.splitlines()) == 1


def test_audit_json_stays_json_lines_of_the_exact_records(ledger: Path) -> None:
    result = checked(run("audit", "--state-dir", ledger, "--format", "json", "--show-values"))
    assert result.exit_code == 0, result.output
    [record] = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert (record["distinct_id"], record["message"]) == (HOSTILE_ID, f"bad {HOSTILE} request")
    assert record["after"] == {"sms": HOSTILE}


def test_audit_csv_escapes_cells_and_keeps_json_cells_valid(ledger: Path) -> None:
    result = checked(run("audit", "--state-dir", ledger, "--format", "csv", "--show-values"))
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["distinct_id"] == "u-\\x1b[2J\\u202e\\r\\x07\\x00\\x9b\\u2028\\x7f"
    assert orjson.loads(row["request"]) == {"channel": {"email": HOSTILE}}


# --- drift --------------------------------------------------------------------------------

def hostile_drift() -> DriftReport:
    def data(**channels: Any) -> ChannelData:
        return ChannelData.from_json(channels)

    changed = compare(HOSTILE_ID, data(email=f"a{HOSTILE}@x.io", webpush={HOSTILE: 1}),
                      data(email=f"b{HOSTILE}@x.io", sms=HOSTILE, webpush={HOSTILE: 2}))
    gone = compare(f"gone-{HOSTILE}", data(slack=HOSTILE), None)
    assert changed is not None and gone is not None
    return DriftReport(f"FY{HOSTILE}", "live", (changed, gone), checked=2)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
@pytest.mark.parametrize("show_values", [False, True])
def test_drift_reports_escape_ids_and_values(fmt: str, show_values: bool) -> None:
    rendered = render_drift(hostile_drift(), fmt, color=False, show_values=show_values)
    assert_printable(rendered)
    if fmt == "json":
        profiles = orjson.loads(rendered)["profiles"]
        assert {profile["distinct_id"] for profile in profiles} == {HOSTILE_ID, f"gone-{HOSTILE}"}


# --- errors -------------------------------------------------------------------------------

def test_an_error_naming_a_hostile_id_is_escaped(state: Path) -> None:
    result = checked(run("state", "show", f"nobody{HOSTILE}", "--state", state))
    assert result.exit_code == 1
    assert "nobody\\x1b[2J" in result.stderr


def raising(error: Exception) -> Result:
    """What a command that raises `error` leaves, run by the reconciler's group."""
    @click.group(cls=ReconcilerGroup)
    def group() -> None:
        pass

    @group.command()
    def call() -> None:
        raise error

    return checked(CliRunner().invoke(group, ["call"]))


def test_a_server_message_in_an_error_is_escaped_on_one_line() -> None:
    result = raising(ApiError(f"the server answered 400: {HOSTILE}\nError: all good"))
    assert result.exit_code == 1
    assert result.stderr == ("Error: the server answered 400: "
                             "\\x1b[2J\\u202e\\r\\x07\\x00\\x9b\\u2028\\x7f\\nError: all good\n")


def test_an_internal_error_is_escaped() -> None:
    result = raising(RuntimeError(HOSTILE))
    assert result.exit_code == 1 and "internal error" in result.stderr


def test_a_usage_error_echoing_an_argument_is_escaped() -> None:
    result = checked(run("state", "list", f"--bogus{HOSTILE}"))
    assert result.exit_code == 1
    assert "--bogus\\x1b[2J" in result.stderr and "Usage:" in result.stderr


def test_configuration_problems_naming_a_hostile_key_are_escaped(tmp_path: Path) -> None:
    config = tmp_path / "profiles.yaml"
    config.write_text('workspace: FYTEST\nprofiles:\n  "u-\\e[2J\\u202e":\n'
                      '    "fax\\e[2J\\r\\a": x\n')
    result = checked(run("validate", config))
    assert result.exit_code == 1
    assert "fax" in result.stderr


def test_each_problem_of_a_configuration_error_is_escaped_on_its_line() -> None:
    @click.group(cls=ReconcilerGroup)
    def group() -> None:
        pass

    @group.command()
    def load() -> None:
        raise ConfigError([Problem(f"p{HOSTILE}.yaml", 2, 3, f"unknown channel {HOSTILE}")])

    result = checked(CliRunner().invoke(group, ["load"]))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "p\\x1b[2J\\u202e\\r\\x07\\x00\\x9b\\u2028\\x7f.yaml:2:3: unknown channel "
        "\\x1b[2J\\u202e\\r\\x07\\x00\\x9b\\u2028\\x7f",
        "Error: configuration has 1 problem"]


# --- the lock holder ------------------------------------------------------------------------

def write_lock(state: Path, host: str, pid: int = 4242) -> Path:
    lock = state.with_name(state.name + ".lock")
    lock.write_text(json.dumps({"pid": pid, "host": host, "command": f"apply {HOSTILE}",
                                "started_at": f"2026-11-28T10:00:00Z{HOSTILE}"}))
    return lock


def test_a_lock_held_by_a_hostile_holder_is_named_escaped(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)  # the lock file's existence is the lock
    write_lock(state, f"ci{HOSTILE}")
    result = checked(run("state", "rm", HOSTILE_ID, "--state", state))
    assert result.exit_code == 1
    assert "pid 4242 on ci\\x1b[2J" in result.stderr


def test_unlock_names_a_hostile_holder_escaped(state: Path) -> None:
    lock = write_lock(state, f"ci{HOSTILE}")
    refused = checked(run("state", "unlock", "--state", state))
    assert refused.exit_code == 1 and lock.exists()
    assert "pid 4242 on ci\\x1b[2J" in refused.stderr
    removed = checked(run("state", "unlock", "--state", state, "--force"))
    assert removed.exit_code == 0 and not lock.exists()
    assert "pid 4242 on ci\\x1b[2J" in removed.stdout


def test_an_internal_error_names_its_type_and_line_never_its_values() -> None:
    """A bug's message may hold what it met: the line that goes to CI logs holds none of it."""
    result = raising(KeyError("+15550001234 / user@example.com / fcm_token:abc"))
    assert result.exit_code == 1
    assert "internal error: KeyError at test_escaping.py:" in result.stderr
    for value in ("15550001234", "user@example.com", "fcm_token:abc"):
        assert value not in result.output


def test_an_os_error_is_told_in_the_systems_words_with_its_file() -> None:
    """A full disk or a permission is the machine's, not a bug: what to fix, escaped."""
    result = raising(PermissionError(13, "Permission denied", "state/x\x1b[2J.json"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Permission denied: state/x\\x1b[2J.json (")
    assert "internal error" not in result.stderr
