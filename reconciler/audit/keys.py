"""Per-profile data keys: how the ledger forgets a person and still verifies.

Every ledger record about a profile holds that profile's personal values (the request body,
the server's message, the channel data before and after) sealed with the profile's own
random data key, as `"sealed": {"key": K, "data": B64}`. The rest stays clear: time, actor,
commit, plan, operation, method, path, status, outcome, attempts and ids, so the ledger
still shows that calls were made, when, by whom, with which outcome. The hash chain covers
the sealed bytes. `audit erase` destroys the profile's keys: its values become unreadable
for good, while every record, and so the chain, is byte for byte what it was.

(The other way, keyed fingerprints in the chain and the values in a second file, needs that
file kept in step with the ledger at every append and rewritten on every erasure; here an
erasure rewrites only this small file, and an append needs the key of one profile.)

The keys live in `audit.keys` beside the ledger, one JSON line each:

    {"wrap": {...}}                     the clear header of a key-encryption key (by key_id)
    {"profile": [W, V, ID], "key": K, "data": B64, "by": KEY_ID}

`data` is the data key sealed with the configured encryption key named by `by`, or with no
key configured the data key itself (`"by": null`): the ledger is then erasable, but its
values are only as private as this file. Appends are made under the ledger's flock, erasure
and rewrapping replace the file atomically; readers take whole lines only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler.atomic import FILE_MODE, fsync_directory, replace_file
from reconciler.encryption import KEY_BYTES, NONCE_BYTES, Cipher, Encryption, b64, unb64
from reconciler.errors import AuditError, EncryptionError

Profile = tuple[str, str, str]  # workspace, version, distinct_id: one person's profile
PERSONAL: Final = ("request", "message", "before", "after")
"""The fields of a record that may hold personal values: sealed, and erased with the key."""
KEYS_SUFFIX: Final = ".keys"


def keys_path(ledger: Path) -> Path:
    return ledger.with_suffix(KEYS_SUFFIX)


@dataclass(frozen=True, slots=True)
class _Stored:
    key: str  # the data key's name, as records refer to it
    data: bytes
    by: str | None  # key_id of the key that wraps it; None: in clear


class KeyLines(Protocol):
    """Where the data keys' lines are kept: `audit.keys` beside a file ledger, or a table."""

    where: str  # for messages

    def read_new(self) -> tuple[bool, list[bytes]]:
        """(whether to forget what was read before, the whole lines added since)."""
        ...

    def append(self, lines: list[bytes], durable: bool) -> None: ...

    def replace(self, lines: list[bytes]) -> None: ...


