"""Specifications of the local state file: round trip, serial and lineage, files, corruption."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from click.testing import CliRunner

from reconciler import atomic
from reconciler.cli import cli
from reconciler.errors import StateCorruptError, StateError, StateMismatchError
from reconciler.model import ChannelData, Token
from reconciler.state import LocalStateFile, State, default_state_path

FIXTURES = Path(__file__).parent / "fixtures" / "state"
SCHEMA = Path(__file__).parent.parent / "schemas" / "state.schema.json"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def alice() -> ChannelData:
    return ChannelData(
        {"sms": "+919879000000", "email": "alice@example.com",
         "push": (Token("fcm_token:abc", "IXXXXXXX"), Token("apns_token:def", None, 0)),
         "inapp": (Token("u-1001"),)},
        {"webpush": [{"endpoint": "https://push.example.com/x"}]},
    )


@pytest.fixture
def backend(tmp_path: Path) -> LocalStateFile:
    return LocalStateFile(tmp_path / "FYTEST-live.json")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask of 0, so that only an explicit 0600 gives 0600."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def saved(backend: LocalStateFile, **profiles: ChannelData) -> State:
    state = backend.load("FYTEST", "live")
    state.profiles.update(profiles)
    return backend.save(state)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the value and the round trip -------------------------------------------------------------

def test_absent_state_loads_as_a_new_empty_state(backend: LocalStateFile) -> None:
    assert backend.load("FYTEST", "live") == State(None, 0, "FYTEST", "live", {})
    assert not backend.path.exists()


def test_round_trip_keeps_every_channel_token_field_and_unmanaged_key(
        backend: LocalStateFile) -> None:
    saved(backend, **{"u-1001": alice(), "u-1002": ChannelData()})
    loaded = LocalStateFile(backend.path).load("FYTEST", "live")
    assert loaded.profiles == {"u-1001": alice(), "u-1002": ChannelData()}


def test_entry_count_counts_single_values_and_tokens() -> None:
    state = State(None, 0, "FYTEST", "live", {"u-1001": alice(), "u-1002": ChannelData()})
    assert state.entry_count() == 5


def test_written_file_follows_the_schema_with_profiles_sorted(backend: LocalStateFile) -> None:
    saved(backend, **{"u-2": ChannelData({"email": "b@x.io"}), "u-10": alice(),
                      "u-1": ChannelData()})
    document = json.loads(backend.path.read_bytes())
    jsonschema_rs.validator_for(json.loads(SCHEMA.read_text())).validate(document)
    assert list(document) == ["format_version", "lineage", "serial", "workspace", "version",
                              "profiles"]
    assert list(document["profiles"]) == ["u-1", "u-10", "u-2"]
    assert document["profiles"]["u-10"]["push"][1] == {"token": "apns_token:def", "status": 0}


def test_first_save_fixes_a_new_lineage_and_serial_1(backend: LocalStateFile) -> None:
    state = saved(backend)
    assert state.serial == 1
    assert state.lineage is not None and UUID.match(state.lineage)
    other = LocalStateFile(backend.path.with_name("FYTEST-test.json"))
    assert saved(other).lineage != state.lineage


def test_every_save_increments_serial_and_keeps_lineage(backend: LocalStateFile) -> None:
    first = saved(backend)
    second = backend.save(first)
    third = backend.save(second)
    assert (first.serial, second.serial, third.serial) == (1, 2, 3)
    assert first.lineage == second.lineage == third.lineage
    reloaded = LocalStateFile(backend.path).load("FYTEST", "live")
    assert (reloaded.lineage, reloaded.serial) == (first.lineage, 3)


def test_save_returns_a_copy_and_leaves_its_argument_alone(backend: LocalStateFile) -> None:
    state = backend.load("FYTEST", "live")
    result = backend.save(state)
    result.profiles["u-1"] = alice()
    assert (state.lineage, state.serial, state.profiles) == (None, 0, {})


def test_default_path_is_state_dir_workspace_and_version() -> None:
    assert default_state_path("FY123", "test") == Path("state") / "FY123-test.json"


# --- files: directory, modes, backup ---------------------------------------------------------

def test_state_directory_is_created_when_missing(tmp_path: Path) -> None:
    backend = LocalStateFile(tmp_path / "new" / "dir" / "FYTEST-live.json")
    saved(backend)
    assert backend.path.is_file()


def test_state_backup_and_lock_files_are_created_0600(
        backend: LocalStateFile, open_umask: None) -> None:
    first = saved(backend)
    backend.save(first)
    assert mode(backend.path) == 0o600
    assert mode(backend.backup_path) == 0o600
    with backend.lock("apply"):
        assert mode(backend.lock_path) == 0o600


def test_a_backup_is_private_even_when_the_file_it_keeps_was_not(
        backend: LocalStateFile) -> None:
    first = saved(backend)
    backend.path.chmod(0o644)  # checked out by git, or copied in by hand
    backend.save(first)
    assert mode(backend.backup_path) == 0o600
    assert mode(backend.path) == 0o600


def test_backup_holds_the_previous_version(backend: LocalStateFile) -> None:
    first = saved(backend, **{"u-1001": alice()})
    assert not backend.backup_path.exists()
    previous = backend.path.read_bytes()
    first.profiles["u-1002"] = ChannelData({"email": "bob@example.com"})
    backend.save(first)
    assert backend.backup_path.read_bytes() == previous
    assert LocalStateFile(backend.backup_path).load("FYTEST", "live").serial == 1


def test_backup_is_a_copy_where_hard_links_are_refused(
        backend: LocalStateFile, monkeypatch: pytest.MonkeyPatch) -> None:
    first = saved(backend, **{"u-1001": alice()})
    previous = backend.path.read_bytes()

    def no_links(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    backend.save(first)
    assert backend.backup_path.read_bytes() == previous


# --- a state that is not ours or not whole ---------------------------------------------------

CORRUPT = {
    "truncated.json": "is not valid JSON: unexpected end of data at line 9 column 26",
    "empty.json": "is not valid JSON",
    "not-utf8.json": "is not valid JSON",
    "foreign.json": "is not a reconciler state file (no format_version)",
    "not-an-object.json": "is not a reconciler state file (no format_version)",
    "future-format.json": "has format_version 2; this reconciler reads format_version 1 only",
    "missing-fields.json": 'at the top level: the member "lineage" is missing',
    # The value is personal data: the message says what is wrong, never what the value is.
    "number-as-phone.json": "at /profiles/u-1001/sms: an integer where a string is expected",
    "token-without-status.json": 'at /profiles/u~11001/push/0: the member "status" is missing',
}


@pytest.mark.parametrize("fixture", sorted(CORRUPT))
def test_corrupt_state_is_refused_naming_file_and_problem_and_never_overwritten(
        tmp_path: Path, fixture: str) -> None:
    path = tmp_path / "FYTEST-live.json"
    shutil.copyfile(FIXTURES / fixture, path)
    content = path.read_bytes()
    backend = LocalStateFile(path)
    with pytest.raises(StateCorruptError) as raised:
        backend.load("FYTEST", "live")
    message = str(raised.value)
    assert f"state {path} " in message
    assert CORRUPT[fixture] in message
    assert "919879000000" not in message
    assert "left unchanged" in message
    with pytest.raises(StateCorruptError):
        backend.save(State.new("FYTEST", "live"))
    assert path.read_bytes() == content
    assert not backend.backup_path.exists()


def test_corrupt_state_message_points_to_the_backup(backend: LocalStateFile) -> None:
    backend.save(saved(backend))
    backend.path.write_bytes(b"{")
    with pytest.raises(StateCorruptError, match=f"previous version is in {backend.backup_path}"):
        backend.load("FYTEST", "live")


def test_state_corrupted_after_load_is_not_overwritten(backend: LocalStateFile) -> None:
    state = saved(backend)
    backend.path.write_bytes(b'{"hand": "edited"}')
    with pytest.raises(StateCorruptError):
        backend.save(state)
    assert backend.path.read_bytes() == b'{"hand": "edited"}'


def test_valid_fixture_loads(tmp_path: Path) -> None:
    path = tmp_path / "FYTEST-live.json"
    shutil.copyfile(FIXTURES / "valid.json", path)
    state = LocalStateFile(path).load("FYTEST", "live")
    assert (state.lineage, state.serial) == ("0b7c2a4e-5d1f-4c3b-9a8e-6f2d1c0b9a87", 3)
    assert state.profiles == {"u-1001": alice(), "u-1002": ChannelData()}


# --- a state that belongs elsewhere or moved on ----------------------------------------------

@pytest.mark.parametrize(("workspace", "version"), [("FYOTHER", "live"), ("FYTEST", "test")])
def test_state_of_another_workspace_or_version_is_refused_naming_both(
        backend: LocalStateFile, workspace: str, version: str) -> None:
    saved(backend)
    with pytest.raises(StateMismatchError) as raised:
        backend.load(workspace, version)
    assert str(raised.value).startswith(
        f"state {backend.path} records workspace FYTEST version live, "
        f"but this run is for workspace {workspace} version {version}")


def test_save_refuses_a_state_that_changed_since_it_was_loaded(backend: LocalStateFile) -> None:
    stale = saved(backend)
    LocalStateFile(backend.path).save(stale)  # another run saved serial 2 meanwhile
    current = backend.path.read_bytes()
    with pytest.raises(StateError, match="changed since this run loaded it"):
        backend.save(stale)
    assert backend.path.read_bytes() == current


def test_save_refuses_to_replace_a_state_created_since_an_absent_one_was_loaded(
        backend: LocalStateFile) -> None:
    new = backend.load("FYTEST", "live")
    saved(LocalStateFile(backend.path))
    with pytest.raises(StateError, match=r"loaded no state, now lineage \S+ serial 1"):
        backend.save(new)


def test_unreadable_state_is_a_state_error_naming_it(backend: LocalStateFile) -> None:
    backend.path.mkdir()
    with pytest.raises(StateError, match=f"cannot read state {backend.path}"):
        backend.load("FYTEST", "live")


def test_failed_save_reports_the_old_state_unchanged(
        backend: LocalStateFile, monkeypatch: pytest.MonkeyPatch) -> None:
    state = saved(backend)
    before = backend.path.read_bytes()

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(StateError, match="No space left on device; the previous state is"):
        backend.save(state)
    monkeypatch.undo()
    assert backend.path.read_bytes() == before


def test_load_without_workspace_accepts_what_the_state_records(backend: LocalStateFile) -> None:
    assert backend.load(None, None).profiles == {}
    saved(backend, **{"u-1001": alice()})
    state = backend.load(None, None)
    assert (state.workspace, state.version, list(state.profiles)) == ("FYTEST", "live",
                                                                      ["u-1001"])
    with pytest.raises(StateMismatchError, match="this run is for workspace FYTEST version test"):
        backend.load(None, "test")


@pytest.mark.parametrize("state", [
    State(None, 0, "", "live", {}),
    State(None, 0, "FYTEST", "staging", {}),
    State(None, 0, "FYTEST", "live", {"u-1": ChannelData({"email": ""})}),
    State(None, 0, "FYTEST", "live", {"u-1": ChannelData({"push": (Token("t", None, 2),)})}),
    State(None, 0, "FYTEST", "live", {"": ChannelData()}),
], ids=["no workspace", "unknown version", "empty email", "status 2", "empty distinct_id"])
def test_a_state_the_next_load_would_refuse_is_never_written(
        backend: LocalStateFile, state: State) -> None:
    with pytest.raises(StateError, match="refusing to save an invalid state: at /"):
        backend.save(state)
    assert not backend.path.exists()


# --- every field checked before the state is believed -----------------------------------------

VALID = (FIXTURES / "valid.json").read_bytes()


def edited(change: Callable[[dict[str, Any]], object]) -> bytes:
    document = json.loads(VALID)
    change(document)
    return json.dumps(document, ensure_ascii=False).encode()


def _set(*path_and_value: Any) -> Callable[[dict[str, Any]], object]:
    *path, key, value = path_and_value

    def change(document: dict[str, Any]) -> None:
        for part in path:
            document = document[part]
        document[key] = value
    return change


def _token(**fields: Any) -> Callable[[dict[str, Any]], object]:
    return _set("profiles", "u-1001", "push", 0, {"token": "fcm_token:abc", "status": 1,
                                                  **fields})


REFUSED = {
    # The case: a repeated "profiles" hid the first one, and the next save dropped it.
    "repeated profiles key": (VALID.rstrip()[:-1] + b', "profiles": {}}',
                              'holds the key "profiles" twice in one object (at "/profiles")'),
    "repeated key in a token": (
        VALID.replace(b'"integration_id": "IXXXXXXX", "status": 1',
                      b'"integration_id": "IXXXXXXX", "status": 1, "status": 0'),
        'holds the key "status" twice in one object (at "/profiles/u-1001/push/0/status")'),
    "NUL in a distinct_id": (
        edited(_set("profiles", "u\x001001", {})),
        'at /profiles: the key "u\\u00001001" is not allowed: holds the control character '
        "U+0000"),
    "empty distinct_id": (edited(_set("profiles", "", {})),
                          'at /profiles: the key "" is not allowed: an empty string'),
    "serial 2^64-1": (edited(_set("serial", 2**64 - 1)),
                      "at /serial: an integer above the maximum 9007199254740991"),
    "serial 2^64 (read as a float)": (edited(_set("serial", 2**64)),
                                      "at /serial: an integer above the maximum"),
    "serial 2^53": (edited(_set("serial", 2**53)),
                    "at /serial: an integer above the maximum 9007199254740991"),
    "serial past what a run may load": (
        edited(_set("serial", 2**52 + 1)),
        "has serial 4503599627370497, above 4503599627370496 (2^52): every save adds 1"),
    "serial as text": (edited(_set("serial", "3")),
                       "at /serial: a string where an integer is expected"),
    "serial as a boolean": (edited(_set("serial", True)),
                            "at /serial: a boolean where an integer is expected"),
    "serial 0": (edited(_set("serial", 0)), "at /serial: an integer below the minimum 1"),
    "workspace with a path": (edited(_set("workspace", "../FYTEST")),
                              "at /workspace: holds a path separator"),
    "empty token": (edited(_token(token="")), "at /profiles/u-1001/push/0/token: an empty string"),
    "token as a number": (edited(_token(token=7)),
                          "at /profiles/u-1001/push/0/token: an integer where a string is "
                          "expected"),
    "integration_id as a number": (
        edited(_token(integration_id=5)),
        "at /profiles/u-1001/push/0/integration_id: an integer where null or a string is "
        "expected"),
    "status 2": (edited(_token(status=2)), "at /profiles/u-1001/push/0/status: not one of 0, 1"),
    "status as text": (edited(_token(status="1")),
                       "at /profiles/u-1001/push/0/status: not one of 0, 1"),
    "status as a boolean": (edited(_token(status=True)),
                            "at /profiles/u-1001/push/0/status: not one of 0, 1"),
    "token with an unknown field": (edited(_token(expires=1)),
                                    'at /profiles/u-1001/push/0: unexpected member "expires"'),
    "token as a string": (edited(_set("profiles", "u-1001", "push", 0, "fcm_token:abc")),
                          "at /profiles/u-1001/push/0: a string where an object is expected"),
    "profiles as a list": (edited(_set("profiles", [])),
                           "at /profiles: an array where an object is expected"),
    "profile as a string": (edited(_set("profiles", "u-1002", "x")),
                            "at /profiles/u-1002: a string where an object is expected"),
    "unconfirmed as a string": (edited(_set("unconfirmed", "u-1001")),
                                "at /unconfirmed: a string where an array is expected"),
    "missing holding a number": (edited(_set("missing", [1001])),
                                 "at /missing/0: an integer where a string is expected"),
    "missing holding a NUL id": (edited(_set("missing", ["u\x00"])),
                                 "at /missing/0: holds the control character U+0000"),
    "unconfirmed twice": (edited(_set("unconfirmed", ["u-1", "u-1"])),
                          "at /unconfirmed: the same item appears twice"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_state_with_a_wrong_field_is_refused_at_load_and_left_unchanged(
        tmp_path: Path, case: str) -> None:
    content, expected = REFUSED[case]
    path = tmp_path / "FYTEST-live.json"
    path.write_bytes(content)
    backend = LocalStateFile(path)
    with pytest.raises(StateCorruptError) as raised:
        backend.load("FYTEST", "live")
    message = str(raised.value)
    assert message.startswith(f"state {path} ")
    assert expected in message
    assert "The file was left unchanged" in message
    with pytest.raises(StateCorruptError):
        backend.save(State.new("FYTEST", "live"))
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == content


def test_null_integration_id_reads_as_none_and_float_fields_as_ints(tmp_path: Path) -> None:
    path = tmp_path / "FYTEST-live.json"
    path.write_bytes(edited(lambda document: (
        _token(integration_id=None, status=0.0)(document), _set("serial", 3.0)(document))))
    state = LocalStateFile(path).load("FYTEST", "live")
    token = state.profiles["u-1001"].channels["push"][0]
    assert token == Token("fcm_token:abc", None, 0)
    assert type(token.status) is int and type(state.serial) is int


def test_the_largest_serial_a_run_may_load_loads(tmp_path: Path) -> None:
    path = tmp_path / "FYTEST-live.json"
    path.write_bytes(edited(_set("serial", 2**52)))
    backend = LocalStateFile(path)
    saved = backend.save(backend.load("FYTEST", "live"))
    assert saved.serial == 2**52 + 1


UNICODE_IDS = ["ü-1001", "用户-1002", "🎉", "e\u0301", "\u00e9", "\u05d0\u05d1", "a\u200bb",
               "tab\there", "x" * 3000]


def test_non_ascii_distinct_ids_survive_load_and_save_byte_for_byte(
        backend: LocalStateFile) -> None:
    state = backend.load("FYTEST", "live")
    state.profiles.update({distinct_id: ChannelData({"email": f"{index}@example.com"})
                           for index, distinct_id in enumerate(UNICODE_IDS)})
    state.unconfirmed.add("🎉")
    state.missing.add("用户-1003")
    backend.save(state)
    first = backend.path.read_bytes()
    assert "用户-1002".encode() in first and "e\u0301".encode() in first  # as written, unescaped
    loaded = LocalStateFile(backend.path).load("FYTEST", "live")
    assert sorted(loaded.profiles) == sorted(UNICODE_IDS)  # NFC and NFD: two profiles
    assert (loaded.unconfirmed, loaded.missing) == ({"🎉"}, {"用户-1003"})
    LocalStateFile(backend.path).save(loaded)
    assert backend.path.read_bytes() == first.replace(b'"serial": 1,', b'"serial": 2,')


# --- through the commands: refused before anything is written ---------------------------------

def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` and the sha256 of its bytes."""
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


