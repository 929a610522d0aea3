"""The journal: what `apply` learned since the last save, one durable line per event.

Rewriting a 100,000-profile state after every call would make each call cost as much as the
whole state; instead each event is appended here (one `os.write` of a whole line, then an
fsync shared with concurrent appends, see `GroupSync`) and the state file is rewritten once,
at the end of the run. If the process dies first, the next `load` folds the journal into the
state it was started from.

    {"journal": 1, "lineage": L, "serial": N}   header: the state version it extends
    then one line per event (`reconciler.state.events`: begin, settle, missing)

With an encryption key, the header also carries the clear header of the key that seals the
events (`"sealed": {...}`), and each event line is a JSON string: the base64 of the sealed
event, bound to the state version the header names.

A `begin` without a later `settle` means the call may or may not have been carried out:
the profile is marked unconfirmed, and the next apply reads it back before acting on it.
A torn last line (the process died inside a write) is ignored: its event never completed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Final

import orjson

from reconciler import strictjson
from reconciler.atomic import FILE_MODE, GroupSync, fsync_directory
from reconciler.encryption import NO_ENCRYPTION, Cipher, Encryption, b64, unb64
from reconciler.errors import StateError
from reconciler.state.base import State
from reconciler.state.events import Begun, Event, NotAnEvent, apply_event, from_json, to_json

JOURNAL_VERSION: Final = 1


class Journal:
    """An open journal, appended to by apply's worker threads."""

    def __init__(self, path: Path, lineage: str, serial: int,
                 encryption: Encryption = NO_ENCRYPTION) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._sync = GroupSync()
        self._events = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                           | os.O_CLOEXEC, FILE_MODE)
        header: dict[str, Any] = {"journal": JOURNAL_VERSION, "lineage": lineage,
                                  "serial": serial}
        self._cipher: Cipher | None = None
        if encryption.encrypts:
            self._cipher = encryption.writer("journal")
            header["sealed"] = self._cipher.header
        self._aad = _bound_to(lineage, serial)
        self._append(orjson.dumps(header))
        fsync_directory(path.parent)

    def record(self, event: Event) -> None:
        """Append `event`; returns once it is durable, except a `Begun`: that one is written
        (so it survives kill -9) but not waited on, so that the request goes out at once;
        the event that settles it flushes both lines to disk together."""
        line = orjson.dumps(to_json(event))
        if self._cipher is not None:
            line = orjson.dumps(b64(self._cipher.seal(line, self._aad)))
        self._append(line, wait=not isinstance(event, Begun))
        self._events += 1

    def close(self, *, discard: bool = False) -> None:
        """Close; remove the journal if asked (nothing in it changes the state) or empty."""
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                if discard or not self._events:
                    self.path.unlink(missing_ok=True)

    def _append(self, data: bytes, *, wait: bool = True) -> None:
        line = data + b"\n"
        with self._mutex:
            os.write(self._fd, line)
            ticket = self._sync.wrote()
            fd = self._fd
        if wait:
            self._sync.sync(fd, ticket)


def replay(path: Path, state: State, encryption: Encryption = NO_ENCRYPTION) -> str:
    """Fold the journal at `path` into `state` in place.

    Returns "absent" (no journal), "stale" (nothing to fold) or "folded". A journal extends
    exactly one saved version. One for an older serial of the same lineage was already
    folded by a save that died before deleting it: stale. One for another lineage or a
    newer serial does not belong to this state: an error.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "absent"
    lines = raw.split(b"\n")
    if raw and not raw.endswith(b"\n"):
        lines = lines[:-1]  # torn by a crash inside a write: that event never completed
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line]
    if len(numbered) < 2:  # a header alone: the run died before it recorded anything
        return "stale"
    header = _parse(numbered[0][1], path, numbered[0][0])
    serial = header.get("serial")
    version = header.get("journal")
    if version != JOURNAL_VERSION or isinstance(version, bool) \
            or not isinstance(header.get("lineage"), str) \
            or not isinstance(serial, int) or isinstance(serial, bool):
        raise StateError(f"state journal {path} has no valid journal header; move it away "
                         "to go on")
    if header.get("lineage") == state.lineage and header.get("serial", 0) < state.serial:
        return "stale"
    if (header.get("lineage"), header.get("serial")) != (state.lineage, state.serial):
        raise StateError(
            f"state journal {path} extends lineage {header.get('lineage')} serial "
            f"{header.get('serial')}, but the state is lineage {state.lineage} serial "
            f"{state.serial}: the state was replaced while a run was unfinished. Compare the "
            "two, then move the journal away to go on")
    opener = None
    if "sealed" in header:
        cipher = encryption.reader(header["sealed"], f"state journal {path}")
        opener = (cipher, _bound_to(header["lineage"], serial))
    entries = [(number, _parse(line, path, number, opener)) for number, line in numbered[1:]]
    for number, entry in entries:
        try:
            event = from_json(entry)
        except NotAnEvent as error:
            raise StateError(f"state journal {path} line {number} is damaged ({error}); it "
                             "cannot be folded into the state. Move it away and run "
                             "`reconciler refresh`") from None
        apply_event(state, event)
    return "folded"


def _bound_to(lineage: str, serial: int) -> bytes:
    """What a sealed event is bound to: the state version its journal extends."""
    return f"journal {lineage} {serial}".encode()


def _parse(line: bytes, path: Path, number: int,
           opener: tuple[Cipher, bytes] | None = None) -> dict[str, Any]:
    try:
        entry = strictjson.loads(line, what=f"state journal {path} line {number}")
    except strictjson.JSONError:
        entry = None
    if opener is not None:  # a sealed journal holds no clear event: one would be forged
        blob = unb64(entry)
        opened = None if blob is None else opener[0].open(blob, opener[1])
        if opened is None:
            raise StateError(f"state journal {path} line {number} failed authentication with "
                             "its key: it was edited or damaged. Move the journal away and "
                             "run `reconciler refresh`")
        return _parse(opened, path, number)
    if not isinstance(entry, dict):
        raise StateError(f"state journal {path} line {number} is damaged; it cannot be "
                         "folded into the state. Move it away and run `reconciler refresh`")
    return entry
