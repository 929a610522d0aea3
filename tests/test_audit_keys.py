"""Per-profile data keys: the ledger's personal values sealed, and erased for good while the
chain still verifies."""

from __future__ import annotations

import base64
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.audit import AuditEntry, AuditError, AuditLedger, query, verify
from reconciler.audit.entry import ERASE_OPERATION
from reconciler.audit.keys import PERSONAL, keys_path
from reconciler.audit.ledger import seal
from reconciler.encryption import Encryption
from reconciler.errors import EncryptionError

ENVIRON = {"KEY": base64.b64encode(b"k" * 32).decode(), "NEW": base64.b64encode(b"n" * 32)
           .decode()}
KEYED = Encryption.configure("env:KEY", None, None, environ=ENVIRON)


def entry(distinct_id: str, operation: str = "patch_channel", **changes: Any) -> AuditEntry:
    channel = {"email": f"{distinct_id}@example.com", "sms": "+919879000000"}
    fields: dict[str, Any] = {
        "actor": "alice", "commit": None, "plan_id": "p-1", "workspace": "FYTEST",
        "version": "live", "distinct_id": distinct_id, "operation": operation,
        "request": {"channel": channel}, "status": 200, "message": f"hi {distinct_id}",
        "attempts": 1, "before": {}, "after": channel}
    fields.update(changes)
    return AuditEntry(**fields)


def erasure(distinct_id: str) -> AuditEntry:
    return entry(distinct_id, ERASE_OPERATION, request=None, status=None, message="erased",
                 attempts=0, before=None, after=None)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.jsonl"


@pytest.mark.parametrize("encryption", [Encryption(), KEYED], ids=["no key", "key"])
def test_a_record_holds_its_values_sealed_and_reading_opens_them(
        path: Path, encryption: Encryption) -> None:
    with AuditLedger(path, encryption=encryption) as ledger:
        ledger.append(entry("u-1"))

    line = orjson.loads(path.read_bytes())
    assert not set(PERSONAL) & line.keys() and set(line["sealed"]) == {"key", "data"}
    assert b"u-1@example.com" not in path.read_bytes() and b"9879000000" not in path.read_bytes()
    (record,) = query(path, encryption=encryption)
    assert record["request"] == {"channel": {"email": "u-1@example.com", "sms": "+919879000000"}}
    assert record["message"] == "hi u-1" and "erased" not in record


def test_with_a_key_the_data_keys_are_wrapped_and_need_it(path: Path) -> None:
    with AuditLedger(path, encryption=KEYED) as ledger:
        ledger.append(entry("u-1"))

    with pytest.raises(EncryptionError, match="no key is configured"):
        list(query(path))
    rotated = Encryption.configure("env:NEW", None, None, environ=ENVIRON)
    with pytest.raises(EncryptionError, match="none of the configured keys"):
        list(query(path, encryption=rotated))
    rotating = Encryption.configure("env:NEW", "env:KEY", None, environ=ENVIRON)
    with AuditLedger(path, encryption=rotating) as ledger:
        assert ledger.rewrap() == 1
    assert next(query(path, encryption=rotated))["message"] == "hi u-1"


def test_erase_destroys_the_values_of_one_profile_and_the_chain_still_verifies(
        path: Path) -> None:
    with AuditLedger(path, encryption=KEYED) as ledger:
        for distinct_id in ("u-1", "u-2", "u-1"):
            ledger.append(entry(distinct_id))
        before = path.read_bytes()
        assert ledger.erase(erasure("u-1")) == 1

    assert path.read_bytes().startswith(before)  # not one byte of the records changed
    assert verify(path).ok and verify(path).count == 4
    records = list(query(path, encryption=KEYED))
    erased = [record for record in records if record["distinct_id"] == "u-1"]
    assert [record["operation"] for record in erased] == ["patch_channel"] * 2 + ["erase"]
    assert all(record["erased"] and record["request"] is None for record in erased[:2])
    assert all(record["status"] == 200 and record["actor"] == "alice" for record in erased[:2])
    assert erased[2]["message"] == "erased"  # the erasure's own record is clear: no values
    assert records[1]["request"]["channel"]["email"] == "u-2@example.com"
    assert b"FYTEST\",\"live\",\"u-1\"" not in keys_path(path).read_bytes()