CONFIG = "workspace: FYTEST\nprofiles:\n  u-1001:\n    email: alice@example.com\n  u-1002: {}\n"
COMMANDS = {
    "plan": ["plan", "{config}", "--state", "{state}"],
    "state list": ["state", "list", "--state", "{state}"],
    "state show": ["state", "show", "u-1001", "--state", "{state}"],
    "state rm": ["state", "rm", "u-1002", "--state", "{state}"],
    "apply": ["apply", "{config}", "--state", "{state}", "--auto-approve"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", ["repeated profiles key", "serial 2^64-1", "NUL in a distinct_id",
                                  "serial past what a run may load"])
def test_commands_refuse_a_corrupt_state_and_change_no_file(
        tmp_path: Path, command: str, case: str) -> None:
    content, expected = REFUSED[case]
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    path = state_dir / "FYTEST-live.json"
    path.write_bytes(content)
    shutil.copyfile(FIXTURES / "valid.json", atomic.backup_path(path))
    (state_dir / "audit.jsonl").write_bytes(b"")
    config = tmp_path / "profiles.yaml"
    config.write_text(CONFIG)
    before = snapshot(tmp_path)
    args = [arg.format(config=config, state=path) for arg in COMMANDS[command]]
    # Nothing listens on port 9 of 127.0.0.1: a call would fail, but none may be tried.
    result = CliRunner().invoke(cli, args, env={"FYNO_API_KEY": "k", "FYNO_WSID": None,
                                                "FYNO_BASE_URL": "http://127.0.0.1:9/v1"})
    assert result.exit_code == 1, result.output
    assert f"Error: state {path} " in result.output
    assert expected in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert snapshot(tmp_path) == before
