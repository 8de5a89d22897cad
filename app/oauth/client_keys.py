"""The public keys of `private_key_jwt` clients (RFC 7591 `jwks` / `jwks_uri`, OIDC Core §9).

Inline `jwks` come from the registration or the Client ID Metadata Document; a `jwks_uri` is
fetched through the same SSRF fence as metadata documents (`CimdFetcher.download`: https only,
public addresses only, pinned connection, byte cap, no redirects), cached, and fetched again when
an assertion names a `kid` the cached set lacks — at most once per `min_refresh` seconds per URL,
so a stream of made-up kids cannot turn Gatehouse into a request amplifier.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.kit.cache import BoundedCache
from app.oauth.cimd import CimdError
from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.models import OAuthClient

PRIVATE_KEY_JWT = "private_key_jwt"
MAX_KEYS = 10
MAX_KEY_SET_BYTES = 16 * 1024
MAX_URI = 2000
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES = frozenset({"RSA", "EC"})


class KeySetProblem(Exception):
    """The key set (or where it lives) cannot be used; the message says why, naming no URL."""


def check_key_set(jwks: object) -> dict[str, Any]:
    """A `jwks` value: 1..10 RSA or EC public keys, nothing private, nothing symmetric."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise KeySetProblem('jwks must be a JSON Web Key Set: {"keys": [...]}')
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_KEYS:
        raise KeySetProblem(f"jwks must hold between 1 and {MAX_KEYS} keys")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            raise KeySetProblem("jwks keys must be RSA or EC public keys")
        if not _PRIVATE_MEMBERS.isdisjoint(key):
            raise KeySetProblem("jwks must not contain private or symmetric key material")
    if len(json.dumps(jwks)) > MAX_KEY_SET_BYTES:
        raise KeySetProblem("jwks is too large")
    try:
        _key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise KeySetProblem("jwks holds a key that cannot be read") from exc
    return {"keys": keys}


def check_jwks_uri(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_URI:
        raise KeySetProblem("jwks_uri must be an https URL")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or parts.fragment:
        raise KeySetProblem("jwks_uri must be an https URL")
    return value


class ClientKeys:
    """Key sets by jwks_uri, cached `ttl` seconds; one per process."""

    def __init__(
        self,
        fetcher: CimdFetcher,
        *,
        ttl: float = 300,
        min_refresh: float = 30,
        max_entries: int = 1024,
    ) -> None:
        self._fetcher = fetcher
        self._min_refresh = min_refresh
        self._sets: BoundedCache[str, KeySet] = BoundedCache(max_entries=max_entries, ttl=ttl)
        self._refreshed_at: BoundedCache[str, float] = BoundedCache(max_entries=max_entries)
        self._locks: BoundedCache[str, asyncio.Lock] = BoundedCache(max_entries=max_entries)

    async def for_client(self, client: OAuthClient, kid: str | None) -> KeySet:
        """The client's keys, refetched once (rate-limited) if `kid` is not among them."""
        metadata = client.client_metadata or {}
        if metadata.get("jwks") is not None:
            return _key_set(check_key_set(metadata["jwks"]))
        uri = metadata.get("jwks_uri")
        if not isinstance(uri, str):
            raise KeySetProblem("the client has neither jwks nor jwks_uri")
        keys = self._sets.get(uri)
        if keys is None:
            return await self._fetch(uri, stale=None)
        if kid is not None and not _has_kid(keys, kid) and self._may_refresh(uri):
            return await self._fetch(uri, stale=keys)
        return keys

    def _may_refresh(self, uri: str) -> bool:
        """A refetch for an unknown kid: at most one per `min_refresh` seconds per URL."""
        last = self._refreshed_at.get(uri)
        if last is not None and time.monotonic() - last < self._min_refresh:
            return False
        self._refreshed_at.put(uri, time.monotonic())
        return True

    async def _fetch(self, uri: str, *, stale: KeySet | None) -> KeySet:
        lock = self._locks.get(uri)
        if lock is None:
            lock = asyncio.Lock()
            self._locks.put(uri, lock)
        async with lock:
            fresh = self._sets.get(uri)
            if fresh is not None and fresh is not stale:
                return fresh  # another request fetched it while this one waited
            try:
                body = await self._fetcher.download(
                    check_jwks_uri(uri), max_bytes=MAX_KEY_SET_BYTES
                )
                data = json.loads(body)
            except CimdError as exc:
                raise KeySetProblem(f"the client's jwks_uri could not be fetched: {exc}") from exc
            except ValueError as exc:
                raise KeySetProblem("the client's jwks_uri did not answer with JSON") from exc
            keys = _key_set(check_key_set(data))
            self._sets.put(uri, keys)
            return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _key_set(jwks: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # checked by check_key_set
