"""Envelope encryption: one random AES-256-GCM data key per secret, wrapped by a master key.

Used by the credential vault and by the OAuth signing-key store. The caller's context (user id,
connector, purpose, ...) is bound into the AAD of both the ciphertext and the wrapped data key, so a
row copied to another user or connector does not decrypt. Master keys sit behind `KeyProvider`, so a
cloud KMS can replace `LocalKeyProvider` without touching callers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import NoReturn, Protocol, SupportsIndex, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = [
    "FORMAT_VERSION",
    "DecryptionError",
    "Envelope",
    "KeyProvider",
    "LocalKeyProvider",
    "Sealed",
    "SecretValue",
    "VaultKeyError",
]

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({FORMAT_VERSION})

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonce (NIST SP 800-38D recommended length)
TAG_BYTES = 16
MASK = "***"

_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_B64_STANDARD = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_B64_URLSAFE = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class VaultKeyError(Exception):
    """VAULT_KEYS is missing or malformed. The message never contains key material."""


class DecryptionError(Exception):
    """A sealed value could not be opened. The message never contains plaintext or key bytes."""


_DECRYPTION_FAILED = (
    "cannot decrypt sealed value: wrong or unknown key, tampered data, "
    "wrong context or unsupported format version"
)


def _decryption_failed() -> NoReturn:
    # `from None` everywhere: the underlying exception (InvalidTag, UnicodeDecodeError, a KMS
    # client error) may carry bytes or details that must not reach logs through __context__.
    raise DecryptionError(_DECRYPTION_FAILED) from None


class SecretValue:
    """A secret held in memory. Masked in repr/str/format; unpicklable; not JSON-serialisable."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("SecretValue holds a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    # A hash would be a cheap equality oracle on the secret, and secrets make poor dict keys.
    __hash__ = None  # type: ignore[assignment]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretValue is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("SecretValue is immutable")

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled; seal it instead")

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> SecretValue:
        return self

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: object, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Like pydantic's SecretStr: model_dump() keeps the object, model_dump_json() masks it.
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _value: MASK, when_used="json"
            ),
        )


