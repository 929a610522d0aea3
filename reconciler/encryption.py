"""Encryption at rest: key providers, methods, and the sealed forms of files and lines.

Opt-in, and designed as OpenTofu's `encryption` block is, with a key provider and a method:

    RECONCILER_ENCRYPTION_KEY       the key provider that writes (and reads):
                                      env:NAME         variable NAME holds a 256-bit key, base64
                                      file:PATH        the file holds it (base64, or 32 raw bytes)
                                      passphrase:NAME  variable NAME holds a passphrase; the key
                                                       is derived with Argon2id (memory-hard)
    RECONCILER_ENCRYPTION_FALLBACK  providers that only read (comma-separated): key rotation
    RECONCILER_ENCRYPTION_METHOD    aes-gcm (default) or chacha20-poly1305

The provider names where the secret is, never the secret: it is written in the clear header
of every sealed file, so that a file says which key and method it needs. A sealed file is

    {"reconciler_encrypted":1,"content":"state","method":"aes-gcm","key":"env:K","key_id":"…"}
    then, after the newline, a 12-byte nonce and the ciphertext with its 16-byte tag

and the header line is authenticated with the rest (it is the associated data), so an edit
anywhere is refused. `key_id` is a fingerprint of the key: a file whose `key_id` matches no
configured key needs another key; one whose key matches but fails authentication was edited
or damaged. Lines that are appended one by one (journal events, wrapped profile keys) are
sealed alone, under a header written once at the top of their file.

Only `cryptography`'s AEADs and KDF are used: no cipher, mode or padding is written here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from reconciler.errors import EncryptionError

SEALED_MARK: Final = b'{"reconciler_encrypted":'
SEALED_VERSION: Final = 1
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
MIN_PASSPHRASE: Final = 16
# RFC 9106's second recommended setting: 64 MiB, 3 passes, 4 lanes (about 0.3 s here). It
# is paid once per process and salt: the derived key is cached.
ARGON2_MEMORY_KIB: Final = 64 * 1024
ARGON2_ITERATIONS: Final = 3
ARGON2_LANES: Final = 4
KEY_HINT: Final = "e.g. from `openssl rand -base64 32`"

ProviderKind = Literal["env", "file", "passphrase"]


class Method(StrEnum):
    """An authenticated cipher from `cryptography`, both with 256-bit keys and 96-bit nonces."""

    AES_GCM = "aes-gcm"
    CHACHA20_POLY1305 = "chacha20-poly1305"


_AEADS: Final[dict[Method, type[AESGCM] | type[ChaCha20Poly1305]]] = {
    Method.AES_GCM: AESGCM, Method.CHACHA20_POLY1305: ChaCha20Poly1305}


@dataclass(frozen=True, slots=True)
class KeyProvider:
    """Where a key comes from: `env:NAME`, `file:PATH` or `passphrase:NAME`."""

    kind: ProviderKind
    target: str

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.target}"

    @classmethod
    def parse(cls, spec: str, *, setting: str = "RECONCILER_ENCRYPTION_KEY") -> KeyProvider:
        kind, colon, target = spec.strip().partition(":")
        if not colon or not target or kind not in ("env", "file", "passphrase"):
            raise EncryptionError(
                f"{setting} must name a key provider: env:NAME, file:PATH or passphrase:NAME "
                f"(the variable or file holding the secret), not {spec.strip()[:40]!r}")
        return cls(kind, target)  # type: ignore[arg-type]  # checked just above

    def material(self, environ: Mapping[str, str]) -> bytes:
        """The key (32 bytes), or for a passphrase its UTF-8 bytes. Messages name where the
        secret should be, never any part of it."""
        if self.kind == "file":
            try:
                raw = Path(self.target).read_bytes()
            except OSError as err:
                raise EncryptionError(f"cannot read the key file {self.target} (key provider "
                                      f"{self.spec}): {err.strerror or err}") from None
            return raw if len(raw) == KEY_BYTES else _base64_key(raw, f"the key file "
                                                                      f"{self.target}")
        value = environ.get(self.target, "")
        if not value.strip():
            raise EncryptionError(f"key provider {self.spec} names the variable {self.target}, "
                                  "which is not set")
        if self.kind == "passphrase":
            if len(value) < MIN_PASSPHRASE:
                raise EncryptionError(f"the passphrase in {self.target} is shorter than "
                                      f"{MIN_PASSPHRASE} characters")
            return value.encode()
        return _base64_key(value.encode(), f"the variable {self.target}")


def _base64_key(text: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), altchars=b"-_" if b"-" in text or b"_" in text
                               else None, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise EncryptionError(f"{where} must hold a {KEY_BYTES * 8}-bit key in base64 "
                              f"({KEY_HINT}); it holds something else")
    return key


def key_id(key: bytes) -> str:
    """A fingerprint naming a key in clear headers; it reveals nothing of the key."""
    return hashlib.sha256(b"reconciler key id\x00" + key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Kdf:
    """How a passphrase became a key: Argon2id with these parameters and salt."""

    salt: bytes
    memory_kib: int = ARGON2_MEMORY_KIB
    iterations: int = ARGON2_ITERATIONS
    lanes: int = ARGON2_LANES

    def derive(self, passphrase: bytes) -> bytes:
        return Argon2id(salt=self.salt, length=KEY_BYTES, iterations=self.iterations,
                        lanes=self.lanes, memory_cost=self.memory_kib).derive(passphrase)

    def to_json(self) -> dict[str, Any]:
        return {"name": "argon2id", "salt": base64.b64encode(self.salt).decode(),
                "memory_kib": self.memory_kib, "iterations": self.iterations,
                "lanes": self.lanes}

    @classmethod
    def from_json(cls, data: Any) -> Kdf:
        if not isinstance(data, dict) or data.get("name") != "argon2id":
            raise ValueError("not an argon2id key derivation")
        numbers = [data.get(name) for name in ("memory_kib", "iterations", "lanes")]
        # Bounds keep a crafted header from asking for terabytes of memory.
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= 4 << 20
                   for n in numbers):
            raise ValueError("its argon2id parameters are out of range")
        memory, iterations, lanes = (int(n) for n in numbers if isinstance(n, int))
        return cls(base64.b64decode(str(data.get("salt")), validate=True), memory,
                   iterations, lanes)


class Cipher:
    """One key and method, bound to the clear header that names them."""

    def __init__(self, method: Method, key: bytes, header: dict[str, Any]) -> None:
        self.method = method
        self.header = header
        self.header_line = orjson.dumps(header)
        self._aead = _AEADS[method](key)

    def seal(self, data: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, self.header_line + aad)

    def open(self, blob: bytes, aad: bytes = b"") -> bytes | None:
        """The plaintext, or None when authentication fails (edited, damaged, other key)."""
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                      self.header_line + aad)
        except (InvalidTag, ValueError):
            return None


@dataclass(frozen=True)
class Encryption:
    """The configured keys; `Encryption()` (no key) writes and reads files in clear.

    `accept_clear` lets `state encrypt` read the clear files it is about to encrypt; any
    other command refuses a clear state when a key is configured, since that state is
    either not the one meant or not yet migrated.
    """

    key: KeyProvider | None = None
    fallbacks: tuple[KeyProvider, ...] = ()
    method: Method = Method.AES_GCM
    accept_clear: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, compare=False,
                                       repr=False)
    # derived keys by (provider, kdf), and the writer's ciphers by content
    _keys: dict[tuple[str, Kdf | None], bytes] = field(default_factory=dict, compare=False,
                                                        repr=False)
    _writers: dict[str, Cipher] = field(default_factory=dict, compare=False, repr=False)
    _salts: dict[str, Kdf] = field(default_factory=dict, compare=False, repr=False)
    # readers by header line: a table of sealed rows shares a few headers
    _readers: dict[bytes, Cipher] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def configure(cls, key: str | None, fallbacks: str | None, method: str | None,
                  environ: Mapping[str, str] | None = None) -> Encryption:
        """From the settings' text (the options or RECONCILER_ENCRYPTION_* variables)."""
        return cls(
            key=KeyProvider.parse(key) if key and key.strip() else None,
            fallbacks=tuple(KeyProvider.parse(spec, setting="RECONCILER_ENCRYPTION_FALLBACK")
                            for spec in (fallbacks or "").replace(",", " ").split()),
            method=Method(method) if method else Method.AES_GCM,
            environ=os.environ if environ is None else environ,
        )

    @property
    def encrypts(self) -> bool:
        return self.key is not None

    def describe(self) -> str:
        if self.key is None:
            return "no encryption key"
        return f"key {self.key.spec} ({self.method})"

    def writer(self, content: str) -> Cipher:
        """The cipher that seals new `content` (one Argon2id salt per process and key)."""
        if self.key is None:
            raise ValueError("no key is configured to write with")
        cipher = self._writers.get(content)
        if cipher is None:
            kdf = None
            if self.key.kind == "passphrase":
                kdf = self._salts.setdefault("write", Kdf(secrets.token_bytes(16)))
            key = self._key(self.key, kdf)
            header: dict[str, Any] = {"reconciler_encrypted": SEALED_VERSION,
                                      "content": content, "method": str(self.method),
                                      "key": self.key.spec, "key_id": key_id(key)}
            if kdf is not None:
                header["kdf"] = kdf.to_json()
            cipher = self._writers.setdefault(content, Cipher(self.method, key, header))
        return cipher

    def reader(self, header: Mapping[str, Any], what: str) -> Cipher:
        """The cipher for a sealed `header` of `what` (a file's name): the configured key
        or a fallback whose fingerprint matches, else an error saying what is needed."""
        try:
            method = Method(str(header.get("method")))
            wanted = str(header["key_id"])
            named = str(header["key"])
            kdf = Kdf.from_json(header["kdf"]) if "kdf" in header else None
        except (KeyError, ValueError, TypeError, binascii.Error):
            raise EncryptionError(f"{what} has a damaged encryption header; it cannot be "
                                  "read. Restore it from its backup") from None
        providers = [p for p in (self.key, *self.fallbacks) if p is not None]
        for provider in providers:
            if (provider.kind == "passphrase") != (kdf is not None):
                continue
            key = self._key(provider, kdf)
            if key_id(key) == wanted:
                return Cipher(method, key, dict(header))
        needs = f"key {named} (key id {wanted}, {method})"
        if not providers:
            raise EncryptionError(f"{what} is encrypted with {needs}, and no key is "
                                  "configured: set RECONCILER_ENCRYPTION_KEY (or "
                                  "RECONCILER_ENCRYPTION_FALLBACK) to that key provider")
        tried = ", ".join(f"{p.spec} (key id {self._id_of(p, kdf)})" for p in providers)
        raise EncryptionError(f"{what} is encrypted with {needs}, which is none of the "
                              f"configured keys: {tried}. Give the key it was written with, "
                              "as RECONCILER_ENCRYPTION_FALLBACK when rotating keys")

    def seal_file(self, content: str, data: bytes) -> bytes:
        """`data` sealed as a whole file, or `data` itself when no key is configured."""
        if self.key is None:
            return data
        cipher = self.writer(content)
        return cipher.header_line + b"\n" + cipher.seal(data)

    def open_file(self, data: bytes, what: str, *, clear_ok: bool = False) -> bytes:
        """The content of a file read as `data`: opened if sealed. A clear file is refused
        when a key is configured, unless `clear_ok` (or `accept_clear`)."""
        if not is_sealed(data):
            if self.key is not None and not (clear_ok or self.accept_clear):
                raise EncryptionError(
                    f"{what} is not encrypted, but an encryption key is configured "
                    f"({self.key.spec}): run `reconciler state encrypt` to encrypt it, or "
                    "unset RECONCILER_ENCRYPTION_KEY to use it in clear")
            return data
        end = data.find(b"\n")
        line = data[:end] if end >= 0 else data
        cipher = self._readers.get(line)
        header = _header(line, what) if cipher is None else cipher.header
        if cipher is None:
            cipher = self._readers.setdefault(line, self.reader(header, what))
        plain = None if end < 0 else cipher.open(data[end + 1:])
        if plain is None:
            raise EncryptionError(
                f"{what} failed authentication with its key ({header.get('key')}): it was "
                "edited or damaged after it was written. Nothing was overwritten; restore it "
                "from its backup")
        return plain

    def _key(self, provider: KeyProvider, kdf: Kdf | None) -> bytes:
        cached = self._keys.get((provider.spec, kdf))
        if cached is None:
            material = provider.material(self.environ)
            cached = kdf.derive(material) if kdf is not None else material
            self._keys[(provider.spec, kdf)] = cached
        return cached

    def _id_of(self, provider: KeyProvider, kdf: Kdf | None) -> str:
        if (provider.kind == "passphrase") != (kdf is not None):
            return "another kind"
        return key_id(self._key(provider, kdf))


NO_ENCRYPTION: Final = Encryption(environ={})


def is_sealed(data: bytes) -> bool:
    return data.startswith(SEALED_MARK)


def _header(line: bytes, what: str) -> dict[str, Any]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("reconciler_encrypted") != SEALED_VERSION:
        raise EncryptionError(f"{what} has a damaged encryption header; it cannot be read. "
                              "Restore it from its backup")
    return header


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: Any) -> bytes | None:
    """The bytes of base64 `text`, or None when it is not base64."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
