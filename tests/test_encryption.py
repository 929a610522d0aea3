"""Encryption at rest: key providers, sealed files, wrong and missing keys, rotation."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from reconciler.encryption import (
    Encryption,
    Method,
    is_sealed,
    key_id,
)
from reconciler.errors import EncryptionError

KEY = base64.b64encode(b"k" * 32).decode()
OTHER = base64.b64encode(b"o" * 32).decode()
SECRET = b'{"email": "alice@example.com", "sms": "+919879000000"}'


def configured(key: str | None = "env:KEY", fallbacks: str | None = None,
               method: str | None = None, **environ: str) -> Encryption:
    return Encryption.configure(key, fallbacks, method,
                                environ={"KEY": KEY, "OLD": OTHER, **environ})


@pytest.mark.parametrize("method", ["aes-gcm", "chacha20-poly1305"])
def test_sealed_file_names_its_key_and_method_in_clear_and_opens_again(method: str) -> None:
    encryption = configured(method=method)

    sealed = encryption.seal_file("state", SECRET)

    header = sealed.split(b"\n", 1)[0]
    assert is_sealed(sealed) and b"alice" not in sealed and b"9879000000" not in sealed
    assert f'"method":"{method}"'.encode() in header and b'"key":"env:KEY"' in header
    assert key_id(base64.b64decode(KEY)).encode() in header
    assert encryption.open_file(sealed, "state s.json") == SECRET


def test_no_key_writes_and_reads_in_clear() -> None:
    encryption = configured(key=None)
    assert not encryption.encrypts
    assert encryption.seal_file("state", SECRET) == SECRET
    assert encryption.open_file(SECRET, "state s.json") == SECRET


@pytest.mark.parametrize("position", [0, 40, -17, -1])
def test_a_ciphertext_edited_by_one_byte_is_refused(position: int) -> None:
    encryption = configured()
    sealed = bytearray(encryption.seal_file("state", SECRET))
    body = sealed.index(b"\n") + 1
    index = body + position if position >= 0 else len(sealed) + position
    sealed[index] ^= 0x01

    with pytest.raises(EncryptionError, match=r"failed authentication.*edited or damaged"):
        encryption.open_file(bytes(sealed), "state s.json")


def test_an_edited_header_is_refused_too() -> None:
    encryption = configured()
    sealed = encryption.seal_file("state", SECRET).replace(b'"content":"state"',
                                                           b'"content":"plan!"')
    with pytest.raises(EncryptionError, match="failed authentication"):
        encryption.open_file(sealed, "state s.json")


def test_a_wrong_key_is_named_with_the_key_the_file_needs() -> None:
    sealed = configured().seal_file("state", SECRET)

    with pytest.raises(EncryptionError) as raised:
        configured(key="env:OLD").open_file(sealed, "state s.json")

    message = str(raised.value)
    assert "state s.json is encrypted with key env:KEY" in message
    assert "none of the configured keys: env:OLD" in message
    assert KEY not in message and OTHER not in message


def test_a_missing_key_says_which_key_to_configure() -> None:
    sealed = configured().seal_file("state", SECRET)
    with pytest.raises(EncryptionError, match="no key is configured: set "
                                              "RECONCILER_ENCRYPTION_KEY"):
        configured(key=None).open_file(sealed, "state s.json")


def test_rotation_reads_with_the_fallback_and_writes_with_the_new_key() -> None:
    old = Encryption.configure("env:OLD", None, None, environ={"OLD": OTHER})
    sealed_before = old.seal_file("state", SECRET)
    rotating = configured(key="env:KEY", fallbacks="env:OLD")

    assert rotating.open_file(sealed_before, "state s.json") == SECRET
    rewritten = rotating.seal_file("state", SECRET)
    assert b'"key":"env:KEY"' in rewritten.split(b"\n", 1)[0]
    with pytest.raises(EncryptionError):  # the old key alone no longer opens it
        old.open_file(rewritten, "state s.json")


def test_a_clear_file_is_refused_when_a_key_is_configured_unless_migrating() -> None:
    with pytest.raises(EncryptionError, match=r"not encrypted.*state encrypt"):
        configured().open_file(SECRET, "state s.json")
    assert configured().open_file(SECRET, "plan p.json", clear_ok=True) == SECRET


def test_a_passphrase_is_stretched_with_argon2id_and_its_salt_kept_in_the_header() -> None:
    passphrase = "correct horse battery staple"
    writer = configured(key="passphrase:PASS", PASS=passphrase)
    sealed = writer.seal_file("plan", SECRET)
    assert b'"kdf":{"name":"argon2id"' in sealed.split(b"\n", 1)[0]

    reader = configured(key="passphrase:PASS", PASS=passphrase)
    assert reader.open_file(sealed, "plan p.json") == SECRET
    wrong = configured(key="passphrase:PASS", PASS="correct horse battery stapler")
    with pytest.raises(EncryptionError, match="none of the configured keys"):
        wrong.open_file(sealed, "plan p.json")


def test_a_key_file_holds_raw_bytes_or_base64(tmp_path: Path) -> None:
    raw, text = tmp_path / "raw.key", tmp_path / "text.key"
    raw.write_bytes(b"k" * 32)
    text.write_text(KEY + "\n")
    sealed = configured().seal_file("state", SECRET)
    for path in (raw, text):
        assert configured(key=f"file:{path}").open_file(sealed, "s") == SECRET


@pytest.mark.parametrize(("spec", "environ", "message"), [
    ("KEY", {}, "must name a key provider: env:NAME, file:PATH or passphrase:NAME"),
    ("vault:KEY", {}, "must name a key provider"),
    ("env:NOPE", {}, "names the variable NOPE, which is not set"),
    ("env:SHORT", {"SHORT": "c2VjcmV0LXZhbHVl"}, "must hold a 256-bit key in base64"),
    ("passphrase:PASS", {"PASS": "short-one"}, "shorter than 16 characters"),
    ("file:/nonexistent/key", {}, "cannot read the key file /nonexistent/key"),
])
def test_an_unusable_key_setting_is_a_clear_error_that_never_shows_the_secret(
        spec: str, environ: dict[str, str], message: str) -> None:
    with pytest.raises(EncryptionError, match=message) as raised:
        configured(key=spec, **environ).seal_file("state", SECRET)
    assert "c2VjcmV0LXZhbHVl" not in str(raised.value) and "short-one" not in str(raised.value)


def test_the_method_is_one_of_two_aeads() -> None:
    assert {method.value for method in Method} == {"aes-gcm", "chacha20-poly1305"}
    with pytest.raises(ValueError):
        configured(method="aes-cbc")


def test_a_crafted_header_cannot_ask_for_unbounded_argon2_memory() -> None:
    sealed = (b'{"reconciler_encrypted":1,"content":"state","method":"aes-gcm",'
              b'"key":"passphrase:PASS","key_id":"00","kdf":{"name":"argon2id","salt":"AAAA",'
              b'"memory_kib":1099511627776,"iterations":3,"lanes":4}}\n' + os.urandom(40))
    with pytest.raises(EncryptionError, match="damaged encryption header"):
        configured(key="passphrase:PASS", PASS="x" * 20).open_file(sealed, "s")