def _context_snapshot(context: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(context, Mapping):
        raise TypeError("context must be a mapping of str to str")
    snapshot = dict(context)
    # An empty context would make a sealed row valid for every user and connector.
    if not snapshot:
        raise ValueError("context must not be empty")
    for key, value in snapshot.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("context keys and values must be str")
    return MappingProxyType(snapshot)


def _supported(version: object) -> bool:
    # type() rather than isinstance(): True == 1 must not pass for version 1.
    return type(version) is int and version in SUPPORTED_VERSIONS


def _canonical(obj: Mapping[str, object]) -> bytes:
    # Sorted, compact, ASCII-only JSON: deterministic, and string quoting/escaping keeps
    # {"a": "b|c"} and {"a|b": "c"} distinct, unlike naive joining.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _wrap_aad(context: Mapping[str, str], kid: str) -> bytes:
    return _canonical({"context": dict(context), "kid": kid, "use": "wrap"})


def _data_aad(context: Mapping[str, str], version: int) -> bytes:
    return _canonical({"context": dict(context), "use": "data", "version": version})


@runtime_checkable
class KeyProvider(Protocol):
    """Holds the master keys. `wrap` uses the active key; `unwrap` any key it still knows."""

    @property
    def active_kid(self) -> str: ...

    def kids(self) -> tuple[str, ...]: ...

    async def wrap(self, data_key: bytes, *, context: Mapping[str, str]) -> tuple[str, bytes]: ...

    async def unwrap(self, kid: str, wrapped: bytes, *, context: Mapping[str, str]) -> bytes: ...


def _decode_key(encoded: str) -> bytes | None:
    if _B64_STANDARD.fullmatch(encoded):
        altchars = b"+/"
    elif _B64_URLSAFE.fullmatch(encoded):
        altchars = b"-_"
    else:
        return None
    # Unpadded base64 (as secrets.token_urlsafe produces) is accepted; padding, when present,
    # must be exactly right.
    if "=" not in encoded:
        encoded += "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(encoded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


class LocalKeyProvider:
    """Master keys held in process memory, from VAULT_KEYS. The first key is the active one."""

    __slots__ = ("_active_kid", "_ciphers")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        ciphers: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not _KID.fullmatch(kid):
                raise VaultKeyError("vault key ids must match [A-Za-z0-9_.-]{1,32}")
            if kid in ciphers:
                raise VaultKeyError("vault key ids must be unique")
            if len(key) != KEY_BYTES:
                raise VaultKeyError(f"vault keys must be exactly {KEY_BYTES} bytes")
            # Only AESGCM objects are kept, so no attribute of this object holds raw key bytes.
            ciphers[kid] = AESGCM(key)
        if not ciphers:
            raise VaultKeyError("at least one vault key is required")
        self._ciphers = ciphers
        self._active_kid = next(iter(ciphers))

    @classmethod
    def from_env_value(cls, value: str) -> LocalKeyProvider:
        """Parse VAULT_KEYS: `kid:base64-32-bytes[,kid:base64-32-bytes...]`, first active.

        Errors name the 1-based entry position, never the entry, which may hold a key.
        """
        if not value or not value.strip():
            raise VaultKeyError(
                "VAULT_KEYS is empty: set it to 'kid:base64-32-bytes[,kid:base64-32-bytes...]'"
            )
        keys: list[tuple[str, bytes]] = []
        seen: dict[str, int] = {}
        for position, raw in enumerate(value.split(","), start=1):
            entry = raw.strip()
            where = f"VAULT_KEYS entry {position}"
            if not entry:
                raise VaultKeyError(f"{where} is empty (stray comma?)")
            kid, colon, encoded = entry.partition(":")
            if not colon:
                raise VaultKeyError(f"{where} is not of the form 'kid:base64-32-bytes'")
            if not _KID.fullmatch(kid):
                raise VaultKeyError(f"{where} has an invalid key id: use [A-Za-z0-9_.-]{{1,32}}")
            if kid in seen:
                raise VaultKeyError(f"{where} repeats the key id of entry {seen[kid]}")
            key = _decode_key(encoded)
            if key is None:
                raise VaultKeyError(f"{where} does not hold valid base64 after the key id")
            if len(key) != KEY_BYTES:
                raise VaultKeyError(
                    f"{where} decodes to {len(key)} bytes; a vault key must be exactly "
                    f"{KEY_BYTES} bytes (e.g. base64 of `openssl rand 32`)"
                )
            seen[kid] = position
            keys.append((kid, key))
        return cls(keys)

    @property
    def active_kid(self) -> str:
        return self._active_kid

    def kids(self) -> tuple[str, ...]:
        return tuple(self._ciphers)

    async def wrap(self, data_key: bytes, *, context: Mapping[str, str]) -> tuple[str, bytes]:
        kid = self._active_kid
        nonce = os.urandom(NONCE_BYTES)
        wrapped = self._ciphers[kid].encrypt(nonce, data_key, _wrap_aad(context, kid))
        return kid, nonce + wrapped

    async def unwrap(self, kid: str, wrapped: bytes, *, context: Mapping[str, str]) -> bytes:
        cipher = self._ciphers.get(kid)
        if cipher is None or len(wrapped) < NONCE_BYTES + TAG_BYTES:
            _decryption_failed()
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, body, _wrap_aad(context, kid))
        except InvalidTag:
            _decryption_failed()

    def __repr__(self) -> str:
        return f"LocalKeyProvider(active_kid={self._active_kid!r}, kids={self.kids()!r})"


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted value as stored in a row. Nothing here is secret without a master key."""

    kid: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes
    version: int

    def to_bytes(self) -> bytes:
        """One column's worth: version, kid, wrapped key, nonce, ciphertext, length-prefixed."""
        kid = self.kid.encode("ascii")
        return b"".join(
            (
                struct.pack(">BB", self.version, len(kid)),
                kid,
                struct.pack(">H", len(self.wrapped_key)),
                self.wrapped_key,
                struct.pack(">B", len(self.nonce)),
                self.nonce,
                self.ciphertext,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Sealed:
        try:
            version, kid_len = struct.unpack_from(">BB", data, 0)
            at = 2
            kid = data[at : at + kid_len].decode("ascii")
            at += kid_len
            (wrapped_len,) = struct.unpack_from(">H", data, at)
            at += 2
            wrapped = data[at : at + wrapped_len]
            at += wrapped_len
            (nonce_len,) = struct.unpack_from(">B", data, at)
            at += 1
            nonce = data[at : at + nonce_len]
            ciphertext = data[at + nonce_len :]
        except (struct.error, UnicodeDecodeError):
            _decryption_failed()
        if len(wrapped) != wrapped_len or len(nonce) != nonce_len or not ciphertext:
            _decryption_failed()
        return cls(
            kid=kid, wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext, version=version
        )


class Envelope:
    """Seals and opens values under a `KeyProvider`, binding the caller's context."""

    __slots__ = ("_provider",)

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    async def seal(self, plaintext: bytes | SecretValue, *, context: Mapping[str, str]) -> Sealed:
        if isinstance(plaintext, SecretValue):
            data = plaintext.reveal().encode("utf-8")
        elif isinstance(plaintext, bytes):
            data = plaintext
        else:
            raise TypeError("seal takes bytes or a SecretValue")
        ctx = _context_snapshot(context)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, data, _data_aad(ctx, FORMAT_VERSION))
        kid, wrapped = await self._provider.wrap(data_key, context=ctx)
        return Sealed(
            kid=kid, wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext, version=FORMAT_VERSION
        )

    async def open(self, sealed: Sealed, *, context: Mapping[str, str]) -> bytes:
        ctx = _context_snapshot(context)
        if not _supported(sealed.version) or len(sealed.nonce) != NONCE_BYTES:
            _decryption_failed()
        data_key = await self._unwrap(sealed, ctx)
        try:
            return AESGCM(data_key).decrypt(
                sealed.nonce, sealed.ciphertext, _data_aad(ctx, sealed.version)
            )
        except InvalidTag:
            _decryption_failed()

    async def open_secret(self, sealed: Sealed, *, context: Mapping[str, str]) -> SecretValue:
        data = await self.open(sealed, context=context)
        try:
            return SecretValue(data.decode("utf-8"))
        except UnicodeDecodeError:
            # The message of UnicodeDecodeError quotes the offending bytes.
            raise DecryptionError("sealed value is not UTF-8 text") from None

    async def rewrap(self, sealed: Sealed, *, context: Mapping[str, str]) -> Sealed:
        """Re-wrap the data key under the active master key; the ciphertext is untouched.

        Unwrapping authenticates the context, so a row cannot be re-wrapped into another user's.
        """
        if sealed.kid == self._provider.active_kid:
            return sealed
        ctx = _context_snapshot(context)
        if not _supported(sealed.version):
            _decryption_failed()
        data_key = await self._unwrap(sealed, ctx)
        kid, wrapped = await self._provider.wrap(data_key, context=ctx)
        return replace(sealed, kid=kid, wrapped_key=wrapped)

    async def _unwrap(self, sealed: Sealed, ctx: Mapping[str, str]) -> bytes:
        data_key = await self._provider.unwrap(sealed.kid, sealed.wrapped_key, context=ctx)
        if len(data_key) != KEY_BYTES:
            _decryption_failed()
        return data_key
