"""Whether a bearer token's signature and claims hold: the keys, and a cache of verified tokens.

- signature and claims are checked locally against the issuer's keys: our database's
  (`LocalTokenVerifier`, role `all`) or the remote issuer's JWKS (`RemoteTokenVerifier`, the
  split-out `mcp` role), cached and refreshed on an unknown `kid`;
- `CachingTokenVerifier` remembers each verified token by its exact text for its remaining
  lifetime: a JWT is immutable, so verifying it a second time can only give the same answer
  until its `exp`. A hit is honoured only while the token is unexpired (with the verifier's
  leeway); revocation, user status and scopes are still checked on every request by the caller.
  An entry is re-verified after `max_age` seconds, so a token whose signing key was withdrawn
  stops being accepted within that bound. Bounded, so a flood of distinct tokens costs memory
  only up to `max_entries`. Failures are never cached.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Protocol

import httpx
from joserfc.jwk import ECKey, KeySet

from app.kit.cache import BoundedCache
from app.oauth.access_tokens import (
    LEEWAY_SECONDS,
    AccessTokenClaims,
    InvalidAccessToken,
    UnknownKeyId,
    verify_access_token,
)
from app.oauth.signing_keys import SigningKeys

logger = logging.getLogger("gatehouse.mcp")

JWKS_REFRESH_MIN_INTERVAL = 10.0
JWKS_MAX_AGE = 300.0


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> AccessTokenClaims: ...


class Issuer:
    """Where an external issuer's endpoints are, from its RFC 8414 metadata."""

    def __init__(self, *, issuer: str, http: httpx.AsyncClient, fetch_from: str = "") -> None:
        self.issuer = issuer
        # The same issuer reached by another base URL (a private address inside a cluster).
        self._base = fetch_from or issuer
        self.http = http

    async def endpoint(self, name: str, *, credentials: bool = False) -> str:
        """The endpoint `name` of the metadata, reached through our base URL. One we send
        credentials to must be on the issuer itself, wherever the metadata points."""
        response = await self.http.get(f"{self._base}/.well-known/oauth-authorization-server")
        response.raise_for_status()
        metadata = response.json()
        # RFC 8414 §3.3: the issuer in the metadata MUST be identical to the one we trust.
        if metadata.get("issuer") != self.issuer:
            raise InvalidAccessToken("the issuer's metadata names another issuer")
        url = str(metadata[name])
        if self._base != self.issuer and url.startswith(self.issuer + "/"):
            url = self._base + url[len(self.issuer) :]
        if credentials and not url.startswith(self._base + "/"):
            raise InvalidAccessToken(f"the issuer's {name} is not on the issuer")
        return url


class LocalTokenVerifier:
    """Tokens we issued ourselves: keys from our own database (role `all`)."""

    def __init__(self, keys: SigningKeys, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    async def verify(self, token: str) -> AccessTokenClaims:
        return await self._keys.verify(token, issuer=self._issuer, audience=self._audience)


class RemoteTokenVerifier:
    """Tokens of an external issuer (role `mcp`): its metadata and JWKS, fetched and cached."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient,
        fetch_from: str = "",
        min_interval: float = JWKS_REFRESH_MIN_INTERVAL,
        max_age: float = JWKS_MAX_AGE,
    ) -> None:
        self._issuer = issuer
        self._metadata = Issuer(issuer=issuer, http=http, fetch_from=fetch_from)
        self._audience = audience
        self._http = http
        self._min_interval = min_interval
        self._max_age = max_age
        self._keyset: KeySet | None = None
        self._fetched_at = -math.inf  # the last successful fetch
        self._attempted_at = -math.inf  # the last attempt, successful or not
        self._lock = asyncio.Lock()

    async def _refresh(self) -> KeySet:
        """Fetch the key set, at most once per `min_interval` whatever the outcome: an issuer
        that is down is not asked again by every request that arrives meanwhile."""
        async with self._lock:
            if time.monotonic() - self._attempted_at < self._min_interval:
                if self._keyset is None:
                    raise InvalidAccessToken("the issuer's keys are not available")
                return self._keyset
            self._attempted_at = time.monotonic()
            try:
                response = await self._http.get(await self._metadata.endpoint("jwks_uri"))
                response.raise_for_status()
                keys: list[Any] = [ECKey.import_key(jwk) for jwk in response.json()["keys"]]
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                logger.warning("could not fetch the issuer's JWKS: %s", type(exc).__name__)
                if self._keyset is None:
                    raise InvalidAccessToken("the issuer's keys are not available") from exc
                return self._keyset
            self._keyset = KeySet(keys)
            self._fetched_at = time.monotonic()
            return self._keyset

    async def verify(self, token: str) -> AccessTokenClaims:
        # Re-read the key set now and then even when every kid is known, so a key the issuer
        # withdraws (say, after a compromise) stops being trusted without a restart. While one
        # request is re-reading it, the others use the keys in hand: a slow or unreachable
        # issuer must not hold up tokens signed by keys we already have.
        keyset = self._keyset
        if keyset is None or (
            time.monotonic() - self._fetched_at > self._max_age and not self._lock.locked()
        ):
            keyset = await self._refresh()
        try:
            return verify_access_token(token, keyset, issuer=self._issuer, audience=self._audience)
        except UnknownKeyId:
            # A new key after rotation: refresh once (rate-limited) and try again.
            keyset = await self._refresh()
            return verify_access_token(token, keyset, issuer=self._issuer, audience=self._audience)


class CachingTokenVerifier:
    def __init__(
        self, inner: TokenVerifier, *, max_entries: int = 10_000, max_age: float = 300.0
    ) -> None:
        self._inner = inner
        self._verified: BoundedCache[str, AccessTokenClaims] = BoundedCache(
            max_entries=max_entries, ttl=max_age
        )

    async def verify(self, token: str) -> AccessTokenClaims:
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() > claims.expires_at + LEEWAY_SECONDS:
                self._verified.pop(token)
                raise InvalidAccessToken("the access token has expired")
            return claims
        claims = await self._inner.verify(token)
        self._verified.put(token, claims)
        return claims