def test_a_profile_managed_again_after_erasure_gets_a_new_key(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(entry("u-1", message="old"))
        ledger.erase(erasure("u-1"))
        ledger.append(entry("u-1", message="new"))

    messages = [record["message"] for record in query(path)]
    assert messages == [None, "erased", "new"]


def test_the_same_id_in_another_workspace_is_another_person(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(entry("u-1"))
        ledger.append(entry("u-1", workspace="FYOTHER"))
        ledger.erase(erasure("u-1"))

    assert [record.get("erased", False) for record in query(path)] == [True, False, False]


def test_an_edited_sealed_value_is_refused_when_read(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(entry("u-1"))
    record = orjson.loads(path.read_bytes())
    data = base64.b64decode(record["sealed"]["data"])
    record["sealed"]["data"] = base64.b64encode(data[:-1] + bytes([data[-1] ^ 1])).decode()
    path.write_bytes(orjson.dumps(record) + b"\n")

    with pytest.raises(AuditError, match="record 1 fail authentication"):
        list(query(path))
    assert not verify(path).ok  # and the chain names it as edited


def test_a_torn_key_line_is_skipped_and_the_next_append_starts_a_new_line(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(entry("u-1"))
    keys = keys_path(path)
    keys.write_bytes(keys.read_bytes() + b'{"profile":["FYTEST","live","u-2"],"ke')

    with AuditLedger(path) as ledger:
        ledger.append(entry("u-3"))

    assert [record["message"] for record in query(path)] == ["hi u-1", "hi u-3"]
    assert len(keys.read_bytes().splitlines()) == 3


def test_prepare_makes_the_keys_of_a_plan_in_one_append(path: Path) -> None:
    with AuditLedger(path, encryption=KEYED) as ledger:
        created = ledger.prepare(("FYTEST", "live", f"u-{n}") for n in range(50))
        assert ledger.prepare([("FYTEST", "live", "u-1")]) == 0

    assert created == 50
    # the wrapping key's header, and the 50 data keys
    assert len(keys_path(path).read_bytes().splitlines()) == 51


@pytest.mark.parametrize("encryption", [Encryption(), KEYED], ids=["no key", "key"])
def test_preparing_a_plan_holds_its_key_lines_at_their_size(path: Path,
                                                            encryption: Encryption) -> None:
    # Each line orjson makes keeps a 4 KB buffer: 5,000 of them alone would be 20 MB.
    profiles = [("FYTEST", "live", f"u-{n}") for n in range(5_000)]
    tracemalloc.start()
    try:
        with AuditLedger(path, encryption=encryption) as ledger:
            ledger.prepare(profiles)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000


def test_records_written_before_sealing_are_counted_as_unerasable(path: Path) -> None:
    with AuditLedger(path) as ledger:
        ledger.append(entry("u-1"))
    legacy = {key: value for key, value in orjson.loads(path.read_bytes()).items()
              if key not in ("sealed", "hash")}
    legacy.update(seq=2, request={"channel": {"email": "u-1@example.com"}}, message="old")
    with path.open("ab") as file:  # as an older reconciler wrote them: values in clear
        file.write(seal({**legacy, "prev": orjson.loads(path.read_bytes())["hash"]})[0])

    with AuditLedger(path) as ledger:
        ledger.erase(erasure("u-1"))
        assert ledger.unsealed(("FYTEST", "live", "u-1")) == 1
        assert ledger.unsealed(("FYTEST", "live", "u-2")) == 0
    assert verify(path).ok
