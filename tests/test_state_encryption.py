"""The local state backend with an encryption key: state, backup and journal sealed;
profiles erased from the state and its backup."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from reconciler.encryption import Encryption, is_sealed
from reconciler.errors import EncryptionError, StateError
from reconciler.model import ChannelData, Token
from reconciler.state import Begun, Holds, LocalStateFile, State

ENVIRON = {"KEY": base64.b64encode(b"s" * 32).decode(), "NEW": base64.b64encode(b"n" * 32)
           .decode()}
KEYED = Encryption.configure("env:KEY", None, None, environ=ENVIRON)
ALICE = ChannelData({"email": "alice@example.com", "push": (Token("fcm_token:alice"),)})
BOB = ChannelData({"email": "bob@example.com", "sms": "+14155550100"})


def saved(path: Path, encryption: Encryption = KEYED, **profiles: ChannelData) -> State:
    backend = LocalStateFile(path, encryption)
    state = State.new("FYTEST", "live")
    state.profiles = dict(profiles)
    return backend.save(state)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "FYTEST-live.json"


def test_state_and_backup_are_sealed_and_load_back(path: Path) -> None:
    first = saved(path, alice=ALICE)
    backend = LocalStateFile(path, KEYED)
    state = backend.load("FYTEST", "live")
    state.profiles["bob"] = BOB
    backend.save(state)

    for written in (path, backend.backup_path):
        data = written.read_bytes()
        assert is_sealed(data) and b"alice" not in data and b"fcm_token" not in data
    reloaded = LocalStateFile(path, KEYED).load("FYTEST", "live")
    assert reloaded.profiles == {"alice": ALICE, "bob": BOB}
    assert reloaded.serial == first.serial + 1


def test_the_journal_is_sealed_line_by_line_and_folded_back(path: Path) -> None:
    saved(path, alice=ALICE)
    backend = LocalStateFile(path, KEYED)
    with backend.lock("apply"):
        state = backend.load("FYTEST", "live")
        journal = backend.open_journal(state)
        journal.record(Begun("bob"))
        journal.record(Holds("bob", BOB))
        # the process dies here: no save
    raw = backend.journal_path.read_bytes()
    assert b"bob@example.com" not in raw and b"14155550100" not in raw
    assert raw.split(b"\n", 1)[0].count(b'"sealed":{"reconciler_encrypted":1') == 1

    assert LocalStateFile(path, KEYED).load("FYTEST", "live").profiles["bob"] == BOB


def journal_of_a_killed_run(path: Path) -> Path:
    """The sealed journal an apply left when it died after learning that bob holds BOB."""
    saved(path, alice=ALICE)
    backend = LocalStateFile(path, KEYED)
    with backend.lock("apply"):
        journal = backend.open_journal(backend.load("FYTEST", "live"))
        journal.record(Holds("bob", BOB))
    return backend.journal_path


def test_an_edited_journal_line_is_refused(path: Path) -> None:
    journal = journal_of_a_killed_run(path)
    lines = journal.read_bytes().split(b"\n")
    lines[1] = lines[1][:10] + (b"A" if lines[1][10:11] != b"A" else b"B") + lines[1][11:]
    journal.write_bytes(b"\n".join(lines))

    with pytest.raises(StateError, match="line 2 failed authentication"):
        LocalStateFile(path, KEYED).load("FYTEST", "live")


def test_a_clear_event_in_a_sealed_journal_is_refused(path: Path) -> None:
    with journal_of_a_killed_run(path).open("ab") as file:
        file.write(b'{"settle": "mallory", "data": {"email": "m@example.com"}}\n')

    with pytest.raises(StateError, match="line 3 failed authentication"):
        LocalStateFile(path, KEYED).load("FYTEST", "live")


def test_an_edited_state_is_never_overwritten(path: Path) -> None:
    state = saved(path, alice=ALICE)
    edited = bytearray(path.read_bytes())
    edited[-3] ^= 0x40
    path.write_bytes(bytes(edited))

    with pytest.raises(EncryptionError, match="failed authentication"):
        LocalStateFile(path, KEYED).save(state)
    assert path.read_bytes() == bytes(edited)


def test_erase_removes_a_profile_from_the_state_and_rewrites_the_backup(path: Path) -> None:
    saved(path, alice=ALICE, bob=BOB)
    backend = LocalStateFile(path, KEYED)
    with backend.lock("state rm"):
        state = backend.load("FYTEST", "live")
        del state.profiles["bob"]
        state.unconfirmed.add("bob")
        state = backend.save(state)  # the backup now holds bob
        with pytest.raises(StateError, match="still recorded: alice"):
            backend.erase(state, ["alice"])
        erased = backend.erase(state, ["bob"])

    assert "bob" not in erased.unconfirmed
    for version in (path, backend.backup_path):
        opened = KEYED.open_file(version.read_bytes(), str(version))
        assert b"bob" not in opened and b"alice@example.com" in opened


def test_reseal_rotates_state_and_backup_to_the_new_key(path: Path) -> None:
    saved(path, alice=ALICE)
    saved_again = LocalStateFile(path, KEYED)
    saved_again.save(saved_again.load("FYTEST", "live"))
    rotating = Encryption.configure("env:NEW", "env:KEY", None, environ=ENVIRON)
    backend = LocalStateFile(path, rotating)
    with backend.lock("state encrypt"):
        backend.reseal(backend.load("FYTEST", "live"))

    new_only = Encryption.configure("env:NEW", None, None, environ=ENVIRON)
    for version in (path, backend.backup_path):
        assert b'"key":"env:NEW"' in version.read_bytes().split(b"\n", 1)[0]
        assert b"alice@example.com" in new_only.open_file(version.read_bytes(), "s")
