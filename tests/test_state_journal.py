"""The journal: events of a run that died before its save are folded into the state."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.model import ChannelData
from reconciler.state import Begun, Forgotten, Holds, LocalStateFile, State, Unchanged

WS, VERSION = "FYTEST", "live"


def email(address: str) -> ChannelData:
    return ChannelData.from_json({"email": address})


@pytest.fixture
def backend(tmp_path: Path) -> LocalStateFile:
    backend = LocalStateFile(tmp_path / "FYTEST-live.json")
    state = backend.load(WS, VERSION)
    state.profiles.update({"a": email("a@old.io"), "b": email("b@x.io"), "c": email("c@x.io")})
    backend.save(state)
    return backend


def run_that_dies(backend: LocalStateFile) -> State:
    """Journal a few events, then stop without saving, as `kill -9` would."""
    with backend.lock("apply"):
        state = backend.load(WS, VERSION)
        log = backend.open_journal(state)
        log.record(Begun("a"))
        log.record(Holds("a", email("a@new.io")))
        log.record(Begun("b"))
        log.record(Forgotten("b"))  # left management
        log.record(Begun("c"))  # no answer: unknown outcome
        log.close()
    return state


def test_an_unsaved_run_is_folded_into_the_next_load(backend: LocalStateFile) -> None:
    before = run_that_dies(backend)
    state = LocalStateFile(backend.path).load(WS, VERSION)
    assert state.profiles == {"a": email("a@new.io"), "c": email("c@x.io")}
    assert state.unconfirmed == {"c"}
    assert state.serial == before.serial + 1  # the fold is a change


def test_without_the_lock_the_fold_stays_in_memory(backend: LocalStateFile) -> None:
    run_that_dies(backend)
    on_disk = backend.path.read_bytes()
    LocalStateFile(backend.path).load(WS, VERSION)
    assert backend.path.read_bytes() == on_disk
    assert backend.journal_path.exists()


def test_under_the_lock_the_fold_is_saved_and_the_journal_dropped(backend: LocalStateFile) -> None:
    before = run_that_dies(backend)
    fresh = LocalStateFile(backend.path)
    planned = LocalStateFile(backend.path).load(WS, VERSION)  # what a plan would see
    with fresh.lock("apply"):
        state = fresh.load(WS, VERSION)
    assert not backend.journal_path.exists()
    assert state.serial == planned.serial == before.serial + 1
    reloaded = LocalStateFile(backend.path).load(WS, VERSION)
    assert reloaded.profiles == planned.profiles and reloaded.unconfirmed == {"c"}


def test_a_settled_profile_is_confirmed_again(backend: LocalStateFile) -> None:
    with backend.lock("apply"):
        log = backend.open_journal(backend.load(WS, VERSION))
        log.record(Begun("c"))
        log.record(Unchanged("c"))
        log.close()
    state = LocalStateFile(backend.path).load(WS, VERSION)
    assert state.unconfirmed == set() and state.profiles["c"] == email("c@x.io")


def test_a_torn_last_line_is_ignored(backend: LocalStateFile) -> None:
    run_that_dies(backend)
    with backend.journal_path.open("ab") as journal:
        journal.write(b'{"settle": "c", "data": {"email": "c@to')
    state = LocalStateFile(backend.path).load(WS, VERSION)
    assert state.profiles["c"] == email("c@x.io") and state.unconfirmed == {"c"}


def test_a_journal_already_folded_by_a_save_is_ignored(backend: LocalStateFile) -> None:
    run_that_dies(backend)
    leftover = backend.journal_path.read_bytes()
    with backend.lock("apply"):
        backend.load(WS, VERSION)  # folds and saves
    backend.journal_path.write_bytes(leftover)  # as if the unlink had not happened
    state = LocalStateFile(backend.path).load(WS, VERSION)
    assert state.profiles["a"] == email("a@new.io")
    with backend.lock("apply"):
        backend.load(WS, VERSION)
    assert not backend.journal_path.exists()


def test_a_journal_of_another_state_is_refused(backend: LocalStateFile, tmp_path: Path) -> None:
    run_that_dies(backend)
    other = LocalStateFile(tmp_path / "other.json")
    other.save(State.new(WS, VERSION))
    other.journal_path.write_bytes(backend.journal_path.read_bytes())
    with pytest.raises(StateError, match="the state was replaced while a run was unfinished"):
        other.load(WS, VERSION)


def test_a_damaged_journal_line_is_refused_naming_it(backend: LocalStateFile) -> None:
    run_that_dies(backend)
    content = backend.journal_path.read_bytes().split(b"\n")
    content[2] = b"garbage"
    backend.journal_path.write_bytes(b"\n".join(content))
    with pytest.raises(StateError, match="line 3 is damaged"):
        LocalStateFile(backend.path).load(WS, VERSION)


def test_a_journal_is_only_opened_under_the_lock(backend: LocalStateFile) -> None:
    with pytest.raises(StateError, match="under the state lock"):
        backend.open_journal(backend.load(WS, VERSION))


def test_the_journal_is_private_and_a_save_drops_it(backend: LocalStateFile) -> None:
    with backend.lock("apply"):
        state = backend.load(WS, VERSION)
        log = backend.open_journal(state)
        assert stat.S_IMODE(backend.journal_path.stat().st_mode) == 0o600
        log.record(Holds("a", email("a@new.io")))
        log.close()
        state.profiles["a"] = email("a@new.io")
        backend.save(state)
    assert not backend.journal_path.exists()


def test_a_journal_extends_only_a_saved_state(tmp_path: Path) -> None:
    backend = LocalStateFile(tmp_path / "new.json")
    with backend.lock("apply"), pytest.raises(StateError, match="save the new state first"):
        backend.open_journal(backend.load(WS, VERSION))


@pytest.mark.parametrize("line", [
    b'{"settle": 12}', b'{"begin": ""}', b'{"begin": "a", "settle": "a"}', b'[1, 2]',
    b'{"settle": "a", "data": {"email": 5}}', b'{"settle": "a", "data": "x"}',
    b'{"settle": "a", "data": {"push": [{"status": 1}]}}', b'{"missing": null}',
    b'{"settle": "a\\u0000b"}', b'{"settle": "a", "extra": 1}', b'"text"', b'{"begin": ["a"]}',
    b'{"settle": "a", "settle": "b"}', b'{"settle": "a", "data": {"email": "x", "email": "y"}}',
])
def test_a_journal_line_of_the_wrong_shape_is_refused_naming_it(backend: LocalStateFile,
                                                                 line: bytes) -> None:
    run_that_dies(backend)
    content = backend.journal_path.read_bytes().split(b"\n")
    content[2] = line
    backend.journal_path.write_bytes(b"\n".join(content))
    before = {path: path.read_bytes() for path in backend.path.parent.iterdir()}
    with pytest.raises(StateError, match="line 3 is damaged"):
        LocalStateFile(backend.path).load(WS, VERSION)
    with backend.lock("apply"), pytest.raises(StateError, match="line 3 is damaged"):
        backend.load(WS, VERSION)
    assert {path: path.read_bytes() for path in before} == before


@pytest.mark.parametrize("header", [b'{"journal": 1, "lineage": 5, "serial": 1}',
                                    b'{"journal": 1, "lineage": "x", "serial": "1"}',
                                    b'{"journal": 2}', b'{"journal": 1, "serial": true}'])
def test_a_journal_header_of_the_wrong_shape_is_refused(backend: LocalStateFile,
                                                        header: bytes) -> None:
    run_that_dies(backend)
    content = backend.journal_path.read_bytes().split(b"\n")
    content[0] = header
    backend.journal_path.write_bytes(b"\n".join(content))
    with pytest.raises(StateError, match="no valid journal header"):
        LocalStateFile(backend.path).load(WS, VERSION)
