"""Saved plans: written by `plan --out`, read by `show` and `apply`; edited/stale ones refused.

One file holds the plan of one workspace/version pair, or the plans one run made for several
(`write_plans`, `read_plans`).

The document is `reconciler.plandoc`'s and its checks `reconciler.planread`'s; this module
moves it to and from a file, a block of lines at a time, sealed when an encryption key is
configured:

    {"reconciler_encrypted":1,"content":"plan-blocks",...}    the key's clear header
    then one line per block of about 1 MB of the document's lines: the base64 of that block
    sealed, bound to its place (block 0, 1, ...)

so that a block moved, dropped or repeated fails authentication, and a file cut short at a
block's end lacks the document's trailer. A plan sealed whole by an older reconciler is
opened whole, to say which format it has.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import orjson

from reconciler.atomic import Prepared
from reconciler.encryption import NO_ENCRYPTION, Cipher, Encryption, is_sealed
from reconciler.errors import EncryptionError, PlanFileError, PlanStaleError
from reconciler.heap import collector_paused
from reconciler.plan import Plan
from reconciler.plandoc import (
    blocks,
    document_lines,
    pairs_in_order,
    split_lines,
    trailer_checksum,
)
from reconciler.planread import read_document

SEALED_CONTENT: Final = "plan-blocks"


def write_plan(plan: Plan, path: Path, encryption: Encryption = NO_ENCRYPTION) -> str:
    """Save the plan of one workspace/version pair: `write_plans` of it alone."""
    return write_plans((plan,), path, encryption)


def write_plans(plans: Sequence[Plan], path: Path,
                encryption: Encryption = NO_ENCRYPTION) -> str:
    """Save the plans one run made, one per workspace/version pair, as one saved plan (of one
    pair: the single-pair layout), atomically with mode 0600, sealed when a key is
    configured: a plan carries full, personal values (and is kept for weeks as a CI
    artifact). Returns its checksum, which a rendering of the same plans names.

    Raises ValueError for no plan, a pair twice, or plans of different runs
    (`plandoc.pairs_in_order`)."""
    saved, prepared = prepare_plans(plans, path, encryption)
    prepared.commit()
    return saved


def prepare_plans(plans: Sequence[Plan], path: Path, encryption: Encryption = NO_ENCRYPTION
                  ) -> tuple[str, Prepared]:
    """`write_plans`, all but putting the file in its place: its checksum, and the file
    written next to `path`, to be committed or discarded."""
    trailer: list[bytes] = []
    chunks = blocks(_keep_last(document_lines(pairs_in_order(plans)), trailer))
    prepared = Prepared(path, _sealed(chunks, encryption.writer(SEALED_CONTENT))
                        if encryption.encrypts else chunks)
    saved = trailer_checksum(trailer[0])
    assert saved is not None  # document_lines ends with the trailer
    return saved, prepared


def _keep_last(lines: Iterable[bytes], kept: list[bytes]) -> Iterator[bytes]:
    """`lines`, the last one also appended to `kept` (the trailer, with the checksum)."""
    line = b""
    for line in lines:
        yield line
    kept.append(line)


def _sealed(chunks: Iterable[bytes], cipher: Cipher) -> Iterator[bytes]:
    yield cipher.header_line + b"\n"
    for index, chunk in enumerate(chunks):
        yield base64.b64encode(cipher.seal(chunk, _place(index))) + b"\n"


def _place(index: int) -> bytes:
    """What a sealed block is bound to: its place in the file."""
    return f"plan block {index}".encode()


def read_plan(path: Path, encryption: Encryption = NO_ENCRYPTION) -> Plan:
    """Load a saved plan of one workspace/version pair (`read_plans`); one that holds several
    pairs is refused, naming them."""
    plans = read_plans(path, encryption)
    if len(plans) > 1:
        pairs = ", ".join(f"{plan.workspace} ({plan.version})" for plan in plans)
        raise PlanFileError(f"{path} holds the plans of {len(plans)} workspace/version pairs "
                            f"({pairs}), where the plan of one was expected")
    return plans[0]


def read_plans(path: Path, encryption: Encryption = NO_ENCRYPTION) -> tuple[Plan, ...]:
    """Load a saved plan: the plans it holds, one per workspace/version pair, sorted by
    (workspace, version), each with the file's plan id, creation time, targets and checksum.
    Refuses one that is unreadable, masked, of another format, edited or malformed
    (`planread.read_document` says in which order)."""
    try:
        with collector_paused(), path.open("rb") as file:
            first = file.readline()
            # A clear plan is read even when a key is configured: it may predate the key,
            # and its checksum and the staleness check guard it as they guard a sealed one.
            if not is_sealed(first):
                return read_document(_lines(first, file), str(path), path.read_bytes)
            header = _header(first, path)
            if header.get("content") != SEALED_CONTENT:  # sealed whole: an older plan
                whole = encryption.open_file(first + file.read(), f"plan file {path}")
                return read_document(split_lines(whole), str(path), lambda: whole)
            cipher = encryption.reader(header, f"plan file {path}")
            return read_document(_opened(file, cipher, path), str(path),
                                 lambda: _opened_whole(path, cipher))
    except OSError as error:
        raise PlanFileError(f"cannot read plan file {path}: {error.strerror}") from None


def _lines(first: bytes, file: BinaryIO) -> Iterator[bytes]:
    yield first
    yield from file


def _header(line: bytes, path: Path) -> dict[str, object]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        raise EncryptionError(f"plan file {path} has a damaged encryption header; it cannot "
                              f"be read: run `reconciler plan --out` again")
    return header


def _opened_whole(path: Path, cipher: Cipher) -> bytes:
    with path.open("rb") as file:
        file.readline()
        return b"".join(_opened(file, cipher, path))


def _opened(file: BinaryIO, cipher: Cipher, path: Path) -> Iterator[bytes]:
    """The document's lines from a plan sealed in blocks (read past the header line)."""
    for index, sealed in enumerate(file):
        try:
            blob = base64.b64decode(sealed.rstrip(b"\n"), validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        plain = cipher.open(blob, _place(index))
        if plain is None:
            raise EncryptionError(
                f"plan file {path} failed authentication with its key (block {index + 1}): "
                "it was edited or damaged after it was saved; run `reconciler plan --out` "
                "again")
        yield from split_lines(plain)


def check_fresh(plan: Plan, path: Path, lineage: str | None, serial: int,
                workspace: str, version: str) -> None:
    """Refuse a plan computed against another state than the one it would be applied to."""
    advice = "run `reconciler plan --out` again and review the new plan"
    if (plan.workspace, plan.version) != (workspace, version):
        raise PlanStaleError(
            f"{path} is for workspace {plan.workspace} ({plan.version}), but the state is for "
            f"{workspace} ({version}): check --state"
        )
    if plan.lineage != lineage:
        none = "none: no state yet"
        raise PlanStaleError(
            f"{path} was computed against another state (lineage {plan.lineage or none}; "
            f"this state's lineage is {lineage or none}): {advice}"
        )
    if plan.serial != serial:
        raise PlanStaleError(
            f"{path} is stale: it was computed against state serial {plan.serial}, and the state "
            f"is now at serial {serial} (changed since the plan was made): {advice}"
        )