class FileKeyLines:
    """`audit.keys`: appended with one `write` of whole lines, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._seen: tuple[int, int, int] | None = None  # device, inode, bytes read

    def read_new(self) -> tuple[bool, list[bytes]]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._seen = None
            return True, []
        seen = self._seen
        restart = (seen is None or seen[:2] != (stat.st_dev, stat.st_ino)
                   or stat.st_size < seen[2])
        start = 0 if restart or seen is None else seen[2]
        if not restart and start == stat.st_size:
            return False, []
        with self.path.open("rb") as file:
            file.seek(start)
            data = file.read()
        whole = data[:data.rfind(b"\n") + 1]  # a torn last line: an unfinished append
        self._seen = (stat.st_dev, stat.st_ino, start + len(whole))
        return restart, [line for line in whole.splitlines() if line]

    def append(self, lines: list[bytes], durable: bool) -> None:
        data = b"".join(line + b"\n" for line in lines)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         FILE_MODE)
        except OSError as err:
            raise AuditError(f"cannot open the ledger's keys {self.path}: {err}") from err
        try:
            os.fchmod(fd, FILE_MODE)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # end the line torn by a writer that died mid-write
            if os.write(fd, data) != len(data):
                raise OSError("short write")
            if durable:
                os.fsync(fd)
        except OSError as err:
            raise AuditError(f"cannot write the ledger's keys {self.path}: {err}") from err
        finally:
            os.close(fd)
        if durable:
            with contextlib.suppress(OSError):
                fsync_directory(self.path.parent)

    def replace(self, lines: list[bytes]) -> None:
        replace_file(self.path, b"".join(line + b"\n" for line in lines))
        self._seen = None


class ProfileKeys:
    """The data keys of one ledger: read lazily, appended to under the ledger's lock."""

    def __init__(self, lines: KeyLines | Path, encryption: Encryption) -> None:
        self.lines: KeyLines = FileKeyLines(lines) if isinstance(lines, Path) else lines
        self.where = self.lines.where
        self.encryption = encryption
        self._stored: dict[Profile, list[_Stored]] = {}
        self._wraps: dict[str, dict[str, Any]] = {}
        self._opened: dict[tuple[Profile, str], bytes] = {}
        self._unwrappers: dict[str, Cipher] = {}  # by key_id

    # reading -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Take in what other processes appended (or a replaced store) since the last look."""
        restart, lines = self.lines.read_new()
        if restart:
            self._forget_all()
        for number, line in enumerate(lines, 1):
            self._take(line, number)

    def key(self, profile: Profile, name: str) -> bytes | None:
        """The data key `name` of `profile`; None when it was erased (or never existed)."""
        opened = self._opened.get((profile, name))
        if opened is not None:
            return opened
        stored = next((s for s in self._stored.get(profile, ()) if s.key == name), None)
        if stored is None:
            return None
        opened = self._unwrap(profile, stored)
        if stored.by is not None:  # a key kept in clear is its own opened form: no copy
            self._opened[(profile, name)] = opened
        return opened

    def current(self, profile: Profile) -> tuple[str, bytes] | None:
        stored = self._stored.get(profile)
        if not stored:
            return None
        name = stored[-1].key
        key = self.key(profile, name)
        assert key is not None
        return name, key

    def open_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """`record` with its sealed values opened; erased ones are None, marked `erased`."""
        sealed = record.get("sealed")
        if not isinstance(sealed, dict):
            return dict(record)
        clear = {name: value for name, value in record.items() if name != "sealed"}
        profile = _profile_of(record)
        name = str(sealed.get("key"))
        key = None if profile is None else self.key(profile, name)
        if profile is None or key is None:
            return {**clear, **dict.fromkeys(PERSONAL), "erased": True}
        blob = unb64(sealed.get("data")) or b""
        try:
            values = orjson.loads(AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                                      _bound(profile, name)))
        except (InvalidTag, ValueError, orjson.JSONDecodeError):
            raise AuditError(f"the ledger of {self.where}: the sealed values of record "
                             f"{record.get('seq')} fail authentication with their key: the "
                             "record was edited; run `reconciler audit verify`") from None
        return {**clear, **{name: values.get(name) for name in PERSONAL}}

    # writing (the caller holds the ledger's flock) ----------------------------------------

    def seal(self, body: dict[str, Any], *, durable: bool) -> dict[str, Any]:
        """`body` (a record about a profile) with its personal values sealed; a key made
        for it is `durable` as the record will be (a record whose key a power cut lost
        would read as erased)."""
        profile = _profile_of(body)
        assert profile is not None, "only a record about a profile is sealed"
        current = self.current(profile)
        if current is None:
            self.ensure([profile], durable=durable)
            current = self.current(profile)
            assert current is not None
        name, key = current
        values = orjson.dumps({field: body.get(field) for field in PERSONAL})
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(key).encrypt(nonce, values, _bound(profile, name))
        clear = {field: value for field, value in body.items() if field not in PERSONAL}
        return {**clear, "sealed": {"key": name, "data": b64(sealed)}}

    def ensure(self, profiles: Iterable[Profile], *, durable: bool) -> int:
        """Give every profile without a data key a new one, in one append; how many.

        Also opens the existing keys of `profiles`, so that a key this run cannot unwrap is
        an error before apply's first call, not after it.
        """
        self.refresh()
        cipher = self._wrapper()
        lines = [_key_line(profile, os.urandom(4).hex(),
                           AESGCM.generate_key(bit_length=KEY_BYTES * 8), cipher)
                 for profile in dict.fromkeys(profiles) if self.current(profile) is None]
        created = len(lines)
        if not created:
            return 0
        if cipher is not None and cipher.header["key_id"] not in self._wraps:
            lines.insert(0, orjson.dumps({"wrap": cipher.header}))
        self.lines.append(lines, durable)
        self.refresh()
        return created

    def erase(self, profile: Profile) -> int:
        """Destroy every data key of `profile`; how many there were."""
        self.refresh()
        count = len(self._stored.get(profile, ()))
        if count:
            self._rewrite(skip=profile)
        return count

    def rewrap(self) -> int:
        """Rewrite every data key under the configured key (or in clear without one), as
        `state encrypt` and `state decrypt` do; how many."""
        self.refresh()
        if not self._stored:
            return 0
        self._rewrite(skip=None)
        return sum(len(stored) for stored in self._stored.values())

    # internals ------------------------------------------------------------------------------

    def _wrapper(self) -> Cipher | None:
        return self.encryption.writer("profile-keys") if self.encryption.encrypts else None

    def _rewrite(self, skip: Profile | None) -> None:
        cipher = self._wrapper()
        lines = [] if cipher is None else [orjson.dumps({"wrap": cipher.header})]
        for profile, stored in self._stored.items():
            if profile == skip:
                continue
            lines.extend(_key_line(profile, s.key, self._unwrap(profile, s), cipher)
                         for s in stored)
        self.lines.replace(lines)
        self._forget_all()
        self.refresh()

    def _unwrap(self, profile: Profile, stored: _Stored) -> bytes:
        if stored.by is None:
            return stored.data
        header = self._wraps.get(stored.by)
        if header is None:
            raise EncryptionError(f"{self.where}: the data key of {profile[2]} is wrapped with "
                                  f"key id {stored.by}, whose header is missing")
        cipher = self._unwrappers.get(stored.by)
        if cipher is None:
            cipher = self.encryption.reader(header, f"the ledger's keys {self.where}")
            self._unwrappers[stored.by] = cipher
        key = cipher.open(stored.data, _bound(profile, stored.key))
        if key is None:
            raise EncryptionError(f"{self.where}: the data key of {profile[2]} failed "
                                  "authentication: the file was edited or damaged")
        return key

    def _take(self, line: bytes, number: int) -> None:
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return  # the torn line of a writer that died mid-write: it holds no whole key
        try:
            if "wrap" in entry:
                header = dict(entry["wrap"])
                self._wraps[str(header["key_id"])] = header
                return
            workspace, version, distinct_id = (str(part) for part in entry["profile"])
            # one string for the workspace and version every key of a ledger names
            workspace, version = sys.intern(workspace), sys.intern(version)
            data = unb64(entry["data"])
            by = entry.get("by")
            if data is None or (by is not None and not isinstance(by, str)):
                raise ValueError("bad key")
        except (KeyError, TypeError, ValueError):
            raise AuditError(f"{self.where}:{number}: not a data key line; the ledger's keys "
                             "cannot be read") from None
        profile = (workspace, version, distinct_id)
        self._stored.setdefault(profile, []).append(_Stored(str(entry["key"]), data, by))

    def _forget_all(self) -> None:
        self._stored.clear()
        self._wraps.clear()
        self._opened.clear()
        self._unwrappers.clear()


def _profile_of(record: Mapping[str, Any]) -> Profile | None:
    parts = (record.get("workspace"), record.get("version"), record.get("distinct_id"))
    if not all(isinstance(part, str) for part in parts):
        return None
    return (str(parts[0]), str(parts[1]), str(parts[2]))


def _bound(profile: Profile, name: str) -> bytes:
    """What a sealed value is bound to: its profile and key, so that none can be moved."""
    return orjson.dumps([*profile, name])


def _key_line(profile: Profile, name: str, key: bytes, cipher: Cipher | None) -> bytes:
    if cipher is None:
        line = orjson.dumps({"profile": list(profile), "key": name, "data": b64(key),
                             "by": None})
    else:
        line = orjson.dumps({"profile": list(profile), "key": name,
                             "data": b64(cipher.seal(key, _bound(profile, name))),
                             "by": cipher.header["key_id"]})
    # Copied to its length: the bytes orjson returns keep its 4 KB output buffer, and a
    # plan's keys are made (or rewritten) all at once: 100,000 lines took 410 MB, not 15.
    return bytes(memoryview(line))
