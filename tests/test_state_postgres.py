"""The PostgreSQL backend against a real server: state, lock, an apply's changes and the
ledger, as the file backend keeps them."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.audit import AuditContext
from reconciler.audit.entry import ERASE_OPERATION
from reconciler.audit.report import opened
from reconciler.encryption import Encryption
from reconciler.errors import EncryptionError, StateError, StateLockedError, UsageError
from reconciler.model import ChannelData, Token
from reconciler.plan import Change, PatchChannels
from reconciler.state import Begun, Doubt, Holds, State
from reconciler.state.postgres import PostgresState
from reconciler.state.schema import LATEST, migrate

ALICE = ChannelData({"email": "alice@example.com", "push": (Token("fcm_token:alice"),)})
BOB = ChannelData({"email": "bob@example.com", "sms": "+14155550100"})
REQUEST = "0" * 31 + "1"
CONTEXT = AuditContext("tester", None, "plan-1", "FYTEST", "live")
KEYED = Encryption.configure("env:KEY", None, None,
                             environ={"KEY": base64.b64encode(b"k" * 32).decode()})


def backend(url: str, **options: Any) -> PostgresState:
    return PostgresState(url, "FYTEST", "live", **options)


def saved(url: str, **profiles: ChannelData) -> State:
    store = backend(url)
    state = store.load("FYTEST", "live")
    state.profiles.update(profiles)
    return store.save(state)


def rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT distinct_id, channel, unconfirmed, xmin::text FROM "
                                  "reconciler_profiles ORDER BY distinct_id").fetchall()


def test_a_state_is_saved_and_loaded_back_as_it_was(postgres_url: str) -> None:
    first = saved(postgres_url, alice=ALICE, bob=BOB)

    loaded = backend(postgres_url).load("FYTEST", "live")

    assert (loaded.lineage, loaded.serial) == (first.lineage, 1)
    assert loaded.profiles == {"alice": ALICE, "bob": BOB}
    assert [row[0] for row in rows(postgres_url)] == ["alice", "bob"]


def test_save_writes_only_the_profiles_that_changed(postgres_url: str) -> None:
    saved(postgres_url, alice=ALICE, bob=BOB)
    before = {row[0]: row[3] for row in rows(postgres_url)}
    store = backend(postgres_url)
    state = store.load("FYTEST", "live")
    state.profiles["bob"] = ChannelData({"email": "bob@new.example.com"})
    store.save(state)

    after = {row[0]: row[3] for row in rows(postgres_url)}
    assert after["alice"] == before["alice"]  # the same row version: not written
    assert after["bob"] != before["bob"]


def test_a_save_over_a_state_changed_since_it_was_loaded_is_refused(postgres_url: str) -> None:
    saved(postgres_url, alice=ALICE)
    one, two = backend(postgres_url), backend(postgres_url)
    first, second = one.load("FYTEST", "live"), two.load("FYTEST", "live")
    one.save(first)

    with pytest.raises(StateError, match="changed since this run loaded it"):
        two.save(second)


def test_the_lock_names_its_holder_and_waits_with_a_timeout(postgres_url: str) -> None:
    saved(postgres_url)
    holder = backend(postgres_url)
    with holder.lock("apply"):
        with pytest.raises(StateLockedError, match=r"locked by pid .* running 'apply'"), \
                backend(postgres_url).lock("plan"):
            pass
        started = time.monotonic()
        with pytest.raises(StateLockedError, match=r"waited 0.5 s"), \
                backend(postgres_url, lock_timeout=0.5).lock("plan"):
            pass
        assert time.monotonic() - started >= 0.5
        assert "apply" in str(backend(postgres_url).lock_info())
    assert backend(postgres_url).lock_info() is None
    with backend(postgres_url).lock("plan"):
        pass


def test_a_killed_holder_frees_the_lock_at_once(postgres_url: str, tmp_path: Path) -> None:
    saved(postgres_url)
    script = tmp_path / "hold.py"
    script.write_text(
        "import sys, time\n"
        "from reconciler.state.postgres import PostgresState\n"
        "with PostgresState(sys.argv[1], 'FYTEST', 'live').lock('apply'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, str(script), postgres_url],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert backend(postgres_url).lock_info() is not None
        holder.kill()  # kill -9: no cleanup runs
        holder.wait()
        with backend(postgres_url, lock_timeout=5).lock("apply"):
            pass  # no `state unlock` needed
    finally:
        holder.kill()


def test_each_finished_call_changes_its_row_and_ledger_in_one_step(postgres_url: str) -> None:
    saved(postgres_url, alice=ALICE)
    store = backend(postgres_url)
    with store.lock("apply"):
        state = store.load("FYTEST", "live")
        log = store.open_journal(state)
        call = PatchChannels("bob", (Change("email", None, "bob@example.com"),))
        log.record(Begun("bob", Doubt(REQUEST, call)))
        # the process dies here: the request is in doubt, and the serial moved on
        after_crash = backend(postgres_url).load("FYTEST", "live")
        assert after_crash.unconfirmed == {"bob"} and after_crash.serial == 2
        assert after_crash.doubts["bob"][0].request_id == REQUEST
        entry = CONTEXT.entry("bob", "patch_channel", request=call.request().body, status=200,
                              message="Updated", attempts=1, before={}, after=BOB.to_json(),
                              request_id=REQUEST, outcome="ok")
        log.record(Holds("bob", BOB), [entry])

    settled = backend(postgres_url).load("FYTEST", "live")
    assert settled.profiles["bob"] == BOB and not settled.unconfirmed and not settled.doubts
    ledger = store.ledger()
    check = ledger.chain()
    records = list(opened(check.records(), ledger.keys))
    assert check.result.ok and [r["request_id"] for r in records] == [REQUEST]
    assert records[0]["after"] == BOB.to_json()
    with psycopg.connect(postgres_url) as connection:
        (line,) = connection.execute("SELECT line FROM reconciler_ledger").fetchone() or ()
    assert b"bob@example.com" not in bytes(line)  # sealed with the profile's data key


def test_an_edited_ledger_row_fails_verification(postgres_url: str) -> None:
    store = backend(postgres_url)
    ledger = store.ledger()
    for number in range(3):
        ledger.append(CONTEXT.entry(f"u-{number}", "import", request=None, status=None,
                                    message="adopted", attempts=0, before=None, after=None))
    with psycopg.connect(postgres_url) as connection:
        connection.execute("UPDATE reconciler_ledger SET line = convert_to(replace(convert_from("
                           "line, 'UTF8'), '\"import\"', '\"state_rm\"'), 'UTF8') WHERE seq = 2")
    check = store.ledger().chain()
    list(check.records())
    assert not check.result.ok and check.result.first_bad == 2
    assert check.result.reason == "edited"


def test_with_a_key_every_row_is_sealed_and_needs_it(postgres_url: str) -> None:
    store = backend(postgres_url, encryption=KEYED)
    state = store.load("FYTEST", "live")
    state.profiles["alice"] = ALICE
    store.save(state)

    assert all(b"alice@example.com" not in bytes(row[1]) for row in rows(postgres_url))
    assert backend(postgres_url, encryption=KEYED).load("FYTEST", "live").profiles == {
        "alice": ALICE}
    with pytest.raises(EncryptionError, match="no key is configured"):
        backend(postgres_url).load("FYTEST", "live")


def test_erasure_destroys_the_profiles_keys_and_the_chain_still_verifies(
        postgres_url: str) -> None:
    store = backend(postgres_url)
    ledger = store.ledger()
    for name in ("u-1", "u-2"):
        ledger.append(CONTEXT.entry(name, "patch_channel", request={"channel": {
            "email": f"{name}@example.com"}}, status=200, message="ok", attempts=1,
            before={}, after=None))
    assert ledger.erase(CONTEXT.entry("u-1", ERASE_OPERATION, request=None, status=None,
                                      message="erased", attempts=0, before=None,
                                      after=None)) == 1

    check = store.ledger().chain()
    records = list(opened(check.records(), store.ledger().keys))
    assert check.result.ok and check.result.count == 3
    assert [r.get("erased", False) for r in records] == [True, False, False]
    assert records[1]["request"] == {"channel": {"email": "u-2@example.com"}}


def test_migrations_run_once_and_a_newer_schema_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert migrate(connection) == list(range(1, LATEST + 1))
        assert migrate(connection) == []
        connection.execute("INSERT INTO reconciler_migrations (version) VALUES (%s)",
                           (LATEST + 1,))
        with pytest.raises(StateError, match="written by a newer reconciler"):
            migrate(connection)


def test_a_url_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(UsageError) as raised:
        PostgresState("postgresql://ci:hunter22@db.example/reconciler", "FYTEST", "live")
    assert "hunter22" not in str(raised.value) and "PGPASSWORD" in str(raised.value)


def test_a_role_that_may_only_read_loads_and_one_without_grants_is_told_what_is_missing(
        postgres_url: str) -> None:
    saved(postgres_url, alice=ALICE)  # the tables exist, made by the owner
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE ROLE plan_reader LOGIN")
        connection.execute("CREATE ROLE stranger LOGIN")
        connection.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO plan_reader")
    reader = postgres_url.replace("//reconciler@", "//plan_reader@")
    stranger = postgres_url.replace("//reconciler@", "//stranger@")

    # no DDL on start: a role that may not create tables can still plan
    assert backend(reader).load("FYTEST", "live").profiles == {"alice": ALICE}
    with pytest.raises(StateError) as raised:
        backend(stranger).load("FYTEST", "live")
    assert "permission denied" in str(raised.value)
    assert "the role needs SELECT, INSERT, UPDATE and DELETE" in str(raised.value)
